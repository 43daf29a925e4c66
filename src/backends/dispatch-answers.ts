import { ProxyError } from '../proxy-error.js';
import { MAX_SSE_LINE_BYTES, sseLineTooLong } from '../protocols/sse.js';
import { onCancel, type CancelSignal } from './cancel.js';
import type { ConnectionGate } from './connection-gate.js';
import { silenceError, type UpstreamDeadlines, type WatchedCall } from './deadlines.js';
import type { StreamControl, StreamSink, UpstreamResponse } from './types.js';

// undici dispatch handlers for the two answers the proxy reads without a body stream: a whole answer, and
// an event stream handed straight to one consumer (the client's response).
//
// They implement undici's legacy callbacks (onConnect, onHeaders, onData, onComplete, onError), which its
// types mark deprecated, and not the controller API (onRequestStart, onResponseStart, onResponseData,
// onResponseEnd, onResponseError), on purpose. In undici 7 (pinned exactly in package.json) the core still
// calls the legacy callbacks; a controller-API handler is adapted to them by undici's UnwrapHandler
// (lib/handler/unwrap-handler.js), which for every call allocates an adapter and a controller and decodes
// all the answer's headers, and its trailers, into objects. Here the raw header buffers are kept and only
// the content type is decoded (DispatchedResponse): decoding every header of every answer is a cost of
// several per cent of a proxied request's CPU (docs/performance.md). The controller API would add that
// cost and change nothing else: backpressure (onData returning false, then the `resume` onHeaders gave),
// abort (the function onConnect gave) and the deadlines (deadlines.ts) work the same either way. Migrate
// when undici's core calls the controller API itself — the exact pin makes that upgrade a deliberate
// edit — keeping dispatch-answers.test.ts, deadlines.test.ts and http.test.ts green.

export const tooLarge = () =>
  new ProxyError(502, 'Backend answer is too large', { code: 'upstream_too_large' });

/** A whole answer's body for readers of `body`: its bytes as one chunk (a class: no closure per answer). */
class OneChunk implements AsyncIterable<Uint8Array> {
  constructor(private readonly bytes: Buffer) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    yield this.bytes;
  }
}

/** Header names and values as undici hands them to a dispatch handler: [name, value, name, value, …]. */
function parseRawHeaders(raw: Buffer[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    const seen = headers[name];
    if (seen === undefined) headers[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else headers[name] = [seen, value];
  }
  return headers;
}

const CONTENT_TYPE = 'content-type';
const LF = 0x0a;
const CR = 0x0d;

/** The content type among raw headers, looked up without decoding the other names. */
function rawContentType(raw: Buffer[]): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === CONTENT_TYPE.length && name.toString('latin1').toLowerCase() === CONTENT_TYPE) {
      return raw[i + 1]!.toString('latin1');
    }
  }
  return undefined;
}

/**
 * An answer read from dispatch callbacks. Its headers are decoded only when read (an error to pass on, a
 * capture): an answer that goes to the client needs only its content type.
 */
abstract class DispatchedResponse {
  private decoded: Record<string, string | string[]> | undefined;

  constructor(
    readonly status: number,
    private readonly rawHeaders: Buffer[],
    readonly contentType: string | undefined,
  ) {}

  get headers(): Record<string, string | string[]> {
    return (this.decoded ??= parseRawHeaders(this.rawHeaders));
  }
}

/** A whole answer: its bytes, also readable as `body`. */
class WholeResponse extends DispatchedResponse implements UpstreamResponse {
  readonly body: OneChunk;

  constructor(
    status: number,
    rawHeaders: Buffer[],
    readonly bytes: Buffer,
  ) {
    super(status, rawHeaders, rawContentType(rawHeaders));
    this.body = new OneChunk(bytes);
  }

  dispose(): void {}
}

/**
 * A non-streamed answer collected straight from undici's dispatch callbacks: no body stream, no async
 * resource, no promise per chunk — the request API's machinery, which a whole answer does not need. Honours
 * the upstream timeouts (`deadlines`: no head, or no body bytes, for the timeout), the client going away
 * (`signal`) and a size limit.
 */
export class WholeAnswer implements WatchedCall {
  protected status = 0;
  protected rawHeaders: Buffer[] = [];
  protected readonly chunks: Buffer[] = [];
  protected size = 0;
  protected abort: ((err: Error) => void) | null = null;
  private readonly stopListening: () => void;
  /** Bytes or a head arrived since the last deadline sweep. */
  private lively = false;
  private quietSince = 0;
  private headersArrived = false;
  private over = false;
  deadlinePrev: WatchedCall | null | undefined = undefined;
  deadlineNext: WatchedCall | null = null;
  /** The backend's connection gate this call holds a place in, given back once undici is done with it. */
  private gate: ConnectionGate | null = null;
  private gateStream = false;
  /** When the call began to wait for a connection (0: it did not wait): the wait counts against the timeout. */
  private waitedSince = 0;

  constructor(
    private readonly signal: CancelSignal,
    protected readonly limitBytes: number,
    protected readonly resolve: (answer: UpstreamResponse) => void,
    private readonly reject: (err: Error) => void,
    private readonly deadlines: UpstreamDeadlines,
  ) {
    this.stopListening = onCancel(signal, () => this.abort?.(new Error('client gone')));
  }

  /** The call holds a place in `gate` (ConnectionGate.tryEnter or wait), to give back when it ends. */
  holdsPlaceIn(gate: ConnectionGate, stream: boolean, waitedSince: number): void {
    this.gate = gate;
    this.gateStream = stream;
    this.waitedSince = waitedSince;
  }

  /** undici is done with the call (completed or failed): its connection is free for the next call. */
  protected leaveGate(): void {
    const gate = this.gate;
    if (gate === null) return;
    this.gate = null;
    gate.leave(this.gateStream);
  }

  onConnect(abort: (err: Error) => void): void {
    if (this.signal.aborted) return abort(new Error('client gone'));
    this.abort = abort;
    this.quietSince = this.waitedSince > 0 ? this.waitedSince : Date.now();
    this.deadlines.watch(this);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], _resume?: () => void): boolean {
    this.lively = true;
    if (statusCode < 200) return true;
    this.headersArrived = true;
    this.status = statusCode;
    this.rawHeaders = rawHeaders;
    return true;
  }

  checkDeadline(now: number, timeoutMs: number): void {
    if (this.over) return;
    if (this.lively || this.held()) {
      this.lively = false;
      this.quietSince = now;
    } else if (now - this.quietSince >= timeoutMs) {
      this.settle();
      this.abort?.(silenceError(this.headersArrived));
    }
  }

  protected markLively(): void {
    this.lively = true;
  }

  /** The consumer holds the answer back (it is not the backend that is silent). */
  protected held(): boolean {
    return false;
  }

  /** Stops listening for the client and for the deadline: the call is over. */
  protected settle(): void {
    this.over = true;
    this.stopListening();
    this.deadlines.unwatch(this);
  }

  onData(chunk: Buffer): boolean {
    this.lively = true;
    this.size += chunk.length;
    if (this.size > this.limitBytes) {
      this.abort?.(tooLarge());
      return false;
    }
    this.chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    this.settle();
    this.leaveGate();
    const whole = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.resolve(new WholeResponse(this.status, this.rawHeaders, whole));
  }

  onError(err: Error): void {
    this.settle();
    this.leaveGate();
    this.reject(err);
  }
}

/**
 * A streamed call whose event stream goes to one consumer (`take`): chunks are handed to it as undici
 * reads them, with its backpressure passed back to the socket — no body stream, no pipe, no promise per
 * chunk (a body stream and a pipe cost about a quarter of a streamed request's CPU; docs/performance.md).
 * An answer that is not a 2xx event stream (an error, a JSON body) is read whole instead,
 * as WholeAnswer does.
 */
export class StreamingAnswer extends WholeAnswer {
  /** The answer is a 2xx event stream (else it is read whole, by WholeAnswer's callbacks). */
  private streaming = false;
  /** For a stream, `chunks` holds what the sink has not taken yet (not taken yet, or full). */
  private sink: StreamSink | null = null;
  /** The sink said it is full, and has not resumed since. */
  private sinkFull = false;
  /** undici was told to stop reading (onData returned false). */
  private upstreamPaused = false;
  private finished = false;
  private failure: Error | null = null;
  private resumeUpstream: (() => void) | null = null;
  /** Bytes since the stream's last line break: an endless line is cut off (MAX_SSE_LINE_BYTES). */
  private lineBytes = 0;

  override onHeaders(statusCode: number, rawHeaders: Buffer[], resume?: () => void): boolean {
    super.onHeaders(statusCode, rawHeaders);
    const contentType = statusCode < 200 ? undefined : rawContentType(rawHeaders);
    if (statusCode < 400 && contentType?.includes('text/event-stream')) {
      this.streaming = true;
      this.resumeUpstream = resume ?? null;
      this.resolve(new StreamedResponse(statusCode, rawHeaders, contentType, this));
    }
    return true;
  }

  override onData(chunk: Buffer): boolean {
    if (!this.streaming) return super.onData(chunk);
    this.markLively();
    // A chunk of whole events ends in a line break: told by its last byte, without a search (a native
    // call per chunk). Otherwise searched from the end (CR only for a stream whose lines end in a bare CR).
    const last = chunk.length - 1;
    let lineBreak = chunk[last] === LF ? last : chunk.lastIndexOf(LF);
    if (lineBreak < 0) lineBreak = chunk.lastIndexOf(CR);
    this.lineBytes = lineBreak < 0 ? this.lineBytes + chunk.length : chunk.length - 1 - lineBreak;
    if (this.lineBytes > MAX_SSE_LINE_BYTES) {
      this.abort?.(sseLineTooLong());
      return false;
    }
    if (this.sink === null || this.sinkFull || this.chunks.length > 0) {
      // Not taken yet (a microtask or two after the head): kept, and undici reads on — up to the limit
      // of a whole answer, should the taker never come. Otherwise the sink is full and undici should not
      // be reading: kept, and told again to stop.
      this.size += chunk.length;
      if (this.sink === null && this.size > this.limitBytes) {
        this.abort?.(tooLarge());
        return false;
      }
      this.chunks.push(chunk);
      if (this.sink === null) return true;
      this.upstreamPaused = true;
      return false;
    }
    if (this.sink.write(chunk)) return true;
    this.sinkFull = true;
    this.upstreamPaused = true;
    return false;
  }

  override onComplete(): void {
    if (!this.streaming) return super.onComplete();
    this.settle();
    this.leaveGate();
    this.finished = true;
    this.deliver();
  }

  override onError(err: Error): void {
    if (!this.streaming) return super.onError(err);
    this.settle();
    this.leaveGate();
    if (this.finished || this.failure !== null) return;
    this.failure = err;
    this.chunks.length = 0;
    this.sink?.fail(err);
  }

  /** Hands the stream to `sink`: what arrived so far at once (as far as it takes), the rest as it comes. */
  take(sink: StreamSink): StreamControl {
    if (this.sink !== null) throw new Error('the stream was already taken');
    this.sink = sink;
    if (this.failure !== null) sink.fail(this.failure);
    else this.deliver();
    return this;
  }

  /** Paused for a slow client: the backend is not the one keeping quiet. */
  protected override held(): boolean {
    return this.upstreamPaused;
  }

  /** The sink can take more: what waits goes to it, then undici reads on. */
  resume(): void {
    if (!this.sinkFull) return;
    this.sinkFull = false;
    this.deliver();
    if (!this.sinkFull && this.upstreamPaused && !this.finished) {
      this.upstreamPaused = false;
      this.resumeUpstream?.();
    }
  }

  /** The consumer is gone: the upstream request is aborted (its connection is not reused). */
  dispose(): void {
    if (this.finished || this.failure !== null) return;
    this.abort?.(new Error('client gone'));
  }

  /**
   * Writes waiting chunks while the sink takes them; ends the sink once all are written and undici is done.
   * Chunks that wait together go as one (until they reach JOINED_BYTES): a short answer often arrives whole
   * before the relay takes it, and each chunk costs the relay its checks and the client a write of its own
   * (docs/performance.md, "A stream's chunks and events").
   */
  private deliver(): void {
    const sink = this.sink;
    if (sink === null || this.failure !== null) return;
    while (this.chunks.length > 0 && !this.sinkFull) {
      if (!sink.write(this.nextWaiting())) this.sinkFull = true;
    }
    if (this.chunks.length === 0 && this.finished && !this.sinkFull) sink.end();
  }

  /** The waiting chunks at the front, joined until they reach JOINED_BYTES (a chunk alone as it is). */
  private nextWaiting(): Buffer {
    const chunks = this.chunks;
    let count = 1;
    let bytes = chunks[0]!.length;
    while (count < chunks.length && bytes < JOINED_BYTES) bytes += chunks[count++]!.length;
    if (count === 1) return chunks.shift()!;
    return Buffer.concat(chunks.splice(0, count), bytes);
  }
}

/** Waiting chunks are joined until they reach this many bytes (the last one joined may pass it). */
const JOINED_BYTES = 64 * 1024;

/** The answer of a StreamingAnswer that is an event stream: taken by one consumer, or iterated. */
class StreamedResponse extends DispatchedResponse implements UpstreamResponse {
  constructor(
    status: number,
    rawHeaders: Buffer[],
    contentType: string,
    private readonly answer: StreamingAnswer,
  ) {
    super(status, rawHeaders, contentType);
  }

  take(sink: StreamSink): StreamControl {
    return this.answer.take(sink);
  }

  dispose(): void {
    this.answer.dispose();
  }

  /** For a reader that iterates rather than takes: chunks queued, a few at most before undici waits. */
  get body(): AsyncIterable<Uint8Array> {
    return iterate(this);
  }
}

const QUEUED_CHUNKS = 16;

/** A stream that is taken by one sink, read as an async iterable instead (a few chunks queued at most). */
export async function* iterate(
  response: Pick<UpstreamResponse, 'dispose'> & { take(sink: StreamSink): StreamControl },
): AsyncGenerator<Uint8Array> {
  const queue: Buffer[] = [];
  let done = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const control = response.take({
    write: (chunk) => {
      queue.push(chunk);
      wake?.();
      return queue.length < QUEUED_CHUNKS;
    },
    end: () => {
      done = true;
      wake?.();
    },
    fail: (err) => {
      failure = err;
      wake?.();
    },
  });
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk !== undefined) {
        control.resume();
        yield chunk;
        continue;
      }
      if (failure !== null) throw failure;
      if (done) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
    }
  } finally {
    if (!done) response.dispose();
  }
}
