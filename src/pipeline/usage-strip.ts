import { ByteNeedle } from '../protocols/byte-needle.js';
import type { Protocol } from '../protocols/types.js';
import { readUsageBlock, type TokenUsage } from '../protocols/usage.js';

/**
 * An OpenAI chat stream the proxy asked usage of (`stream_options.include_usage`) for a client that did not
 * ask (README, Teams: usage): the usage chunk is taken out on its way, and read. Bytes after the last
 * complete event of a chunk (up to 8 KB) are held until the event is whole — a client can do nothing with
 * half an event — so that a usage chunk cut in two is still found. Per chunk: a look at its last bytes (is it
 * whole, does it end in `"usage":null`), else a search for `"usage"` in its last few events only; only the
 * event that holds a usage object is parsed.
 */

const EVENT_END = Buffer.from('\n\n');
const CRLF_EVENT_END = Buffer.from('\n\r\n');

/** Where the last event that ends before `before` ends (the index after its blank line); 0 when none. */
function lastEventEnd(bytes: Buffer, before: number): number {
  const lf = bytes.lastIndexOf(EVENT_END, before);
  const crlf = bytes.lastIndexOf(CRLF_EVENT_END, before);
  return Math.max(lf < 0 ? 0 : lf + EVENT_END.length, crlf < 0 ? 0 : crlf + CRLF_EVENT_END.length);
}

/** Where the event around `at` ends (the index after its blank line); the end of the bytes when none. */
function nextEventEnd(bytes: Buffer, at: number): number {
  const lf = bytes.indexOf(EVENT_END, at);
  const crlf = bytes.indexOf(CRLF_EVENT_END, at);
  const ends = [lf < 0 ? -1 : lf + EVENT_END.length, crlf < 0 ? -1 : crlf + CRLF_EVENT_END.length].filter(
    (end) => end >= 0,
  );
  return ends.length === 0 ? bytes.length : Math.min(...ends);
}
const USAGE_KEY = new ByteNeedle('"usage"');
/** How many events at the end of a chunk may hold the usage: the usage chunk, `[DONE]`, one more to spare. */
const USAGE_EVENTS = 3;
/** A chunk up to this long (one event or a few, as a real provider sends them) is searched whole. */
const SEARCHED_WHOLE = 1024;

/**
 * Where the last `count` events of `bytes` begin (after the blank line before them; 0 when there are fewer):
 * read backwards from the end in JavaScript — a chunk's events are a few hundred bytes each, and a native
 * backward search runs over the whole chunk when it finds no CRLF.
 */
function lastEventsStart(bytes: Buffer, count: number): number {
  let seen = 0;
  // A blank line that ends the bytes ends the last event; it does not start one.
  let i = bytes.length - 1;
  while (i >= 0 && (bytes[i] === 0x0a || bytes[i] === 0x0d)) i--;
  for (; i > 0; i--) {
    if (bytes[i] !== 0x0a) continue;
    const before = bytes[i - 1] === 0x0d ? i - 2 : i - 1;
    if (before >= 0 && bytes[before] === 0x0a && ++seen === count) return i + 1;
  }
  return 0;
}

/** Whether the bytes at `at` (after `"usage"`) are `: {` (spaces allowed): a usage object, not `null`. */
function isObjectValue(bytes: Buffer, at: number): boolean {
  let i = at;
  while (i < bytes.length && bytes[i]! <= 0x20) i++;
  if (bytes[i] !== 0x3a) return false;
  i++;
  while (i < bytes.length && bytes[i]! <= 0x20) i++;
  return bytes[i] === 0x7b;
}

const NULL_END = Buffer.from('null}\n\n');
/** The most of an unfinished event held back: more than any usage chunk, far less than a line may grow. */
const MAX_HELD_BYTES = 8192;

function endsWith(bytes: Buffer, end: Buffer): boolean {
  if (bytes.length < end.length) return false;
  for (let i = 1; i <= end.length; i++) if (bytes[bytes.length - i] !== end[end.length - i]) return false;
  return true;
}

export class UsageChunkStripper {
  /** The usage read from the stripped chunk; null until one went by. */
  usage: TokenUsage | null = null;
  private held: Buffer | null = null;

  see(chunk: Uint8Array | string): Buffer {
    let bytes =
      typeof chunk === 'string'
        ? Buffer.from(chunk)
        : Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.held !== null) {
      bytes = Buffer.concat([this.held, bytes]);
      this.held = null;
    }
    // A chunk that ends an event, as nearly every one does, is told by its last bytes, without a search.
    const n = bytes.length;
    const whole = n >= 2 && bytes[n - 1] === 0x0a && bytes[n - 2] === 0x0a ? n : lastEventEnd(bytes, n);
    // A usage chunk is small: a longer unfinished event is passed on as it comes, never held.
    if (whole < n && n - whole <= MAX_HELD_BYTES) {
      this.held = Buffer.from(bytes.subarray(whole));
      bytes = bytes.subarray(0, whole);
    }
    return this.strip(bytes);
  }

  /** What is held when the stream ends (an event that never ended), passed on as it is. */
  end(): Buffer {
    const rest = this.held ?? Buffer.alloc(0);
    this.held = null;
    return rest;
  }

  /**
   * The usage chunk is the last event before `[DONE]`, and `usage` the last member OpenAI writes in a chunk:
   * only the last `"usage"` of the bytes is looked at — in every other chunk it is `null`.
   */
  private strip(bytes: Buffer): Buffer {
    // OpenAI writes `"usage":null` last in every chunk before the usage chunk: nothing to look for.
    if (endsWith(bytes, NULL_END)) return bytes;
    let at = -1;
    for (
      let found = USAGE_KEY.indexInEvents(
        bytes,
        bytes.length <= SEARCHED_WHOLE ? 0 : lastEventsStart(bytes, USAGE_EVENTS),
      );
      found >= 0;
      found = USAGE_KEY.indexInEvents(bytes, found + 1)
    )
      at = found;
    if (at < 0 || !isObjectValue(bytes, at + USAGE_KEY.bytes.length)) return bytes;
    const start = lastEventEnd(bytes, at);
    const end = nextEventEnd(bytes, at);
    const replacement = this.rewrite(bytes.subarray(start, end));
    return Buffer.concat([bytes.subarray(0, start), replacement, bytes.subarray(end)]);
  }

  /**
   * One event holding a usage object: read it; a usage-only chunk (no choices) goes, a chunk that also
   * carries choices (some OpenAI-compatible servers put usage on the last one) loses its `usage` only.
   */
  private rewrite(event: Buffer): Buffer {
    const text = event.toString('utf8');
    const data = /^data: ?(.*)$/m.exec(text)?.[1];
    if (data === undefined) return event;
    let chunk: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(data);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return event;
      chunk = parsed as Record<string, unknown>;
    } catch {
      return event;
    }
    this.usage = readUsageBlock('openai', chunk.usage) ?? this.usage;
    if (!Array.isArray(chunk.choices) || chunk.choices.length === 0) return Buffer.alloc(0);
    delete chunk.usage;
    return Buffer.from(`data: ${JSON.stringify(chunk)}\n\n`);
  }
}

/** Whether an OpenAI chat request asks for streamed usage itself. */
export function asksStreamUsage(body: Record<string, unknown>): boolean {
  const options = body.stream_options;
  return (
    typeof options === 'object' &&
    options !== null &&
    (options as { include_usage?: unknown }).include_usage === true
  );
}

/**
 * Whether a client of protocol `from` asked for a stream's usage as a chunk of its own: an OpenAI chat client
 * with `stream_options.include_usage` (StreamMeta.includeUsage). Other protocols' streams carry usage always.
 */
export function clientAsksStreamUsage(from: Protocol, body: Record<string, unknown>): boolean {
  return from === 'openai' && asksStreamUsage(body);
}

const STREAM_OPTIONS_KEY = new ByteNeedle('"stream_options"');
const ASK_USAGE = Buffer.from('"stream_options":{"include_usage":true},');

/**
 * The request's bytes with `stream_options.include_usage` asked, without parsing or serialising the body:
 * inserted after the opening brace when the body has no `stream_options` of its own. Null when it has one
 * (the caller rewrites the object instead) or the bytes are not an object with a member.
 */
export function withStreamUsageBytes(raw: Buffer | string): Buffer | null {
  const bytes = typeof raw === 'string' ? Buffer.from(raw) : raw;
  if (STREAM_OPTIONS_KEY.indexIn(bytes) >= 0) return null;
  let open = 0;
  while (open < bytes.length && bytes[open]! <= 0x20) open++;
  if (bytes[open] !== 0x7b) return null;
  let next = open + 1;
  while (next < bytes.length && bytes[next]! <= 0x20) next++;
  if (next >= bytes.length || bytes[next] === 0x7d) return null;
  return Buffer.concat([bytes.subarray(0, open + 1), ASK_USAGE, bytes.subarray(open + 1)]);
}
