import type { HeaderValue, RedactedHeaders, Redactor } from '../redaction/redactor.js';
import { StreamRedactor } from '../redaction/stream.js';

/** Where an event sits on the wire (SPEC §4). */
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

/** What a caller supplies for one event: anything but the writer's stamps, headers not yet redacted. */
export interface CaptureFields {
  readonly request_id: string;
  readonly client?: { readonly address?: string; readonly user_agent?: string };
  readonly backend?: string;
  readonly model?: string;
  readonly key_name?: { readonly proxy?: string; readonly provider?: string };
  readonly headers?: Readonly<Record<string, HeaderValue>>;
  readonly payload?: unknown;
  readonly metadata?: Record<string, unknown>;
}

/** Where recorded events go; `CaptureWriter` is one (tests use an array). */
export interface CaptureSink {
  write(event: object): void;
}

/** One streamed leg being captured: chunks redacted as a whole, so a secret split across chunks is caught. */
export interface CaptureStream {
  /** Records the text released so far (redacted); some of `text` may be held back until the next call. */
  chunk(text: string): void;
  /** Records what was held back, then `stream_end` (with `metadata`, e.g. an error or the chunk count). */
  end(metadata?: Record<string, unknown>): void;
}

/**
 * Records capture events with every header and payload redacted before they reach the sink. Never throws:
 * capture must not break traffic.
 */
export class CaptureRecorder {
  /**
   * `sinkRedactsLines`: the sink redacts each serialised line itself (CaptureWriter's `transformLine`), so
   * only the name-based header masking happens here and payloads are not deep-copied per event.
   */
  constructor(
    private readonly getRedactor: () => Redactor,
    private readonly sink: CaptureSink,
    private readonly sinkRedactsLines = false,
  ) {}

  /** Records one event; for streamed text prefer {@link openStream}, which catches secrets split across chunks. */
  record(direction: CaptureDirection, fields: CaptureFields): void {
    try {
      this.sink.write(this.redacted(this.getRedactor(), direction, fields));
    } catch {
      // Dropped: the writer counts its own drops; a redaction failure is not worth failing a request.
    }
  }

  /**
   * Records `stream_start` now and returns the leg's recorder. `fields` are repeated on every event of
   * the leg (`payload` only on `stream_start`). Chunk payloads are the redacted text released so far:
   * concatenating a leg's `stream_chunk` payloads gives the whole redacted stream, though the split points
   * may differ from the wire's by up to a small held-back tail (`stream_end` carries the wire counts:
   * `metadata.chunks`, `metadata.bytes`).
   */
  openStream(leg: StreamLeg, fields: CaptureFields): CaptureStream {
    const redactor = this.getRedactor();
    const stream = new StreamRedactor(redactor);
    const { payload: _payload, headers: _headers, metadata: _metadata, ...legFields } = fields;
    // Redacted once for the leg; chunk payloads are redacted by the stream, not again per event.
    const chunkBase = this.redacted(redactor, 'stream_chunk', legFields);
    let chunks = 0;
    let bytes = 0;
    this.record('stream_start', { ...fields, metadata: { ...fields.metadata, leg } });
    const recordText = (text: string): void => {
      // `chunk`: how many wire chunks had arrived when this text was released.
      if (text !== '') this.sink.write({ ...chunkBase, payload: text, metadata: { leg, chunk: chunks } });
    };
    return {
      chunk: (text) => {
        try {
          chunks++;
          bytes += Buffer.byteLength(text);
          recordText(stream.push(text));
        } catch {
          // See record().
        }
      },
      end: (metadata) => {
        try {
          recordText(stream.flush());
          this.record('stream_end', { ...legFields, metadata: { ...metadata, leg, chunks, bytes } });
        } catch {
          // See record().
        }
      },
    };
  }

  /** The event in SPEC §4 field order; `undefined` fields vanish when serialised. */
  private redacted(redactor: Redactor, direction: CaptureDirection, fields: CaptureFields): object {
    if (this.sinkRedactsLines) {
      return {
        request_id: fields.request_id,
        direction,
        client: fields.client,
        backend: fields.backend,
        model: fields.model,
        key_name: fields.key_name,
        headers: fields.headers === undefined ? undefined : redactor.redactHeaders(fields.headers),
        payload: fields.payload,
        metadata: fields.metadata,
      };
    }
    return {
      request_id: redactor.redact(fields.request_id),
      direction,
      client: redactor.redactValue(fields.client),
      backend: fields.backend,
      model: fields.model === undefined ? undefined : redactor.redact(fields.model),
      key_name: fields.key_name,
      headers: fields.headers === undefined ? undefined : redactor.redactHeaders(fields.headers),
      payload: redactor.redactValue(fields.payload),
      metadata: redactor.redactValue(fields.metadata),
    };
  }
}
