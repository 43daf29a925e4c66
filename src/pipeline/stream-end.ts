import type { ServerResponse } from 'node:http';
import { upstreamFailure } from '../backends/http.js';
import type { CancelSignal } from '../backends/cancel.js';
import type { ProxyError } from '../proxy-error.js';
import { codecs } from '../protocols/registry.js';
import { sseLineTooLong } from '../protocols/sse.js';
import { EventCheck } from './event-filter.js';
import type { Protocol } from '../protocols/types.js';
import { usageOfStream, type TokenUsage } from '../protocols/usage.js';
import { usageInStreamTail } from '../protocols/usage-bytes.js';
import { ResponsesOutline } from '../protocols/responses/outline.js';
import type { AnswerOutcome } from './spend.js';

/**
 * How a stream relayed to the client ends when the backend's does not end well: the protocol's error event
 * for a stream that failed mid-way, and for one that stopped before its finish marker (never a truncated
 * answer dressed as complete).
 */

export function midStreamError(
  protocol: Protocol,
  backendName: string,
  err: unknown,
  /** The stream's next event number, for a protocol that numbers its events (`FinishWatch.nextSequence`). */
  sequence?: number,
  /** A Responses stream read as it went: it ends in `error` and `response.failed`, as a translated one. */
  outline?: ResponsesOutline,
): string {
  const failure = upstreamFailure(err, backendName) as ProxyError;
  const encode = (info: { status: number; message: string; code: string }) =>
    outline === undefined ? codecs[protocol].encodeError(info, sequence) : outline.failed(info, sequence);
  if (failure.code === 'upstream_line_too_long') {
    // Cut off in the middle of a line the client has partly received: a blank line ends it first, so that
    // the error event is read as an event of its own.
    const info = { status: failure.status, message: failure.message, code: failure.code };
    return `\n\n${encode(info)}`;
  }
  // A backend gone silent (the stall timeout) is named as such: not a broken stream.
  if (failure.code === 'upstream_stalled')
    return encode({ status: failure.status, message: failure.message, code: failure.code });
  return encode({
    status: failure.status,
    message: `Backend '${backendName}' failed mid-stream`,
    code: 'upstream_stream_error',
  });
}

/**
 * A failed stream toward a client whose SDK may read past its error event: the last event that says so, in
 * a stream's tail (null: the protocol's SDKs raise its error events, and the stream ends cleanly after one).
 * The Gemini API writes a mid-stream failure as `data: {"error": …}`: recent @google/genai raises it
 * (`throwIfStreamErrorChunk`), older releases (googleapis/js-genai#461), as bundled by Gemini CLI builds, read
 * past it and take the cut answer for the whole one. A response ended without its chunked terminator fails
 * every HTTP client ("terminated"), so such a stream is cut after its error event (`endStream`).
 */
const CUT_AFTER_ERROR: Record<Protocol, RegExp | null> = {
  openai: null,
  anthropic: null,
  gemini: /(?:^|\n)data: ?\{\s*"error"\s*:/,
  responses: null,
};

/**
 * Ends a stream's response after `last`: cleanly, or — a failed stream (`failed`) toward a client of a
 * protocol in `CUT_AFTER_ERROR` — by ending the connection itself once what was written has gone out, so
 * that the chunked body's terminator never comes.
 */
export function endStream(res: ServerResponse, protocol: Protocol, failed: boolean, last?: string): void {
  if (!failed || CUT_AFTER_ERROR[protocol] === null || res.socket === null) {
    res.end(last);
    return;
  }
  if (last) res.write(last);
  res.socket.end();
}

/** The last `sequence_number` of a Responses stream's text. */
const SEQUENCE_NUMBER = /"sequence_number"\s*:\s*(\d+)/g;

/**
 * How each protocol's stream says "this answer is complete": its terminator (or the backend's own error
 * event), and, for a stream that ended without one, whether the answer itself was complete (its stop
 * reason arrived) — then the proxy writes the terminator the backend left out (README, Routes and
 * failover). A stream that ends without either was cut short, and the client is told so rather than left
 * with a silently truncated answer. Gemini has no terminator: its finish reason is the end.
 */
const STREAM_ENDS: Record<Protocol, { ended: RegExp; complete: RegExp | null; terminator: string }> = {
  openai: {
    ended: /data: \[DONE\]|"error"\s*:/,
    complete: /"finish_reason"\s*:\s*"/,
    terminator: 'data: [DONE]\n\n',
  },
  anthropic: {
    ended: /message_stop|event: error/,
    complete: /"stop_reason"\s*:\s*"/,
    terminator: 'event: message_stop\ndata: {"type":"message_stop"}\n\n',
  },
  gemini: { ended: /"finishReason"\s*:|"error"\s*:/, complete: null, terminator: '' },
  responses: {
    ended: /"type"\s*:\s*"(?:response\.(?:completed|incomplete|failed)|error)"/,
    complete: null,
    terminator: '',
  },
};

/**
 * How each protocol's stream says "the backend failed": its own error event as its last word (an OpenAI or
 * Gemini `{"error": {…}}` chunk, Anthropic's `error` event, a Responses `error` or `response.failed`). A
 * stream that ended so is a failed attempt, counted as no usage (README, Teams: usage).
 */
const STREAM_ERRORS: Record<Protocol, RegExp> = {
  openai: /(?:^|\n)data: ?\{\s*"error"\s*:\s*\{/,
  anthropic: /(?:^|\n)event: ?error\b|"type"\s*:\s*"error"/,
  gemini: /(?:^|\n)data: ?\{\s*"error"\s*:\s*\{/,
  responses: /"type"\s*:\s*"(?:response\.failed|error)"/,
};
const RESPONSES_FAILED_EVENTS: ReadonlySet<string> = new Set(['response.failed', 'error']);

const TAIL_CHARS = 512;
/**
 * How much of a stream's end is kept for its usage block (README, Teams: usage): the last events of every
 * protocol, which hold it near their end — a Responses stream's `response.completed` holds the whole
 * response, its usage after the output.
 */
const USAGE_TAIL_CHARS: Record<Protocol, number> = {
  openai: 2048,
  anthropic: 2048,
  gemini: 2048,
  responses: 8192,
};
/** Anthropic gives the prompt's tokens in its first event (`message_start`): that much of the start is kept. */
const USAGE_HEAD_CHARS = 4096;

/** The events that end a Responses stream, by the name of its last `event:` line (`FinishWatch.lastEvent`). */
const RESPONSES_FINAL_EVENTS = new Set([
  'response.completed',
  'response.incomplete',
  'response.failed',
  'error',
]);
// At a line's start: inside an event's JSON data a newline is always escaped.
const EVENT_FIELD_BYTES = Buffer.from('\nevent: ');
const EVENT_NAME_CHARS = 40;
/** What is kept of trimmed chunks' end: room for an `event:` line cut by the trim, and its name. */
const EVENT_CARRY_BYTES = EVENT_FIELD_BYTES.length + EVENT_NAME_CHARS;
/** A stream's start is a line's start: the carry before any chunk was trimmed. */
const STREAM_START = Buffer.from('\n');

/**
 * The name of the last whole `event:` line in `bytes` (one whose line ends within 40 characters), or
 * undefined: one search from the end, at most 40 characters decoded per line looked at.
 */
function lastEventName(bytes: Buffer): string | undefined {
  const field = EVENT_FIELD_BYTES.length;
  for (
    let at = bytes.lastIndexOf(EVENT_FIELD_BYTES);
    at >= 0;
    at = bytes.lastIndexOf(EVENT_FIELD_BYTES, at - 1)
  ) {
    const end = bytes.indexOf(0x0a, at + field);
    if (end >= 0 && end <= at + field + EVENT_NAME_CHARS) {
      const last = bytes[end - 1] === 0x0d ? end - 1 : end;
      return bytes.toString('latin1', at + field, Math.max(at + field, last));
    }
    if (at === 0) break;
  }
  return undefined;
}

/**
 * Watches the end of a pass-through stream for the protocol's finish marker. Per chunk it only keeps a
 * reference to the last few chunks; text is decoded once, at the end.
 */
export class FinishWatch {
  private recent: Array<Uint8Array | string> = [];
  private recentLength = 0;
  /** Anthropic only: the stream's first chunks, for `message_start`'s usage. */
  private head: Array<Uint8Array | string> | null;
  private headLength = 0;
  private readonly keep: number;
  /** The tail's text, decoded once when the stream ended (`missingEnd` and `nextSequence` read it). */
  private tail: string | null = null;
  /** The kept chunks' bytes, joined once when the stream ended (`usage` and `lastEvent` both read them). */
  private joined: Buffer | null = null;
  /** Set by `missingEnd` when the stream stopped before its answer was finished. */
  cutShort = false;
  /**
   * Responses only, read when chunks are trimmed (nothing per chunk): the last event name in what was
   * trimmed, and the last bytes trimmed (where a name the trim cut begins).
   */
  private trimmedEvent: string | undefined;
  private carry: Buffer = STREAM_START;

  constructor(private readonly protocol: Protocol) {
    this.head = protocol === 'anthropic' ? [] : null;
    this.keep = USAGE_TAIL_CHARS[protocol];
  }

  see(chunk: Uint8Array | string): void {
    if (this.head !== null && this.headLength < USAGE_HEAD_CHARS) {
      this.head.push(chunk);
      this.headLength += chunk.length;
    }
    this.tail = null;
    this.joined = null;
    this.recent.push(chunk);
    this.recentLength += chunk.length;
    // Trimmed in batches: one splice per 32 chunks rather than a shift per chunk.
    if (this.recent.length >= 32) this.trim();
  }

  /** Drops the oldest chunks not needed to keep `keep` characters. */
  private trim(): void {
    let drop = 0;
    let length = this.recentLength;
    while (drop < this.recent.length - 1 && length - this.recent[drop]!.length >= this.keep) {
      length -= this.recent[drop]!.length;
      drop++;
    }
    if (drop > 0) {
      if (this.protocol === 'responses') this.trimEvents(this.recent.slice(0, drop));
      this.recent.splice(0, drop);
    }
    this.recentLength = length;
  }

  /** Responses: the last event name of chunks about to be dropped, and their last bytes. */
  private trimEvents(dropped: ReadonlyArray<Uint8Array | string>): void {
    const bytes = bytesOf([this.carry, ...dropped]);
    this.trimmedEvent = lastEventName(bytes) ?? this.trimmedEvent;
    this.carry = Buffer.from(bytes.subarray(Math.max(0, bytes.length - EVENT_CARRY_BYTES)));
  }

  /**
   * Responses streams end in an event whose data is the whole response, often longer than the tail kept:
   * the name of the stream's last `event:` line is what tells (`STREAM_ENDS` still reads servers that send
   * none). Read once, at the end, from the chunks kept (and the end of those trimmed).
   */
  private lastEvent(): string | undefined {
    // The chunks kept as they are first (no copy of a single chunk); with the carry only when they hold
    // no whole `event:` line.
    return (
      lastEventName(this.keptBytes()) ??
      lastEventName(bytesOf([this.carry, ...this.recent])) ??
      this.trimmedEvent
    );
  }

  private tailText(): string {
    this.tail ??= textOf(this.recent, this.keep);
    return this.tail;
  }

  private keptBytes(): Buffer {
    this.joined ??= bytesOf(this.recent);
    return this.joined;
  }

  /**
   * The tokens the stream used, read from its end (and Anthropic's start) once it is over: only the few
   * chunks kept are searched (README, Teams: usage); null when the stream gave no usage block.
   */
  usage(): TokenUsage | null {
    // A Responses stream's tail (8 KB kept: its last event holds the whole response) searched as its bytes
    // (`usageInStreamTail` reads what `usageOfStream` reads in their latin1 text), not decoded first. The
    // other protocols' 2 KB tails, and a stream read as text, go the text's way.
    if (this.protocol === 'responses' && !this.recent.every(isText)) {
      const bytes = this.keptBytes();
      return usageInStreamTail(this.protocol, bytes.subarray(Math.max(0, bytes.length - this.keep)));
    }
    return usageOfStream(
      this.protocol,
      this.head === null ? '' : textOf(this.head, Infinity),
      this.tailText(),
    );
  }

  /**
   * What the client is owed when the stream ended: nothing (null) after its terminator; the terminator
   * when the answer was complete without it; else the error event of an unfinished stream.
   */
  /**
   * Responses only: the number the proxy's own error event takes — one past the last `sequence_number` in
   * the tail kept (an event usually comes whole in one chunk); 0 when none is seen. Read once, when the
   * stream fails: nothing is counted per chunk.
   */
  nextSequence(): number | undefined {
    if (this.protocol !== 'responses') return undefined;
    let last = -1;
    for (const match of this.tailText().matchAll(SEQUENCE_NUMBER)) last = Number(match[1]);
    return last + 1;
  }

  /**
   * Whether the stream ended failing, as far as a client that must be cut after a failure needs to know
   * (`CUT_AFTER_ERROR`): cut short, or ended by an error event. Read once, after `missingEnd`.
   */
  endedFailing(): boolean {
    const error = CUT_AFTER_ERROR[this.protocol];
    if (error === null) return false;
    return this.cutShort || error.test(this.tail === null ? textOf(this.recent, TAIL_CHARS) : this.tail);
  }

  /**
   * Whether the stream, as far as it came, ends in the backend's own error event (`STREAM_ERRORS`): read
   * once, when it is over — also when it stopped early, the client gone or the proxy's guard stopping it.
   */
  endsInError(): boolean {
    if (this.recent.length === 0) return false;
    if (this.protocol === 'responses') {
      const last = this.lastEvent();
      if (last !== undefined) return RESPONSES_FAILED_EVENTS.has(last);
    }
    return STREAM_ERRORS[this.protocol].test(this.lastText());
  }

  /**
   * How the answer of a stream that came to its end counts (README, Teams: usage): failed when it ended in
   * the backend's error event or before the answer was finished (no terminator and no stop reason), else
   * answered. Read once, after the end.
   */
  endOutcome(): 'answered' | 'failed' {
    if (this.endsInError()) return 'failed';
    const tail = this.lastText();
    const ends = STREAM_ENDS[this.protocol];
    if (this.protocol === 'responses' && RESPONSES_FINAL_EVENTS.has(this.lastEvent() ?? ''))
      return 'answered';
    return ends.ended.test(tail) || ends.complete?.test(tail) === true ? 'answered' : 'failed';
  }

  /** The last TAIL_CHARS of the stream's text: decoded alone unless the usage's longer tail already was. */
  private lastText(): string {
    return this.tail === null ? textOf(this.recent, TAIL_CHARS) : this.tail.slice(-TAIL_CHARS);
  }

  missingEnd(backendName: string, outline?: ResponsesOutline): string | null {
    // Only the last TAIL_CHARS are looked at: decoded alone unless the usage's longer tail already was.
    const tail = this.tail === null ? textOf(this.recent, TAIL_CHARS) : this.tail.slice(-TAIL_CHARS);
    const ends = STREAM_ENDS[this.protocol];
    if (this.protocol === 'responses' && RESPONSES_FINAL_EVENTS.has(this.lastEvent() ?? '')) return null;
    if (ends.ended.test(tail)) return null;
    if (ends.complete?.test(tail)) return `${/\n\r?\n$/.test(tail) ? '' : '\n\n'}${ends.terminator}`;
    this.cutShort = true;
    const info = {
      status: 502,
      message: `Backend '${backendName}' ended the stream before the answer was finished`,
      code: 'upstream_incomplete',
    };
    return outline === undefined
      ? codecs[this.protocol].encodeError(info, this.nextSequence())
      : outline.failed(info, this.nextSequence());
  }
}

/**
 * The last `chars` of chunks' text, bytes read as latin1 (what is searched here is ASCII): copied into one
 * buffer and decoded once.
 */
function textOf(chunks: ReadonlyArray<Uint8Array | string>, chars: number): string {
  if (chunks.every(isText)) {
    // A stream read as text (the translated relay decodes it once): joined, never turned back into bytes.
    const text = chunks.join('');
    return text.length > chars ? text.slice(text.length - chars) : text;
  }
  // Only the chunks that hold the last `chars` bytes are copied.
  let first = chunks.length;
  for (let length = 0; first > 0 && length < chars;) length += byteLength(chunks[--first]!);
  const bytes = bytesOf(first === 0 ? chunks : chunks.slice(first));
  return bytes.toString('latin1', Math.max(0, bytes.length - chars));
}

const isText = (chunk: Uint8Array | string): chunk is string => typeof chunk === 'string';

const byteLength = (chunk: Uint8Array | string): number =>
  typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;

/** Chunks' bytes as one buffer (one chunk's own memory when there is only one). */
function bytesOf(chunks: ReadonlyArray<Uint8Array | string>): Buffer {
  return chunks.length === 1 && typeof chunks[0] !== 'string'
    ? Buffer.from(chunks[0]!.buffer, chunks[0]!.byteOffset, chunks[0]!.byteLength)
    : Buffer.concat(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c)));
}

/**
 * Same-protocol streaming when the backend's answer is only an async iterable (one that cannot be taken
 * whole, as the embedded mock's): bytes go on as they arrive, pulled by the response (backpressure); a failed or unfinished stream ends in the
 * protocol's error event.
 */
export async function* passThroughIterable(
  source: AsyncIterable<Uint8Array>,
  protocol: Protocol,
  backendName: string,
  signal: CancelSignal,
  /** Shown every chunk as it goes (see `Relay.watch`). */
  seen?: ((chunk: Uint8Array) => void) | undefined,
  /** Told how many events that are not JSON were dropped, if any. */
  dropped?: ((count: number) => void) | undefined,
  /** The stream's usage: its stripper (an OpenAI usage chunk the client did not ask for), told at the end. */
  usage?: StreamUsageSink,
): AsyncGenerator<Uint8Array | string> {
  const watch = new FinishWatch(protocol);
  const check = new EventCheck();
  const stripper = usage?.stripper ?? null;
  // A Responses stream is read as it goes: a failure ends it as a translated one ends (`response.failed`).
  const outline = protocol === 'responses' ? new ResponsesOutline(false) : undefined;
  // A generator the client's response returned early (the client left) ends cut.
  let outcome: AnswerOutcome = 'cut';
  const pass = function* (received: Uint8Array | null) {
    if (received === null) return;
    const chunk = stripper === null ? received : stripper.see(received);
    if (chunk.length === 0) return;
    watch.see(chunk);
    outline?.see(chunk);
    if (seen !== undefined) seen(chunk);
    yield chunk;
  };
  try {
    try {
      for await (const chunk of source) {
        yield* pass(check.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
        if (check.oversized) throw sseLineTooLong();
      }
      yield* pass(check.end());
      const rest = stripper?.end();
      if (rest !== undefined && rest.length > 0) {
        watch.see(rest);
        yield rest;
      }
    } catch (err) {
      if (signal.aborted) return;
      // The backend's stream broke (or outgrew the event bound): a failed attempt.
      outcome = 'failed';
      yield midStreamError(protocol, backendName, err, watch.nextSequence(), outline);
      return;
    }
    const owed = watch.missingEnd(backendName, outline);
    outcome = watch.endOutcome();
    if (owed) yield owed;
  } finally {
    if (check.dropped > 0) dropped?.(check.dropped);
    // Told once, however the stream ends (a client that leaves returns the generator early).
    usage?.done(stripper?.usage ?? watch.usage(), outcome);
  }
}

/** What passThroughIterable tells of a stream's usage (relay.ts). */
export interface StreamUsageSink {
  readonly stripper: {
    see(chunk: Uint8Array): Uint8Array;
    end(): Uint8Array;
    usage: TokenUsage | null;
  } | null;
  /** `outcome`: answered (it came to its end), failed (the backend failed it), cut (the client left). */
  done(usage: TokenUsage | null, outcome: AnswerOutcome): void;
}
