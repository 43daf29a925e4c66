import { StringDecoder } from 'node:string_decoder';
import type {
  CaptureRecorder,
  CaptureDirection,
  CaptureStream,
  EventFields,
  RequestRecorder,
  StreamLeg,
} from '../capture/events.js';
import type { ChatExchange } from './exchange.js';

/** Where a stream passed on as it arrives is told what flows (see RequestCapture.passThrough). */
export interface StreamTap {
  chunk(bytes: Uint8Array): void;
  /** The stream ended; `added`: what the proxy wrote after the backend's chunks, if anything. */
  end(added: string | null): void;
  /** The backend's stream failed; `added` as for end (null when the client had gone). */
  fail(err: Error, added: string | null): void;
}

/** What a failed stream's `stream_end` names: the error's code. */
function failureCode(err: unknown): string {
  return (err as { code?: string } | null)?.code ?? 'stream_error';
}

/** Who asked, for an answer the proxy wrote itself: what the capture's shared fields are made of. */
export interface OwnAnswerRequest {
  readonly id: string;
  readonly method: string;
  readonly url: string;
  readonly ip: string;
  readonly userAgent: string | undefined;
  /** The proxy key's name once authenticated (never the key); null before, or when auth is off. */
  readonly keyName: string | null;
  /** Backend and model, once the request was routed. */
  readonly backend: string | null;
  readonly model: string | null;
}

/**
 * Records an answer the proxy wrote on its own — an error, a refusal, a 404 — as its `outbound_response`
 * line (README, Wire capture). Only what the proxy sent is recorded, with the request's method and URL in
 * the metadata (redacted as every event is): never the request's headers or body, which for a refused
 * request may hold a wrong key or anything an unauthenticated client chose to send.
 */
export function recordOwnAnswer(
  recorder: CaptureRecorder,
  request: OwnAnswerRequest,
  status: number,
  answer: Pick<EventFields, 'payload' | 'payloadJson'>,
  metadata?: Record<string, unknown>,
): void {
  const client =
    request.userAgent === undefined
      ? { address: request.ip }
      : { address: request.ip, user_agent: request.userAgent };
  recorder
    .forRequest({
      request_id: request.id,
      client,
      ...(request.backend === null ? {} : { backend: request.backend }),
      ...(request.model === null ? {} : { model: request.model }),
      ...(request.keyName === null ? {} : { key_name: { proxy: request.keyName } }),
    })
    .record('outbound_response', {
      ...answer,
      metadata: { status, method: request.method, url: request.url, ...metadata },
    });
}

/** The capture of one chat request: the fields every event shares come from the exchange and the route. */
export class RequestCapture {
  private readonly events: RequestRecorder;

  constructor(
    recorder: CaptureRecorder,
    request: Pick<ChatExchange, 'id' | 'headers' | 'ip' | 'authKeyName'>,
    backend: string,
    model: string,
    providerKeyName: string | null,
  ) {
    const userAgent = request.headers['user-agent'];
    const keyName: { proxy?: string; provider?: string } = {};
    if (request.authKeyName) keyName.proxy = request.authKeyName;
    if (providerKeyName) keyName.provider = providerKeyName;
    this.events = recorder.forRequest({
      request_id: request.id,
      client:
        typeof userAgent === 'string'
          ? { address: request.ip, user_agent: userAgent }
          : { address: request.ip },
      backend,
      model,
      key_name: keyName,
    });
  }

  record(direction: CaptureDirection, fields: EventFields): void {
    this.events.record(direction, fields);
  }

  /**
   * The capture of a same-protocol stream passed on as it arrives: both legs are recorded from the one
   * flow of chunks — what the backend sent (`inbound`) and what the client got (`outbound`: the same
   * chunks, then whatever the proxy added: the error event of a failed stream, the end an unfinished one
   * was owed). Chunks are decoded once for both.
   */
  passThrough(metadata: Record<string, unknown>): StreamTap {
    const legs = this.events.openPassThrough(metadata);
    const decoder = new StringDecoder('utf8');
    // Chunks that arrive within a few milliseconds are recorded as one piece (see waitingLegs): an event
    // per wire chunk would cost more than the stream itself.
    let pending: Uint8Array[] = [];
    /** The chunks waiting, decoded (they leave `pending`). */
    const take = (): string => {
      let text = '';
      for (const chunk of pending) text += decoder.write(chunk as Buffer);
      pending = [];
      return text;
    };
    const waiting = {
      flush: (): void => {
        if (pending.length === 0) return;
        const chunks = pending.length;
        const text = take();
        if (text !== '') legs.chunk(text, chunks);
      },
    };
    // The chunks still waiting are recorded with what the redaction held back, as one piece.
    const finish = (metadata: Record<string, unknown>, added: string | null): void => {
      const chunks = pending.length;
      legs.end(metadata, added, take() + decoder.end(), chunks);
    };
    return {
      chunk: (bytes) => {
        if (pending.length === 0) waitToRecord(waiting);
        pending.push(bytes);
      },
      end: (added) => finish({}, added),
      fail: (err, added) => finish({ error: failureCode(err) }, added),
    };
  }

  /**
   * One leg of a stream recorded as it flows, told its chunks one at a time (bytes as received, or text).
   * Chunks that arrive close together are recorded as one piece (see LegBatches): a record per chunk
   * costs more than the stream itself; `end` records what is pending, then `stream_end`.
   */
  openLeg(leg: StreamLeg, metadata: Record<string, unknown>): LegTap {
    return new LegTap(this.events.openStream(leg, metadata));
  }

  /** Tees a byte stream into a capture leg as it flows; the bytes pass on untouched. */
  async *tee<T extends Uint8Array | string>(
    source: AsyncIterable<T>,
    leg: StreamLeg,
    metadata: Record<string, unknown>,
  ): AsyncGenerator<T> {
    const stream: CaptureStream = this.events.openStream(leg, metadata);
    const decoder = new StringDecoder('utf8');
    let failure: string | undefined;
    try {
      for await (const chunk of source) {
        stream.chunk(typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer));
        yield chunk;
      }
    } catch (err) {
      failure = failureCode(err);
      throw err;
    } finally {
      const rest = decoder.end();
      if (rest) stream.chunk(rest);
      stream.end(failure ? { error: failure } : {});
    }
  }
}

/** How long chunks of a captured leg wait to be recorded together, at most. */
const LEG_BATCH_MS = 5;

/**
 * The legs with chunks waiting to be recorded, all flushed by one timer: a leg's chunks of a few
 * milliseconds become one `stream_chunk` event (one redaction, one line) rather than one each.
 */
const waitingLegs: Array<{ flush(): void }> = [];
let legTimer: NodeJS.Timeout | undefined;

function flushWaitingLegs(): void {
  legTimer = undefined;
  const legs = waitingLegs.splice(0);
  for (const leg of legs) leg.flush();
}

/** `leg` has chunks waiting: its `flush` is called within LEG_BATCH_MS (or earlier, by its own end). */
function waitToRecord(leg: { flush(): void }): void {
  waitingLegs.push(leg);
  if (legTimer === undefined) {
    legTimer = setTimeout(flushWaitingLegs, LEG_BATCH_MS);
    legTimer.unref();
  }
}

/** See RequestCapture.openLeg. */
export class LegTap {
  /** Made for the first chunk given as bytes: a translated stream's legs are told text only. */
  private decoder: StringDecoder | undefined;
  private pending = '';
  /** Wire chunks in `pending`. */
  private chunks = 0;
  private waiting = false;
  private ended = false;

  constructor(private readonly stream: CaptureStream) {}

  chunk(chunk: Uint8Array | string): void {
    if (this.ended) return;
    this.pending +=
      typeof chunk === 'string' ? chunk : (this.decoder ??= new StringDecoder('utf8')).write(chunk as Buffer);
    this.chunks++;
    if (this.waiting) return;
    this.waiting = true;
    waitToRecord(this);
  }

  /** Records the chunks waiting (the timer's call). */
  flush(): void {
    this.waiting = false;
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    this.stream.chunk(text, this.chunks);
    this.chunks = 0;
  }

  /**
   * The leg ended (`failure`: why, when the stream broke): what waits and what the redaction held back, as
   * one piece, then `stream_end`.
   */
  end(failure?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    const text = this.decoder === undefined ? this.pending : this.pending + this.decoder.end();
    this.pending = '';
    this.stream.end(failure === undefined ? {} : { error: failureCode(failure) }, text, this.chunks);
    this.chunks = 0;
  }
}
