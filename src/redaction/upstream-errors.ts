import { StringDecoder } from 'node:string_decoder';
import { ByteNeedle } from '../protocols/byte-needle.js';
import type { Redactor } from './redactor.js';

// What a backend says when it fails — an error body, an error event inside a stream — is passed on to the
// client, and backends echo keys there ("Incorrect API key provided: sk-…"). Redacting the text as it came
// is not enough: JSON may escape any character of a key (`sk\u002dproj…`), the text redactor does not
// match that, and the client's SDK (or the proxy's own translation) decodes it back into the key. So an
// error is redacted after decoding: every string of the JSON, keys included, then encoded again
// (README, Key hygiene).

/** Deeper than any real error envelope; a subtree below it is replaced, never walked. */
const MAX_DEPTH = 64;
const TOO_DEEP = '[nested too deeply]';

/**
 * `value` (parsed JSON) with every string and object key redacted after decoding. Copy-on-write: the same
 * reference back when nothing matched.
 */
export function redactDecodedJson(redactor: Redactor, value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactor.redact(value);
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_DEPTH) return TOO_DEEP;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const safe = redactDecodedJson(redactor, item, depth + 1);
      if (safe !== item) (copy ??= value.slice())[i] = safe;
    }
    return copy ?? value;
  }
  let changed = false;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const safeKey = redactor.redact(key);
    const safe = redactDecodedJson(redactor, item, depth + 1);
    if (safeKey !== key || safe !== item) changed = true;
    copy[safeKey] = safe;
  }
  return changed ? copy : value;
}

/**
 * An upstream error body (or one event's data) made safe to pass on: JSON is decoded, redacted string by
 * string and encoded again (only when something was found: otherwise the text keeps its form); other text
 * is redacted as text.
 */
export function redactErrorText(redactor: Redactor, text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return redactor.redact(text);
  }
  const safe = redactDecodedJson(redactor, parsed);
  return safe === parsed ? redactor.redact(text) : JSON.stringify(safe);
}

/**
 * What marks an error inside a stream, in every protocol: OpenAI and Gemini send `data: {"error": …}`,
 * Anthropic `event: error` with `{"type":"error", …}`. Inside a JSON string a quote is always escaped, so
 * `"error"` as it stands is JSON structure, not the model's text about an error.
 */
const MARKER = '"error"';
const MARKER_BYTES = Buffer.from(MARKER);
/** The marker searched in a stream's bytes: JSON, where a native search stops at every quote. */
const MARKER_PATTERN = new ByteNeedle(MARKER);
/** The end of an SSE event: a blank line. */
const EVENT_END = /\r?\n\r?\n|\r\r/g;
const LINE = /(\r?\n|\r)/;
/** A complete JSON string literal. */
const STRING_TOKEN = /"(?:[^"\\]|\\.)*"/g;

type Chunk = Uint8Array | string;

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** How many characters at the end of `chunk` are the start of a marker (that the next chunk may finish). */
function markerStartAtEnd(chunk: Chunk): number {
  const length = chunk.length;
  for (let k = Math.min(MARKER.length - 1, length); k > 0; k--) {
    let matches = true;
    for (let i = 0; i < k && matches; i++) {
      const code = typeof chunk === 'string' ? chunk.charCodeAt(length - k + i) : chunk[length - k + i];
      matches = code === MARKER_BYTES[i];
    }
    if (matches) return k;
  }
  return 0;
}

const NULL_CODES = [0x6e, 0x75, 0x6c, 0x6c];
const isSpace = (code: number | undefined) =>
  code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;

/**
 * Whether the marker ending at `from` is a field that says there is no error: `"error": null`, as the
 * Responses API's Response object carries in the first and last events of every stream. Cut by the chunk's
 * end before that is certain, it is taken for an error (redacting a stream that needed none costs only time).
 */
function noErrorAfter(chunk: Chunk, from: number): boolean {
  const code = (i: number) => (typeof chunk === 'string' ? chunk.charCodeAt(i) : chunk[i]);
  let i = from;
  while (isSpace(code(i))) i++;
  if (code(i) !== 0x3a) return false;
  i++;
  while (isSpace(code(i))) i++;
  for (let k = 0; k < NULL_CODES.length; k++) if (code(i + k) !== NULL_CODES[k]) return false;
  return true;
}

/** The marker's end, searched first in text: a native search for the quote it opens with stops at every quote. */
const MARKER_TAIL = MARKER.slice(2);

/**
 * Where the marker is in `text` from `from` on (-1: nowhere): its rarer tail `rror"` found natively (about a
 * quarter of the time of searching `"error"` in a JSON event), then the two characters before it checked.
 */
function markerIn(text: string, from: number): number {
  for (let at = text.indexOf(MARKER_TAIL, from + 2); at !== -1; at = text.indexOf(MARKER_TAIL, at + 1)) {
    if (text.charCodeAt(at - 1) === 0x65 && text.charCodeAt(at - 2) === 0x22) return at - 2;
  }
  return -1;
}

/** Whether `chunk` holds a marker that may open an error: any but `"error": null`. */
function hasMarker(chunk: Chunk): boolean {
  if (typeof chunk === 'string') {
    for (let at = markerIn(chunk, 0); at !== -1; at = markerIn(chunk, at + MARKER.length))
      if (!noErrorAfter(chunk, at + MARKER.length)) return true;
    return false;
  }
  // Indexed as it is: a Uint8Array, no Buffer view made.
  const bytes = chunk;
  for (
    let at = MARKER_PATTERN.indexInEvents(bytes);
    at !== -1;
    at = MARKER_PATTERN.indexInEvents(bytes, at + MARKER_BYTES.length)
  )
    if (!noErrorAfter(bytes, at + MARKER_BYTES.length)) return true;
  return false;
}

/** Where a marker starts as JSON structure in `line` (not after an escaping backslash), or -1. */
function structuralMarker(line: string): number {
  for (let at = line.indexOf(MARKER); at !== -1; at = line.indexOf(MARKER, at + 1)) {
    let backslashes = 0;
    while (line.charCodeAt(at - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
  return -1;
}

/**
 * Watches a stream on its way to the client for the backend's error event, and redacts from there on.
 * Until a marker shows up (`"error"`, but not `"error": null`, which says there is none) each chunk goes
 * through untouched (one substring search per chunk — the stream's
 * content is the model's answer, passed on as it is; a chunk that ends in the first characters of a marker
 * keeps those few characters back for the next one). From the chunk that holds the marker to the end of
 * the stream (an error event is the backend's last word), the text is cut at event boundaries and every
 * JSON string of each event's data is redacted after decoding; other lines are redacted as text.
 */
export class ErrorEventGuard {
  /** Set once a marker was seen: the stream is redacted from then on. */
  private decoder: StringDecoder | undefined;
  private pending = '';
  /** The start of a marker kept back from the end of the last chunk. */
  private held = '';
  /** The first line of the redacted text may have begun in a chunk already passed on. */
  private firstLine = false;

  constructor(private readonly redactor: Redactor) {}

  /**
   * What to pass on for `chunk`: the chunk itself, or (once redacting) the text now safe to release.
   * `markFree`: the caller knows the chunk holds no marker but `"error": null` (the event check, which
   * scanned every byte of it: `EventCheck.markFree`), so it is not searched again — unless the start of a marker
   * was held back from the chunk before, which this one may finish.
   */
  see(input: Chunk, markFree = false): Chunk {
    let chunk = input;
    if (this.decoder === undefined) {
      let free = markFree;
      if (this.held !== '') {
        chunk =
          typeof chunk === 'string'
            ? this.held + chunk
            : Buffer.concat([Buffer.from(this.held, 'latin1'), chunk]);
        this.held = '';
        free = false;
      }
      if (free || !hasMarker(chunk)) {
        const keep = markerStartAtEnd(chunk);
        if (keep === 0) return chunk;
        const cut = chunk.length - keep;
        this.held = typeof chunk === 'string' ? chunk.slice(cut) : asBuffer(chunk).toString('latin1', cut);
        return chunk.slice(0, cut);
      }
      this.decoder = new StringDecoder('utf8');
      this.firstLine = true;
    }
    this.pending += typeof chunk === 'string' ? chunk : this.decoder.write(asBuffer(chunk));
    let end = 0;
    EVENT_END.lastIndex = 0;
    for (let m = EVENT_END.exec(this.pending); m !== null; m = EVENT_END.exec(this.pending)) {
      end = m.index + m[0].length;
    }
    if (end === 0) return '';
    const events = this.pending.slice(0, end);
    this.pending = this.pending.slice(end);
    return this.redactEvents(events);
  }

  /** What is still held back at the end of the stream ('' when nothing). */
  end(): string {
    if (this.decoder === undefined) {
      const held = this.held;
      this.held = '';
      return held;
    }
    const rest = this.pending + this.decoder.end();
    this.pending = '';
    return rest === '' ? '' : this.redactEvents(rest);
  }

  private redactEvents(text: string): string {
    const parts = text.split(LINE);
    for (let i = 0; i < parts.length; i += 2) {
      const line = parts[i]!;
      // Where JSON tokens start: after a data field's name; in a line whose start was passed on already,
      // at the marker (which opens a JSON string); in any other line nowhere (text only).
      let from = line.startsWith('data: ') ? 6 : line.startsWith('data:') ? 5 : -1;
      if (from === -1 && i === 0 && this.firstLine) from = structuralMarker(line);
      parts[i] = from === -1 ? this.redactor.redact(line) : this.redactTokens(line, from);
    }
    this.firstLine = false;
    return parts.join('');
  }

  /** `line` with each JSON string literal from `from` on redacted after decoding, the rest as text. */
  private redactTokens(line: string, from: number): string {
    let out = '';
    let pos = 0;
    STRING_TOKEN.lastIndex = from;
    for (let m = STRING_TOKEN.exec(line); m !== null; m = STRING_TOKEN.exec(line)) {
      const token = m[0];
      let safe = token;
      try {
        const decoded = JSON.parse(token) as string;
        const redacted = this.redactor.redact(decoded);
        if (redacted !== decoded) safe = JSON.stringify(redacted);
      } catch {
        safe = this.redactor.redact(token);
      }
      out += this.redactor.redact(line.slice(pos, m.index)) + safe;
      pos = m.index + token.length;
    }
    return out + this.redactor.redact(line.slice(pos));
  }
}

/**
 * The same guard over a backend's stream read as an iterable (the translated path and backends that only
 * give one): what follows — the capture, the translator, the client — sees error events redacted.
 */
export function guardErrorEvents(
  source: AsyncIterable<Uint8Array>,
  redactor: Redactor,
): AsyncGenerator<Uint8Array> {
  return guarded(source, redactor, (text) => Buffer.from(text));
}

/**
 * The guard over a translated stream on its way to the client: the translator decodes a backend's error
 * event whatever its escaping (even one the byte guard could not spot) and writes its message plainly.
 */
export function guardTranslatedEvents(
  source: AsyncIterable<string>,
  redactor: Redactor,
): AsyncGenerator<string> {
  return guarded(source, redactor, (text) => text);
}

async function* guarded<T extends Chunk>(
  source: AsyncIterable<T>,
  redactor: Redactor,
  fromText: (text: string) => T,
): AsyncGenerator<T> {
  const guard = new ErrorEventGuard(redactor);
  for await (const chunk of source) {
    const out = guard.see(chunk);
    if (out.length > 0) yield typeof out === 'string' ? fromText(out) : (out as T);
  }
  const rest = guard.end();
  if (rest !== '') yield fromText(rest);
}
