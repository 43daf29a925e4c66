/** Types of the fake LLM provider (index.mjs); README.md beside it documents the behaviour. */
import type { IncomingHttpHeaders } from 'node:http';

export type ProviderProtocol = 'openai' | 'anthropic' | 'gemini' | 'responses';

/** Faults without a parameter, each with a line saying what it does. */
export declare const FAULTS: Readonly<Record<FaultName, string>>;

export type FaultName =
  | 'reset-before-headers'
  | 'no-head'
  | 'html-502'
  | 'context-length-exceeded'
  | 'content-filter'
  | 'key-in-error'
  | 'key-in-error-text'
  | 'invalid-json'
  | 'invalid-sse'
  | 'reset-mid-stream'
  | 'stall-mid-stream'
  | 'error-mid-stream'
  | 'key-in-stream-error'
  | 'malformed-chunk'
  | 'truncated-stream'
  | 'endless-line'
  | 'endless-event'
  | 'drip'
  | 'hold'
  | 'tools-reused-index'
  | 'missing-done'
  | 'flap'
  | 'rejects-prefill'
  | 'accepts-prefill';

/** A fault as written in a model name after `fault-`: a plain one, or a parameterised one. */
export type FaultSpec =
  | FaultName
  | `status-${number}`
  | `status-${number}-retry-after-${number}`
  | 'slow-first-byte'
  | `slow-first-byte-${number}`
  | 'slow-first-token'
  | `slow-first-token-${number}`
  | `first-${number}-${string}`;

export interface Fault {
  name: FaultName | 'status' | 'slow-first-byte' | 'slow-first-token' | 'first';
  status?: number;
  /** `first-<n>-…`: how many requests get `inner`. */
  count?: number;
  inner?: Fault;
  retryAfter?: string;
  ms?: number;
}

export declare function parseFault(spec: string): Fault | null;

/** The coding agents' shell tools by name, each with the arguments of the call the provider makes (`echo hi`). */
export declare const SHELL_TOOLS: Readonly<Record<string, Record<string, unknown>>>;
export declare function faultInModel(model: string): Fault | null;

export interface RecordedRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body; the raw text when it was not JSON; undefined when empty. */
  body: unknown;
  /** The model named (Gemini: in the path); the attempt log of failover tests reads it. */
  model: unknown;
  /** performance.now() when the request arrived. */
  at: number;
}

export interface FakeProviderOptions {
  /** Pieces a streamed answer (text, or a tool call's arguments) is cut into (default 4). */
  chunks?: number;
  /** Gap between pieces for the `drip` fault, and the default wait of `slow-first-byte` (default 150 ms). */
  dripMs?: number;
  /** Gap between the pieces of every normal stream (default 0: written at once). */
  pieceGapMs?: number;
  /** Port to listen on (default: a free one); `up()` reuses the port either way. */
  port?: number;
  /** Keep `requests` (default true); long runs turn it off. */
  record?: boolean;
  /**
   * Per protocol, the only key accepted (401 in the protocol's envelope otherwise); unset: any or none. The
   * Responses API (`/v1/responses`) takes the `openai` key.
   */
  keys?: Partial<Record<ProviderProtocol, string>>;
  /**
   * Per key value: a fault (one decided before any answer: `status-429-retry-after-30`, …) every chat call
   * sent with that key gets, ahead of the `keys` check and of any fault its model asks for (a provider key
   * that is rate-limited or revoked).
   */
  keyFaults?: Record<string, FaultSpec>;
  /** Per protocol, the model list's JSON body, in that protocol's shape. */
  models?: Partial<Record<ProviderProtocol, unknown>>;
  keepAliveTimeout?: number;
  /** The Responses API's ids: this prefix and the call's number (default `resp_fake_`). */
  responseIdPrefix?: string;
  /**
   * The benchmark's mode: OpenAI chat completions, the Responses API, Anthropic messages and Gemini answered
   * from buffers built at startup, `streamChunks` text pieces per stream, the text marked with `marker`; no
   * faults, nothing recorded.
   */
  canned?: { marker: string; streamChunks: number };
}

export interface FakeProvider {
  /** Root URL, e.g. `http://127.0.0.1:1234` (no path). */
  url: string;
  port: number;
  /** The base URL each protocol's backend is configured with (OpenAI and Anthropic end in `/v1`). */
  baseUrls: Record<ProviderProtocol, string>;
  /** Every request received (model lists included), oldest first. */
  requests: RecordedRequest[];
  /** Reasoning signatures given in answers to `thinking` models; a replayed one must be one of them. */
  issuedSignatures: Set<string>;
  /** Chat calls received so far. */
  readonly received: number;
  /** Chat responses the peer closed before they were finished: aborted or timed-out requests. */
  readonly aborted: number;
  /** Chat responses started and neither finished nor closed yet. */
  inFlight(): number;
  /** Open TCP connections. */
  connections(): number;
  /** The most TCP connections open at once since start, or since `resetPeak()`. */
  peakConnections(): number;
  /** Starts counting the peak again from the connections open now. */
  resetPeak(): void;
  /** Resolves once `aborted` reaches `count`. */
  waitForAborts(count: number): Promise<void>;
  /** Resolves once the chat call whose last user text is `text` was closed before it was answered in full. */
  closedEarly(text: string): Promise<void>;
  /**
   * Applies a fault to every request from now on (model lists too, for the faults that come before an
   * answer), ahead of any fault a model name asks for; `times` limits it to that many requests; null clears.
   */
  setFault(spec: FaultSpec | null, options?: { times?: number }): void;
  /** Lets every held (`hold`) answer continue. */
  release(): void;
  /** Stops listening and cuts every connection (a crashed provider). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

export declare function startFakeProvider(options?: FakeProviderOptions): Promise<FakeProvider>;
