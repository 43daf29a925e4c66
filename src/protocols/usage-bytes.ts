import { ByteNeedle } from './byte-needle.js';
import type { Protocol } from './types.js';
import { readUsageBlock, type TokenUsage } from './usage.js';

/**
 * A whole answer's usage read from its bytes (README, Teams: usage), as `usageInText` reads it from the
 * answer's text — the last `"<key>":{…}` found searching backwards — without decoding the answer to a
 * string, and without `JSON.parse` for a block the usual shape: names and whole numbers (docs/performance.md,
 * "The default path's usage read"). The block of an answer sits at its end: its key is found by a look at
 * the last few hundred bytes, a longer answer's rest left to the native search.
 */

type Json = Record<string, unknown>;

/** Each protocol's usage key, quoted, as bytes. */
const NEEDLES: Record<Protocol, Buffer> = {
  openai: Buffer.from('"usage"'),
  responses: Buffer.from('"usage"'),
  anthropic: Buffer.from('"usage"'),
  gemini: Buffer.from('"usageMetadata"'),
};

/**
 * The names the protocols' readers read in a usage block (usage.ts, `READERS`), each as bytes and as its
 * string. Other members of a block are checked and passed over: no reader looks at them.
 */
const NAMES: ReadonlyArray<readonly [bytes: Buffer, name: string]> = [
  'prompt_tokens',
  'completion_tokens',
  'prompt_tokens_details',
  'cached_tokens',
  'input_tokens',
  'output_tokens',
  'input_tokens_details',
  'cache_read_input_tokens',
  'cache_creation_input_tokens',
  'promptTokenCount',
  'toolUsePromptTokenCount',
  'candidatesTokenCount',
  'thoughtsTokenCount',
  'cachedContentTokenCount',
].map((name) => [Buffer.from(name), name] as const);

/** The end of an answer searched by a JavaScript loop before the native search takes the rest. */
const NEAR_END = 512;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const COLON = 0x3a;
const COMMA = 0x2c;

/** The usage of a whole answer's bytes in `protocol`, as `usageInText` gives it for their latin1 text. */
export function usageInBytes(protocol: Protocol, bytes: Uint8Array): TokenUsage | null {
  const buffer = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const needle = NEEDLES[protocol];
  for (let at = lastIndexOf(buffer, needle, buffer.length - needle.length); at >= 0;) {
    const block = blockAt(buffer, at + needle.length);
    if (block !== null) return readUsageBlock(protocol, block);
    at = at === 0 ? -1 : lastIndexOf(buffer, needle, at - 1);
  }
  return null;
}

/**
 * The usage of a stream's tail (a few KB kept by `FinishWatch`, src/pipeline/stream-end.ts), as
 * `usageInBytes` gives it. Its last bytes are looked at backwards (a Responses stream's usage ends its last
 * event); the rest, when no block is there, by a forward search (`ByteNeedle.indexIn`) whose candidates
 * are then tried from the last: the native backward search is a plain loop in C++, several times slower
 * over a tail without a block than decoding it to text was (docs/performance.md).
 */
export function usageInStreamTail(protocol: Protocol, bytes: Uint8Array): TokenUsage | null {
  const buffer = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const needle = NEEDLES[protocol];
  const stop = Math.max(0, buffer.length - NEAR_END);
  for (let at = nearLastIndexOf(buffer, needle, buffer.length - needle.length, stop); at >= 0;) {
    const block = blockAt(buffer, at + needle.length);
    if (block !== null) return readUsageBlock(protocol, block);
    at = at === stop ? -1 : nearLastIndexOf(buffer, needle, at - 1, stop);
  }
  if (stop === 0) return null;
  // Keys that start before `stop` (the needle may reach past it).
  const end = Math.min(buffer.length, stop + needle.length - 1);
  const search = STREAM_NEEDLES[protocol];
  const found: number[] = [];
  for (let at = search.indexIn(buffer, 0, end); at >= 0; at = search.indexIn(buffer, at + 1, end))
    found.push(at);
  for (let k = found.length - 1; k >= 0; k--) {
    const block = blockAt(buffer, found[k]! + needle.length);
    if (block !== null) return readUsageBlock(protocol, block);
  }
  return null;
}

const STREAM_NEEDLES: Record<Protocol, ByteNeedle> = {
  openai: new ByteNeedle('"usage"'),
  responses: new ByteNeedle('"usage"'),
  anthropic: new ByteNeedle('"usage"'),
  gemini: new ByteNeedle('"usageMetadata"'),
};

/** The last index at or before `from` where `needle` starts in `bytes`; -1 when none. */
function lastIndexOf(bytes: Buffer, needle: Buffer, from: number): number {
  const stop = Math.max(0, from - NEAR_END);
  const at = nearLastIndexOf(bytes, needle, from, stop);
  return at >= 0 || stop === 0 ? at : bytes.lastIndexOf(needle, stop - 1);
}

/** `lastIndexOf` by a JavaScript loop down to `stop`: -1 when the needle starts nowhere in between. */
function nearLastIndexOf(bytes: Buffer, needle: Buffer, from: number, stop: number): number {
  const length = needle.length;
  const first = needle[0] as number;
  const second = needle[1] as number;
  for (let i = Math.min(from, bytes.length - length); i >= stop; i--) {
    if (bytes[i] !== first || bytes[i + 1] !== second) continue;
    let k = 2;
    while (k < length && bytes[i + k] === needle[k]) k++;
    if (k === length) return i;
  }
  return -1;
}

/** The usage block after the key that ends at `i`, when `:` and a JSON object follow; null otherwise. */
function blockAt(bytes: Buffer, i: number): Json | null {
  const length = bytes.length;
  while (i < length && (bytes[i] as number) <= 0x20) i++;
  if (bytes[i] !== COLON) return null;
  i++;
  while (i < length && (bytes[i] as number) <= 0x20) i++;
  if (bytes[i] !== OPEN) return null;
  const end = objectEnd(bytes, i);
  if (end < 0) return null;
  const quick = quickObject(bytes, i, end, 0);
  if (quick !== undefined && cursor === end) return quick;
  try {
    const block: unknown = JSON.parse(bytes.toString('latin1', i, end));
    return typeof block === 'object' && block !== null && !Array.isArray(block) ? (block as Json) : null;
  } catch {
    // Not JSON after all (a cut answer).
    return null;
  }
}

/** The end (exclusive) of the JSON object at `start` (a `{`), strings skipped; -1 when the bytes end first. */
function objectEnd(bytes: Buffer, start: number): number {
  let depth = 0;
  const length = bytes.length;
  for (let i = start; i < length; i++) {
    const c = bytes[i] as number;
    if (c === QUOTE) {
      for (i++; i < length; i++) {
        const s = bytes[i] as number;
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === OPEN) depth++;
    else if (c === CLOSE && --depth === 0) return i + 1;
  }
  return -1;
}

/** Where `quickObject` stopped: just after the object it read. */
let cursor = 0;

const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * The object at `i` (a `{`) before `end`, when it holds only plain names (no escape, no control character)
 * with whole numbers (0 or without a leading zero, at most 15 digits: exact), `null`, `true`, `false` or
 * such objects: what `JSON.parse` gives for it, restricted to `NAMES`. Undefined for anything else (a
 * fraction, a string value, an array, a syntax error): the caller then asks `JSON.parse`. Sets `cursor`.
 */
function quickObject(bytes: Buffer, i: number, end: number, depth: number): Json | undefined {
  if (depth > 4) return undefined;
  const out: Json = {};
  i++;
  while (isSpace(bytes[i])) i++;
  if (bytes[i] === CLOSE) {
    cursor = i + 1;
    return out;
  }
  while (i < end) {
    if (bytes[i] !== QUOTE) return undefined;
    const nameStart = ++i;
    for (; i < end; i++) {
      const c = bytes[i] as number;
      if (c === QUOTE) break;
      if (c === BACKSLASH || c < 0x20) return undefined;
    }
    if (i >= end) return undefined;
    const name = known(bytes, nameStart, i);
    i++;
    while (isSpace(bytes[i])) i++;
    if (bytes[i] !== COLON) return undefined;
    i++;
    while (isSpace(bytes[i])) i++;
    const c = bytes[i] as number;
    let value: unknown;
    if (c >= 0x30 && c <= 0x39) {
      let number = c - 0x30;
      const digits = i;
      for (i++; i < end; i++) {
        const d = bytes[i] as number;
        if (d < 0x30 || d > 0x39) break;
        number = number * 10 + (d - 0x30);
      }
      if ((c === 0x30 && i - digits > 1) || i - digits > 15) return undefined;
      value = number;
    } else if (c === OPEN) {
      value = quickObject(bytes, i, end, depth + 1);
      if (value === undefined) return undefined;
      i = cursor;
    } else if (word(bytes, i, 'null')) {
      value = null;
      i += 4;
    } else if (word(bytes, i, 'true')) {
      value = true;
      i += 4;
    } else if (word(bytes, i, 'false')) {
      value = false;
      i += 5;
    } else return undefined;
    if (name !== undefined) out[name] = value;
    while (isSpace(bytes[i])) i++;
    if (bytes[i] === CLOSE) {
      cursor = i + 1;
      return out;
    }
    if (bytes[i] !== COMMA) return undefined;
    i++;
    while (isSpace(bytes[i])) i++;
  }
  return undefined;
}

/** The name of `NAMES` that bytes `start` to `end` spell; undefined for any other. */
function known(bytes: Buffer, start: number, end: number): string | undefined {
  const length = end - start;
  for (const [name, text] of NAMES) {
    if (name.length !== length) continue;
    let k = 0;
    while (k < length && bytes[start + k] === name[k]) k++;
    if (k === length) return text;
  }
  return undefined;
}

function word(bytes: Buffer, at: number, text: string): boolean {
  for (let k = 0; k < text.length; k++) if (bytes[at + k] !== text.charCodeAt(k)) return false;
  return true;
}
