import type { ChatRequest, ChatResponse, ModelInfo, StreamEvent } from './canonical.js';
import type { ErrorInfo } from './error-envelopes.js';

/** One parsed server-sent event. */
export interface SseMessage {
  event?: string | undefined;
  data: string;
}

export interface DecodeContext {
  /** Model name the client asked for (Gemini carries it in the URL, not the body). */
  model: string;
  stream: boolean;
}

/** Turns one protocol's SSE events into canonical events; keeps whatever state the protocol needs. */
export interface StreamDecoder {
  push(message: SseMessage): StreamEvent[];
  /**
   * Each text event is one JSON string member's value as the wire wrote it, and an event read as text
   * alone leaves the decoder as it found it: the next event of the same shape may be read without it
   * (`RepeatedText`).
   */
  readonly textRepeats?: boolean;
  /** The source ended: events still owed (a finish the protocol never terminated explicitly). */
  end(): StreamEvent[];
}

/** Turns canonical events into one protocol's exact SSE text. Events after a finish or error are ignored. */
export interface StreamEncoder {
  encode(event: StreamEvent): string;
  /**
   * `encode({ type: 'text', text })`, byte for byte, without the event's object: a stream's text deltas
   * read without the decoder go straight here (`StreamTranslation`; docs/performance.md).
   */
  encodeText?(text: string): string;
  /** True once a finish or an error has been written. */
  readonly done: boolean;
  /** True once an error has been written: the stream ended failing. */
  readonly failed: boolean;
}

export interface StreamMeta {
  model: string;
  id: string;
  /**
   * The client asked for the stream's usage (OpenAI chat's `stream_options.include_usage`): the OpenAI
   * encoder writes its usage chunk (`choices: []`) only then, as OpenAI does — a client that did not ask
   * may read `choices[0]` of every chunk. Other protocols carry usage in their own events, always.
   */
  includeUsage?: boolean | undefined;
}

export interface ProtocolCodec {
  /** Throws ProxyError(400, …, { param }) for anything the canonical model cannot hold. */
  decodeRequest(body: unknown, ctx: DecodeContext): ChatRequest;
  /** Throws ProxyError(400, …, { param }) for anything this protocol cannot express. */
  encodeRequest(req: ChatRequest): Record<string, unknown>;
  decodeResponse(body: unknown): ChatResponse;
  encodeResponse(res: ChatResponse): Record<string, unknown>;
  /**
   * `JSON.stringify(encodeResponse(res))`, written directly where the answer has the common shape (text
   * only): no objects built for it, no serialiser's walk (docs/performance.md).
   */
  encodeResponseText?(res: ChatResponse): string;
  createStreamDecoder(): StreamDecoder;
  createStreamEncoder(meta: StreamMeta): StreamEncoder;
  /**
   * One SSE error event, for a failure in the middle of a stream; `sequence` is the stream's next event
   * number, for a protocol that numbers its events (Responses: `sequence_number`, 0 when unknown).
   */
  encodeError(info: ErrorInfo, sequence?: number): string;
  /** Reads a backend's error body; the status is kept as given. */
  decodeError(status: number, bodyText: string): ErrorInfo;
  encodeModelList(models: ModelInfo[]): Record<string, unknown>;
}

/** Clock for the `created` timestamps the wire formats carry; injectable so tests are deterministic. */
export interface CodecOptions {
  now?: () => number;
}
