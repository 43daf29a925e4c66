import type { HeaderValue, RedactedHeaders, Redactor } from '../redaction/redactor.js';
import { StreamRedactor } from '../redaction/stream.js';

/** Where an event sits on the wire (README, Wire capture: the directions). */
export type CaptureDirection =
  | 'inbound_request' // client → proxy
  | 'outbound_request' // proxy → backend
  | 'inbound_response' // backend → proxy
  | 'outbound_response' // proxy → client
  | 'stream_start'
  | 'stream_chunk'
  | 'stream_end';

/** The two legs of a streamed answer: backend → proxy (`inbound`) and proxy → client (`outbound`). */
export type StreamLeg = 'inbound' | 'outbound';

/** One line of the capture file. `timestamp` and `sequence` are added by the writer. */
export interface CaptureEvent {
  readonly timestamp: string;
  readonly sequence: number;
  readonly request_id: string;
  readonly direction: CaptureDirection;
  readonly client?: { readonly address?: string; readonly user_agent?: string };
  readonly backend?: string;
  readonly model?: string;
  /** Names only, never the keys. */
  readonly key_name?: { readonly proxy?: string; readonly provider?: string };
  readonly headers?: RedactedHeaders;
  readonly payload?: unknown;
  readonly metadata?: Record<string, unknown>;
}

/** The fields every event of one request shares (README, Wire capture), serialised once per request. */
export type SharedFields = Pick<CaptureEvent, 'request_id' | 'client' | 'backend' | 'model' | 'key_name'>;

/** What a caller supplies for one event: headers not yet redacted, the payload as a value. */
export interface EventFields {
  readonly headers?: Readonly<Record<string, HeaderValue>>;
  /** The payload as a value; bytes (an answer's body as received) are UTF-8 text, recorded as a string. */
  readonly payload?: unknown;
  /**
   * The payload's own JSON text, when the caller has it (a client's body as received, as text or bytes):
   * spliced in as it is rather than serialised again, when it is one line.
   */
  readonly payloadJson?: string | Uint8Array | undefined;
  readonly metadata?: Record<string, unknown>;
}

/**
 * A piece of an event given as UTF-8 bytes, turned into JSON text by the sink (wherever it does its work):
 * `json` — JSON text, spliced in if it is one line, else parsed and serialised again; `string` — text,
 * recorded as a JSON string. Bytes as received need no decoding or encoding on the request path.
 */
export interface EncodedPiece {
  readonly utf8: Uint8Array;
  readonly as: 'json' | 'string';
}

/**
 * A piece of an event that is a stream's text, redacted already as part of its whole stream (see
 * redactedStream), JSON-encoded by the sink: streamed text, full of quotes to escape, is encoded
 * off the request path, and redacted again only where JSON-encoding it could form a secret
 * (Redactor.jsonEncodingMayForm).
 */
export interface StringPiece {
  readonly text: string;
}

/** One piece of an event's members: JSON text, or what the sink turns into JSON text. */
export type EventPiece = string | EncodedPiece | StringPiece;

/** The JSON text of an event's pieces, joined. */
export function eventText(members: readonly EventPiece[]): string {
  let text = '';
  for (const piece of members) {
    text +=
      typeof piece === 'string' ? piece : 'text' in piece ? JSON.stringify(piece.text) : encodedText(piece);
  }
  return text;
}

/** The JSON text of an {@link EncodedPiece}. */
export function encodedText(piece: EncodedPiece): string {
  const text = Buffer.from(piece.utf8.buffer, piece.utf8.byteOffset, piece.utf8.byteLength).toString('utf8');
  if (piece.as === 'string') return JSON.stringify(text);
  if (!text.includes('\n') && !text.includes('\r')) return text;
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    // Not JSON after all: kept, as a string, rather than breaking the line.
    return JSON.stringify(text);
  }
}

/**
 * Where recorded events go. `writeEvent` takes one event's members as JSON text without the braces
 * (`"request_id":…,"direction":…`), in pieces to be joined, **not yet redacted** (a StringPiece's text
 * aside), and the redactor in force when it was recorded: the sink must pass the text through `redactor`
 * before it goes anywhere, and adds its own stamps in front. WorkerCaptureWriter (redacts and writes in a worker thread) and CaptureWriter (in
 * this thread) are sinks.
 *
 * Redacting a whole event's text catches whatever a field holds — the masks are plain characters, so the
 * text stays valid JSON — and costs far less than walking and copying every value.
 */
export interface CaptureSink {
  writeEvent(members: readonly EventPiece[], redactor: Redactor): void;
  /**
   * One stream's events on `legs`: `stream_start` of each leg (now, with `metadata` and the leg) and its
   * chunk events, whose text the sink redacts as one stream (a secret split across chunks is caught) with
   * `redactor`: each text pushed releases what can no longer change, recorded as one `stream_chunk` event
   * per leg — the released text as the payload, the leg and chunk count as metadata — and nothing when
   * nothing is released yet; then each leg's `stream_end` (StreamSink.end). `head`: the members every event
   * of the request shares. A sink without it is handed each event's text, the stream's redacted already
   * (see {@link redactedStream}); WorkerCaptureWriter redacts a stream's text, and makes its start and end
   * events, in its worker.
   */
  openStream?(
    head: StreamHead,
    legs: readonly StreamLeg[],
    metadata: Record<string, unknown>,
    redactor: Redactor,
  ): StreamSink;
}

/**
 * The members every event of a request shares, around its direction: an event is
 * `id,"direction":"…"rest` and its own members (RequestRecorder).
 */
export interface StreamHead {
  /** `"request_id":…` */
  readonly id: string;
  /** `,"client":…,"backend":…,"model":…,"key_name":…` (those the request has) */
  readonly rest: string;
}

/** `head`'s members with `direction` between them. */
export function headOf(head: StreamHead, direction: CaptureDirection): string {
  return `${head.id},"direction":"${direction}"${head.rest}`;
}

/** See CaptureSink.openStream. */
export interface StreamSink {
  /**
   * `text` (not yet redacted) in; what the stream releases recorded. `chunk`: the wire chunks that had
   * arrived with it; `last`: what was held back is released too, and the stream's text is done.
   */
  push(text: string, chunk: number, last: boolean): void;
  /**
   * Records `leg`'s `stream_end`, redacted with `redactor` (the one in force now): its metadata is
   * `metadata`'s members (none holds `leg`, `chunks` or `bytes`), then the leg, `chunks` and `bytes`.
   */
  end(
    leg: StreamLeg,
    metadata: Record<string, unknown>,
    chunks: number,
    bytes: number,
    redactor: Redactor,
  ): void;
}

/**
 * A stream's events made here, its text redacted here, in the caller's thread, and handed to `sink` event by
 * event (see CaptureSink.openStream).
 */
export function redactedStream(
  sink: CaptureSink,
  head: StreamHead,
  legs: readonly StreamLeg[],
  metadata: Record<string, unknown>,
  redactor: Redactor,
): StreamSink {
  for (const leg of legs) {
    quietly(() =>
      sink.writeEvent(
        [headOf(head, 'stream_start'), `,"metadata":${JSON.stringify({ ...metadata, leg })}`],
        redactor,
      ),
    );
  }
  const chunkHead = headOf(head, 'stream_chunk');
  const stream = new StreamRedactor(redactor);
  return {
    push: (text, chunk, last) => {
      const released = text === '' ? '' : stream.push(text);
      const out = last ? released + stream.flush() : released;
      if (out === '') return;
      for (const leg of legs) {
        // `chunk`: how many wire chunks had arrived when this text was released.
        const own = `,"metadata":{"leg":"${leg}","chunk":${chunk}}`;
        sink.writeEvent([chunkHead, ',"payload":', { text: out }, own], redactor);
      }
    },
    end: (leg, endMetadata, chunks, bytes, endRedactor) => {
      const own = JSON.stringify({ ...endMetadata, leg, chunks, bytes });
      sink.writeEvent([headOf(head, 'stream_end'), `,"metadata":${own}`], endRedactor);
    },
  };
}

/** See RequestRecorder.openPassThrough. */
export interface PassThroughCapture {
  /** Records the text released so far (redacted) on both legs; `wireChunks` as for CaptureStream. */
  chunk(text: string, wireChunks?: number): void;
  /**
   * Records `text` (the last chunks, `wireChunks` of them) and what was held back as one piece, `stream_end`
   * of the inbound leg (with `inboundMetadata`, e.g. an error), then `added` and `stream_end` on the
   * outbound leg.
   */
  end(
    inboundMetadata: Record<string, unknown>,
    added: string | null,
    text?: string,
    wireChunks?: number,
  ): void;
}

const BOTH_LEGS: readonly StreamLeg[] = ['inbound', 'outbound'];

/** One streamed leg being captured: chunks redacted as a whole, so a secret split across chunks is caught. */
export interface CaptureStream {
  /**
   * Records the text released so far (redacted); some of `text` may be held back until the next call.
   * `wireChunks`: how many chunks of the wire `text` is (more than one when a caller batched them).
   */
  chunk(text: string, wireChunks?: number): void;
  /**
   * Records `text` (the leg's last chunks, `wireChunks` of them) and what was held back, as one piece, then
   * `stream_end` (with `metadata`, e.g. an error).
   */
  end(metadata?: Record<string, unknown>, text?: string, wireChunks?: number): void;
}

/**
 * Records capture events as JSON text and hands them to the sink with the redactor in force, which
 * redacts them there (see {@link CaptureSink}). Never throws: capture must not break traffic.
 */
export class CaptureRecorder {
  constructor(
    private readonly getRedactor: () => Redactor,
    private readonly sink: CaptureSink,
  ) {}

  /** The recorder of one request's events; the members they share are serialised once, here. */
  forRequest(shared: SharedFields): RequestRecorder {
    const id = `"request_id":${JSON.stringify(shared.request_id)}`;
    return new RequestRecorder(this.getRedactor, this.sink, { id, rest: sharedMembers(shared) });
  }
}

/** `,"client":…,"backend":…,"model":…,"key_name":…` as JSON text, not yet redacted. */
function sharedMembers(shared: SharedFields): string {
  let rest = '';
  if (shared.client !== undefined) rest += `,"client":${JSON.stringify(shared.client)}`;
  if (shared.backend !== undefined) rest += `,"backend":${JSON.stringify(shared.backend)}`;
  if (shared.model !== undefined) rest += `,"model":${JSON.stringify(shared.model)}`;
  if (shared.key_name !== undefined) rest += `,"key_name":${JSON.stringify(shared.key_name)}`;
  return rest;
}

/** The capture of one request. */
export class RequestRecorder {
  private lastPayload: { source: unknown; json: EventPiece | undefined } | undefined;

  /**
   * `shared`: `"request_id":…` — only the direction comes between it and the rest
   * (`,"client":…,"backend":…,"model":…,"key_name":…`), in the order README "Wire capture" lists them.
   */
  constructor(
    private readonly getRedactor: () => Redactor,
    private readonly sink: CaptureSink,
    private readonly shared: StreamHead,
  ) {}

  /** Records one event; for streamed text use {@link openStream}, which catches secrets split across chunks. */
  record(direction: CaptureDirection, fields: EventFields): void {
    try {
      const redactor = this.getRedactor();
      const members: EventPiece[] = [this.head(direction)];
      if (fields.headers !== undefined) {
        members.push(`,"headers":${JSON.stringify(redactor.headersForTextRedaction(fields.headers))}`);
      }
      const payload = this.payload(fields);
      // A payload can be large: it stays a piece of its own rather than being copied into a longer string.
      if (payload !== undefined) members.push(',"payload":', payload);
      if (fields.metadata !== undefined) members.push(`,"metadata":${JSON.stringify(fields.metadata)}`);
      this.sink.writeEvent(members, redactor);
    } catch {
      // Dropped: the writer counts its own drops; a capture failure is not worth failing a request.
    }
  }

  /**
   * Records `stream_start` (with `metadata` and the leg) now and returns the leg's recorder. Chunk payloads
   * are the redacted text released so far: concatenating a leg's `stream_chunk` payloads gives the whole
   * redacted stream, though the split points may differ from the wire's by up to a small held-back tail
   * (`stream_end` carries the wire counts: `metadata.chunks`, `metadata.bytes`). The stream is redacted as
   * a whole, so that a secret split across chunks is caught — by the sink (CaptureSink.openStream: the
   * capture worker), or here for a sink without it; the sink redacts the rest of each event, and the
   * released text again where JSON-encoding it could form a secret (see StringPiece).
   */
  openStream(leg: StreamLeg, metadata: Record<string, unknown> = {}): CaptureStream {
    const legs = this.streamLegs([leg], metadata);
    return {
      chunk: (text, wireChunks) => quietly(() => legs.push(text, wireChunks)),
      end: (endMetadata = {}, text = '', wireChunks = 0) =>
        quietly(() => {
          legs.push(text, wireChunks, true);
          legs.end(leg, endMetadata);
        }),
    };
  }

  /**
   * Both legs of a stream passed on as it arrives, which carry the same text: `inbound` as the backend sent
   * it, `outbound` as the client got it — which may end with text of the proxy's own (`added`: the error
   * event of a failed stream, the end an unfinished one was owed). The text is redacted once, for both.
   */
  openPassThrough(metadata: Record<string, unknown> = {}): PassThroughCapture {
    const legs = this.streamLegs(BOTH_LEGS, metadata);
    return {
      chunk: (text, wireChunks) => quietly(() => legs.push(text, wireChunks)),
      end: (inboundMetadata, added, text = '', wireChunks = 0) =>
        quietly(() => {
          legs.push(text, wireChunks, true);
          legs.end('inbound', inboundMetadata);
          if (added !== null) legs.add('outbound', added);
          legs.end('outbound', {});
        }),
    };
  }

  /**
   * Records `stream_start` for each of `legs` and returns what records their chunks: text pushed is
   * redacted as one stream and recorded on every leg (with what was held back, when it is the `last`);
   * `add` records text of the proxy's own on one leg; `end`, a leg's `stream_end`, with its wire counts
   * (text the proxy added included).
   */
  private streamLegs(legs: readonly StreamLeg[], metadata: Record<string, unknown>) {
    const redactor = this.getRedactor();
    let chunks = 0;
    let bytes = 0;
    let addedChunks = 0;
    let addedBytes = 0;
    const sink = this.sink;
    const head = this.shared;
    const stream =
      sink.openStream?.(head, legs, metadata, redactor) ??
      redactedStream(sink, head, legs, metadata, redactor);
    return {
      push: (text: string, wireChunks = 1, last = false): void => {
        chunks += wireChunks;
        if (text !== '') bytes += Buffer.byteLength(text);
        if (text !== '' || last) stream.push(text, chunks, last);
      },
      add: (leg: StreamLeg, text: string): void => {
        if (text === '') return;
        addedChunks++;
        addedBytes += Buffer.byteLength(text);
        const own = `,"metadata":{"leg":"${leg}","chunk":${chunks + addedChunks}}`;
        const redacted = redactor.redact(text);
        if (redacted !== '') {
          sink.writeEvent([this.head('stream_chunk'), ',"payload":', { text: redacted }, own], redactor);
        }
      },
      end: (leg: StreamLeg, endMetadata: Record<string, unknown>): void => {
        const added = leg === 'outbound' && addedChunks > 0;
        stream.end(
          leg,
          endMetadata,
          added ? chunks + addedChunks : chunks,
          added ? bytes + addedBytes : bytes,
          this.getRedactor(),
        );
      },
    };
  }

  /**
   * The payload as JSON text. A request's payload often goes out as it came in (the client's body to a
   * same-protocol backend, the backend's answer to the client): the last one is kept and not serialised
   * twice.
   */
  private payload(fields: EventFields): EventPiece | undefined {
    const source = fields.payloadJson ?? fields.payload;
    if (source === undefined) return undefined;
    const last = this.lastPayload;
    if (last !== undefined && last.source === source) return last.json;
    const json = payloadJson(fields);
    this.lastPayload = { source, json };
    return json;
  }

  private head(direction: CaptureDirection): string {
    return headOf(this.shared, direction);
  }
}

/** Runs `work`, swallowing a failure: capture must not break traffic (the sink counts its own drops). */
function quietly(work: () => void): void {
  try {
    work();
  } catch {
    // See RequestRecorder.record().
  }
}

/** The payload as JSON text: the caller's own text when it has one that fits on the line, else serialised. */
function payloadJson(fields: EventFields): EventPiece | undefined {
  const raw = fields.payloadJson;
  if (raw instanceof Uint8Array) return { utf8: raw, as: 'json' };
  if (raw !== undefined && !raw.includes('\n') && !raw.includes('\r')) return raw;
  const payload = fields.payload;
  if (payload instanceof Uint8Array) return { utf8: payload, as: 'string' };
  return payload === undefined ? undefined : JSON.stringify(payload);
}
