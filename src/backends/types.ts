import type { CancelSignal } from './cancel.js';
import type { ModelInfo } from '../protocols/canonical.js';
import type { Protocol } from '../protocols/types.js';

/** One chat call to a backend, already in the backend's own wire protocol. */
export interface BackendCall {
  /** Model name as the provider knows it (any `backend:` prefix already stripped). */
  model: string;
  stream: boolean;
  /** Request body in `backend.protocol`'s wire format. */
  body: Record<string, unknown>;
  /**
   * The same body as the client's exact JSON (text, or the bytes received), when it passes through
   * unchanged (same protocol, nothing rewritten): sent as is, sparing a re-serialisation on the hot path.
   * Or `JSON.stringify(body)`, when the pipeline serialised a rewritten body already (for the capture).
   */
  rawBody?: string | Buffer | undefined;
  /** Aborted when the client goes away or the proxy shuts down. */
  signal: CancelSignal;
  requestId: string;
  /**
   * Client headers to send beside the backend's own (same protocol only, chosen by the pipeline's
   * allow-list): never a credential, so the backend's key header is never replaced.
   */
  headers?: Readonly<Record<string, string>> | undefined;
  /**
   * The caller takes a 2xx event stream whole with `take` (it passes the stream on as it is): the answer
   * is then read without a body stream.
   */
  direct?: boolean;
}

/** Where a taken event stream goes, chunk by chunk. */
export interface StreamSink {
  /** False when the sink is full: no more until it calls `resume`. */
  write(chunk: Buffer): boolean;
  /** The stream ended as the backend ended it. */
  end(): void;
  /** The stream failed (or was aborted) mid-way. */
  fail(err: Error): void;
}

export interface StreamControl {
  /** The sink can take more again. */
  resume(): void;
}

/** A backend's answer, body not yet read: streamed bodies are passed on chunk by chunk. */
export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: AsyncIterable<Uint8Array>;
  /**
   * The whole body, when the call was not streamed: read then without a body stream (`body` still yields
   * the same bytes). `readBytes(response)` and `readText(response)` take whichever there is.
   */
  bytes?: Buffer;
  /** The content-type header, when the answer knows it without decoding all its headers. */
  contentType?: string | undefined;
  /** Releases the upstream connection early (client gone, answer not needed). */
  dispose(): void;
  /**
   * For a `direct` call answered with an event stream: hands the stream to one sink (once; `body` is then
   * not to be read).
   */
  take?(sink: StreamSink): StreamControl;
}

export interface Backend {
  readonly name: string;
  /** The wire protocol this backend speaks; requests are translated into it. */
  readonly protocol: Protocol;
  /** Null when usable, else the name of what must be set (e.g. `OPENAI_API_KEY`). */
  readonly missingCredential: string | null;
  /** Provider key *name* for captures and logs (never the key). */
  readonly credentialName: string | null;
  /** Throws ProxyError (502 unreachable, 504 timeout) when no response head arrives. */
  chat(call: BackendCall): Promise<UpstreamResponse>;
  /**
   * The headers a call with these client `headers` sends, credentials included: for the wire capture,
   * which redacts them (README, Wire capture). Never on the request path when the capture is off.
   */
  headersFor(headers: BackendCall['headers']): Readonly<Record<string, string>>;
  listModels(signal: CancelSignal): Promise<ModelInfo[]>;
  /**
   * Asks the provider to count a request's tokens (`call.body` in this backend's token-count format); absent
   * when the backend has no such API: the proxy then estimates locally.
   */
  countTokens?(call: BackendCall): Promise<UpstreamResponse>;
  /**
   * The same backend speaking another protocol natively, when it does (the `openai` backend also speaks the
   * Responses API): a request in that protocol then passes through instead of being translated.
   */
  speaking?(protocol: Protocol): Backend | undefined;
  /**
   * Responses API only: `GET` or `DELETE {base}/responses/{id}` of a response the backend stored, answered
   * whole; `tail` follows the id (`/input_items?…`).
   */
  storedResponse?(
    method: 'GET' | 'DELETE',
    id: string,
    signal: CancelSignal,
    tail?: string,
  ): Promise<UpstreamResponse>;
}
