import type { Protocol } from './types.js';

/**
 * The tokens an answer used, as every protocol's usage block tells them (README, Teams: usage), in one
 * shape: `input` is the prompt tokens billed at the input price — cached ones left out, they are
 * `cacheRead` (read from the provider's prompt cache) and `cacheWrite` (written to it) — and `output`
 * includes reasoning (thinking) tokens, which every provider bills as output.
 */
export interface TokenUsage {
  readonly input: number;
  readonly output: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
}

type Json = Record<string, unknown>;

const isRecord = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const n = (value: unknown): number =>
  typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;

/** The cached part of OpenAI's prompt tokens (`prompt_tokens_details` / `input_tokens_details`). */
const cached = (details: unknown): number => (isRecord(details) ? n(details.cached_tokens) : 0);

/** Per protocol: the usage block's key, and how it reads (the values the wire gives, never negative). */
const READERS: Record<Protocol, { key: string; read: (u: Json) => TokenUsage }> = {
  openai: {
    key: 'usage',
    read: (u) => {
      const cacheRead = cached(u.prompt_tokens_details);
      return {
        input: Math.max(0, n(u.prompt_tokens) - cacheRead),
        output: n(u.completion_tokens),
        cacheRead,
        cacheWrite: 0,
      };
    },
  },
  responses: {
    key: 'usage',
    read: (u) => {
      const cacheRead = cached(u.input_tokens_details);
      return {
        input: Math.max(0, n(u.input_tokens) - cacheRead),
        output: n(u.output_tokens),
        cacheRead,
        cacheWrite: 0,
      };
    },
  },
  anthropic: {
    key: 'usage',
    // Anthropic counts its cache apart from `input_tokens` already.
    read: (u) => ({
      input: n(u.input_tokens),
      output: n(u.output_tokens),
      cacheRead: n(u.cache_read_input_tokens),
      cacheWrite: n(u.cache_creation_input_tokens),
    }),
  },
  gemini: {
    key: 'usageMetadata',
    read: (u) => {
      const cacheRead = n(u.cachedContentTokenCount);
      return {
        input: Math.max(0, n(u.promptTokenCount) + n(u.toolUsePromptTokenCount) - cacheRead),
        output: n(u.candidatesTokenCount) + n(u.thoughtsTokenCount),
        cacheRead,
        cacheWrite: 0,
      };
    },
  },
};

/** A usage block (the object under the protocol's usage key) as tokens; null when it is not one. */
export function readUsageBlock(protocol: Protocol, block: unknown): TokenUsage | null {
  return isRecord(block) ? READERS[protocol].read(block) : null;
}

/** The usage of a whole answer already parsed (a translated one). */
export function usageOfAnswer(protocol: Protocol, answer: unknown): TokenUsage | null {
  if (!isRecord(answer)) return null;
  return readUsageBlock(protocol, answer[READERS[protocol].key]);
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The end (exclusive) of the JSON object that starts at `start` in `text` (which holds `{` there), strings
 * and their escapes skipped; -1 when the text ends first.
 */
function objectEnd(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === 0x7b) depth++;
    else if (c === 0x7d && --depth === 0) return i + 1;
  }
  return -1;
}

/** The usage block whose key is at `at` in `text`, when a `{…}` follows it; null otherwise. */
function blockAt(text: string, at: number, keyLength: number): Json | null {
  let i = at + keyLength;
  while (i < text.length && text.charCodeAt(i) <= 0x20) i++;
  if (text.charCodeAt(i) !== 0x3a) return null;
  i++;
  while (i < text.length && text.charCodeAt(i) <= 0x20) i++;
  if (text.charCodeAt(i) !== 0x7b) return null;
  const end = objectEnd(text, i);
  if (end < 0) return null;
  try {
    const block: unknown = JSON.parse(text.slice(i, end));
    return isRecord(block) ? block : null;
  } catch {
    // Not JSON after all (a cut tail).
    return null;
  }
}

/**
 * The last usage block written in `text` (an answer's bytes, or the tail of a stream), read without parsing
 * the rest: the last `"<key>":{…}` found, searching backwards. A quote inside a JSON string is always
 * escaped, so `"usage":` in the text is a real key. `null` values (OpenAI's chunks before the last) are
 * passed over.
 */
export function lastUsageBlock(protocol: Protocol, text: string): Json | null {
  const key = READERS[protocol].key;
  // Found forwards, from the key's first letter on, then tried from the last: the engine's backward search
  // of a string is a plain loop in C++ (~7 instructions a character over a stream's 2 KB tail), its forward
  // one is fast, and the key's opening quote would stop it at every string of the JSON.
  const unquoted = `${key}"`;
  const found: number[] = [];
  for (let at = text.indexOf(unquoted, 1); at >= 0; at = text.indexOf(unquoted, at + 1))
    if (text.charCodeAt(at - 1) === QUOTE) found.push(at - 1);
  for (let k = found.length - 1; k >= 0; k--) {
    const block = blockAt(text, found[k]!, unquoted.length + 1);
    if (block !== null) return block;
  }
  return null;
}

/** The first usage block written in `text` (Anthropic's `message_start`). */
export function firstUsageBlock(protocol: Protocol, text: string): Json | null {
  const needle = `"${READERS[protocol].key}"`;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const block = blockAt(text, at, needle.length);
    if (block !== null) return block;
  }
  return null;
}

/** The usage of an answer's text (whole, or a stream's tail) in `protocol`. */
export function usageInText(protocol: Protocol, text: string): TokenUsage | null {
  return readUsageBlock(protocol, lastUsageBlock(protocol, text));
}

/**
 * The usage of a stream, from its first bytes (`head`) and its last (`tail`). Anthropic gives the prompt's
 * tokens in `message_start` (the head) and the output's in the last `message_delta` (the tail, which may
 * repeat the input); the other protocols give it all at the end.
 */
export function usageOfStream(protocol: Protocol, head: string, tail: string): TokenUsage | null {
  const last = lastUsageBlock(protocol, tail);
  if (protocol !== 'anthropic') return readUsageBlock(protocol, last);
  const first = firstUsageBlock(protocol, head);
  if (last === null && first === null) return null;
  return READERS.anthropic.read({ ...first, ...last });
}

export const NO_USAGE: TokenUsage = Object.freeze({ input: 0, output: 0, cacheRead: 0, cacheWrite: 0 });
