import { upstreamFailure } from '../backends/http.js';
import type { CancelSignal } from '../backends/cancel.js';
import type { ProxyError } from '../proxy-error.js';
import { codecs } from '../protocols/registry.js';
import { sseLineTooLong } from '../protocols/sse.js';
import { EventCheck } from './event-filter.js';
import type { Protocol } from '../protocols/types.js';

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
): string {
  const failure = upstreamFailure(err, backendName) as ProxyError;
  if (failure.code === 'upstream_line_too_long') {
    // Cut off in the middle of a line the client has partly received: a blank line ends it first, so that
    // the error event is read as an event of its own.
    const info = { status: failure.status, message: failure.message, code: failure.code };
    return `\n\n${codecs[protocol].encodeError(info, sequence)}`;
  }
  return codecs[protocol].encodeError(
    {
      status: failure.status,
      message: `Backend '${backendName}' failed mid-stream`,
      code: 'upstream_stream_error',
    },
    sequence,
  );
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

const TAIL_CHARS = 512;

/**
 * Responses streams end in an event whose data is the whole response, often longer than the tail kept: the
 * name of the last `event:` line seen is what tells (`STREAM_FINISHED` still reads servers that send none).
 */
const RESPONSES_FINAL_EVENTS = new Set([
  'response.completed',
  'response.incomplete',
  'response.failed',
  'error',
]);
// At a line's start: inside an event's JSON data a newline is always escaped.
const EVENT_FIELD = '\nevent: ';
const EVENT_FIELD_BYTES = Buffer.from(EVENT_FIELD);
const EVENT_NAME_CHARS = 40;

/** Whether a chunk starts with an `event:` line (an event written on its own). */
function startsWithEventField(text: Buffer | string): boolean {
  if (typeof text === 'string') return text.startsWith(EVENT_FIELD.slice(1));
  for (let i = 1; i < EVENT_FIELD_BYTES.length; i++) if (text[i - 1] !== EVENT_FIELD_BYTES[i]) return false;
  return true;
}

/**
 * Watches the end of a pass-through stream for the protocol's finish marker. Per chunk it only keeps a
 * reference to the last few chunks; text is decoded once, at the end.
 */
export class FinishWatch {
  private recent: Array<Uint8Array | string> = [];
  private recentLength = 0;
  /** Responses only: the last event name seen, and a name cut by a chunk's end. */
  private lastEvent = '';
  private cutEvent: string | undefined;

  constructor(private readonly protocol: Protocol) {}

  private seeEventName(chunk: Uint8Array | string): void {
    const text =
      typeof chunk === 'string' ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    // Per chunk: one search from its end with a needle made once, and at most 40 characters decoded.
    const at = typeof text === 'string' ? text.lastIndexOf(EVENT_FIELD) : text.lastIndexOf(EVENT_FIELD_BYTES);
    // An event written on its own starts the chunk with its `event:` line.
    const start =
      at >= 0 ? at + EVENT_FIELD.length : startsWithEventField(text) ? EVENT_FIELD.length - 1 : -1;
    const slice = (from: number) =>
      typeof text === 'string'
        ? text.slice(from, from + EVENT_NAME_CHARS)
        : text.toString('latin1', from, from + EVENT_NAME_CHARS);
    let name: string;
    if (start >= 0) name = slice(start);
    else if (this.cutEvent !== undefined) name = this.cutEvent + slice(0);
    else return;
    const end = name.search(/\r?\n/);
    this.cutEvent = end < 0 ? name : undefined;
    if (end >= 0) this.lastEvent = name.slice(0, end);
  }

  see(chunk: Uint8Array | string): void {
    if (this.protocol === 'responses') this.seeEventName(chunk);
    this.recent.push(chunk);
    this.recentLength += chunk.length;
    while (this.recent.length > 1 && this.recentLength - this.recent[0]!.length >= TAIL_CHARS) {
      this.recentLength -= this.recent.shift()!.length;
    }
  }

  /**
   * What the client is owed when the stream ended: nothing (null) after its terminator; the terminator
   * when the answer was complete without it; else the error event of an unfinished stream.
   */
  private recentText(): string {
    return this.recent
      .map((c) =>
        typeof c === 'string' ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('latin1'),
      )
      .join('');
  }

  /**
   * Responses only: the number the proxy's own error event takes — one past the last `sequence_number` in
   * the chunks kept (an event usually comes whole in one chunk, which is kept entire); 0 when none is seen.
   * Read once, when the stream fails: nothing is counted per chunk.
   */
  nextSequence(): number | undefined {
    if (this.protocol !== 'responses') return undefined;
    let last = -1;
    for (const match of this.recentText().matchAll(SEQUENCE_NUMBER)) last = Number(match[1]);
    return last + 1;
  }

  missingEnd(backendName: string): string | null {
    const tail = this.recentText().slice(-TAIL_CHARS);
    const ends = STREAM_ENDS[this.protocol];
    if (ends.ended.test(tail) || RESPONSES_FINAL_EVENTS.has(this.lastEvent)) return null;
    if (ends.complete?.test(tail)) return `${/\n\r?\n$/.test(tail) ? '' : '\n\n'}${ends.terminator}`;
    return codecs[this.protocol].encodeError(
      {
        status: 502,
        message: `Backend '${backendName}' ended the stream before the answer was finished`,
        code: 'upstream_incomplete',
      },
      this.nextSequence(),
    );
  }
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
  seen?: (chunk: Uint8Array) => void,
  /** Told how many events that are not JSON were dropped, if any. */
  dropped?: (count: number) => void,
): AsyncGenerator<Uint8Array | string> {
  const watch = new FinishWatch(protocol);
  const check = new EventCheck();
  const pass = function* (chunk: Uint8Array | null) {
    if (chunk === null) return;
    watch.see(chunk);
    if (seen !== undefined) seen(chunk);
    yield chunk;
  };
  try {
    try {
      for await (const chunk of source) {
        yield* pass(check.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
        if (check.oversized) throw sseLineTooLong();
      }
    } catch (err) {
      if (signal.aborted) return;
      yield midStreamError(protocol, backendName, err, watch.nextSequence());
      return;
    }
    yield* pass(check.end());
    const owed = watch.missingEnd(backendName);
    if (owed) yield owed;
  } finally {
    if (check.dropped > 0) dropped?.(check.dropped);
  }
}
