import { jsonText } from '../protocols/json-text.js';
import { errorEnvelope } from '../protocols/error-envelopes.js';
import type { CancelSignal } from './cancel.js';
import type { UpstreamHttp } from './http.js';
import type { HttpProfile } from './profiles.js';
import type { ModelInfo } from '../protocols/canonical.js';
import type { Protocol } from '../protocols/types.js';
import type { Backend, BackendCall, UpstreamResponse } from './types.js';
import { KeyPool, type PoolKey, type PoolKeyLeave } from './key-pool.js';

export interface HttpBackendOptions {
  name: string;
  /** The provider's API root as its profile describes it (`/v1` included or not). */
  baseUrl: string;
  apiKey: string | undefined;
  /** Env var that holds the key, named in errors when it is missing; '' when the server needs no key. */
  apiKeyEnv: string;
  /** Extra fixed headers (OpenRouter's attribution headers, for instance). */
  extraHeaders?: Record<string, string>;
  /** A key pool (two keys or more; `apiKey` is then the first): requests rotate over them (key-pool.ts). */
  pool?: readonly PoolKey[];
  /** Told when a pool key leaves the rotation (the server logs it): the backend's name and the key's. */
  onKeyLeave?: (backend: string, leave: PoolKeyLeave) => void;
  /**
   * The pool of the backend this one is another door of (the Responses API beside chat completions): one
   * pool for the provider's keys, so a key refused at either door leaves both, and /metrics and
   * /internal/health count it once, under the backend's name.
   */
  keyPool?: KeyPool | null | undefined;
}

/** Answers that are about the key, not the request: the next key of a pool may be luckier. */
const KEY_REFUSALS: ReadonlySet<number> = new Set([401, 403, 429]);

/** A provider's `Retry-After` in seconds, when it gave one as a number. */
function retryAfterOf(headers: UpstreamResponse['headers']): number | null {
  const value = headers['retry-after'];
  return typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : null;
}

/** The headers of one key: built once per key, the key's own header kept apart so that it is written last. */
interface KeyHeaders {
  readonly all: Record<string, string>;
  /** The key's header alone ({} without a key): whatever else a call adds, never replaced. */
  readonly credential: Record<string, string>;
}

/**
 * A provider reached over HTTP in one wire protocol. What differs between protocols (URLs, the key's header,
 * the model list's shape) is the profile's; the rest is the same for all: headers built once, bodies sent as
 * received when they can be, calls made through the server's `UpstreamHttp`.
 */
export class HttpBackend implements Backend {
  readonly name: string;
  readonly protocol: HttpProfile['protocol'];
  readonly missingCredential: string | null;
  readonly credentialName: string | null;
  /** The chat call's URL for a model and mode, from URLs computed once where the profile allows. */
  private readonly chatUrl: (model: string, stream: boolean) => string;
  private readonly modelsUrl: string;
  /** Set when the provider has a token-count API (its profile's `countTokensUrl`). */
  readonly countTokens?: (call: BackendCall) => Promise<UpstreamResponse>;
  /** Built once: every call with the (first) key sends the same headers. */
  private readonly key: KeyHeaders;
  /** With a key pool: the pool, and the headers of each of its keys (built once too). */
  readonly keyPool: KeyPool | null = null;
  private readonly poolKeys: KeyHeaders[] = [];
  private readonly base: string;
  /** This backend speaking other protocols natively (the Responses API beside chat completions). */
  private readonly natives = new Map<Protocol, Backend>();

  constructor(
    private readonly profile: HttpProfile,
    opts: HttpBackendOptions,
    private readonly upstream: UpstreamHttp,
  ) {
    this.name = opts.name;
    this.protocol = profile.protocol;
    this.credentialName = opts.apiKeyEnv || null;
    // A local server (Ollama, vLLM) may need no key: only a named key env var makes one required.
    this.missingCredential = opts.apiKey || !opts.apiKeyEnv ? null : opts.apiKeyEnv;
    const base = opts.baseUrl.replace(/\/+$/, '');
    this.base = base;
    const chat = profile.chatUrl;
    if (typeof chat === 'string') {
      const url = `${base}${chat}`;
      this.chatUrl = () => url;
    } else {
      this.chatUrl = (model, stream) => chat(base, model, stream);
    }
    this.modelsUrl = `${base}${profile.modelsPath}`;
    const keyHeaders = (key: string | undefined): KeyHeaders => {
      const credential: Record<string, string> = key
        ? { [profile.keyHeader]: `${profile.keyPrefix}${key}` }
        : {};
      return {
        credential,
        all: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...profile.fixedHeaders,
          ...credential,
          ...opts.extraHeaders,
        },
      };
    };
    this.key = keyHeaders(opts.apiKey);
    if (opts.pool !== undefined && opts.pool.length > 1) {
      const onKeyLeave = opts.onKeyLeave;
      this.keyPool =
        opts.keyPool ??
        new KeyPool(opts.pool, Date.now, onKeyLeave && ((leave) => onKeyLeave(opts.name, leave)));
      this.poolKeys = opts.pool.map((k) => keyHeaders(k.value));
      this.credentialName = opts.pool.map((k) => k.name).join(',');
    }
    const countUrl = profile.countTokensUrl;
    if (countUrl !== null) {
      this.countTokens = (call) =>
        this.upstream.send({
          url: countUrl(base, call.model),
          method: 'POST',
          headers: this.headersWith(this.key, call.headers),
          body: this.bodyOf(call),
          signal: call.signal,
          whole: true,
          backendName: this.name,
        });
    }
  }

  /** The headers a call sends (with the first key of a pool): what the capture records, redacted. */
  headersFor(headers: BackendCall['headers']): Readonly<Record<string, string>> {
    return this.headersWith(this.key, headers);
  }

  /** The client's allowed headers may replace a default (Anthropic's API version), never the key. */
  private headersWith(key: KeyHeaders, headers: BackendCall['headers']): Readonly<Record<string, string>> {
    return headers === undefined ? key.all : { ...key.all, ...headers, ...key.credential };
  }

  chat(call: BackendCall): Promise<UpstreamResponse> {
    const pool = this.keyPool;
    if (pool === null) return this.send(call, this.key);
    return this.sendPooled(call, pool);
  }

  /**
   * A call with a pool's key: a key refused (401, 403) or rate-limited (429) is reported to the pool, and
   * the same call goes again with the next ready key — each key at most once per call. When no key is
   * ready, the last refusal is the answer (the client, or failover, gets it as without a pool).
   */
  private async sendPooled(call: BackendCall, pool: KeyPool): Promise<UpstreamResponse> {
    const resting = pool.restingFor();
    if (resting !== null) return this.poolResting(resting);
    for (let left = this.poolKeys.length; ; left--) {
      const index = pool.take();
      const answer = await this.send(call, this.poolKeys[index]!);
      if (!KEY_REFUSALS.has(answer.status)) return answer;
      pool.report(index, answer.status, retryAfterOf(answer.headers));
      if (left <= 1 || call.signal.aborted || !pool.hasReady()) return answer;
      answer.dispose();
    }
  }

  /**
   * Every usable key rests after a 429: the pool's own 429, in this backend's protocol, with the seconds
   * to the first key's return as `Retry-After` — what the provider would answer, without asking it again
   * (failover waits it out or moves on, as for the provider's).
   */
  private poolResting(ms: number): UpstreamResponse {
    const seconds = Math.max(1, Math.ceil(ms / 1000));
    const bytes = Buffer.from(
      JSON.stringify(
        errorEnvelope(this.protocol, {
          status: 429,
          code: 'rate_limit_exceeded',
          message: `Every key of backend '${this.name}' is resting after a rate limit; try again in ${seconds}s`,
        }),
      ),
    );
    return {
      status: 429,
      headers: { 'content-type': 'application/json', 'retry-after': String(seconds) },
      contentType: 'application/json',
      bytes,
      body: (async function* () {
        yield bytes;
      })(),
      dispose: () => undefined,
    };
  }

  private send(call: BackendCall, key: KeyHeaders): Promise<UpstreamResponse> {
    return this.upstream.send({
      url: this.chatUrl(call.model, call.stream),
      method: 'POST',
      headers: this.headersWith(key, call.headers),
      body: this.bodyOf(call),
      signal: call.signal,
      whole: !call.stream,
      direct: call.direct === true,
      backendName: this.name,
    });
  }

  /**
   * A call's body as sent: the client's bytes when unchanged, the provider's model name in it. A body
   * built here (translated, or changed by a step) is written by `jsonText`: what `JSON.stringify` writes,
   * without its walk over each character of the prompt's strings.
   */
  private bodyOf(call: BackendCall): string | Buffer {
    return this.profile.modelInBody && call.body.model !== call.model
      ? jsonText({ ...call.body, model: call.model })
      : (call.rawBody ?? jsonText(call.body));
  }

  /** Makes `view` (the same provider in another protocol) this backend's native door for that protocol. */
  alsoSpeaks(view: Backend): this {
    this.natives.set(view.protocol, view);
    return this;
  }

  speaking(protocol: Protocol): Backend | undefined {
    return protocol === this.protocol ? this : this.natives.get(protocol);
  }

  storedResponse(
    method: 'GET' | 'DELETE',
    id: string,
    signal: CancelSignal,
    tail = '',
  ): Promise<UpstreamResponse> {
    return this.upstream.send({
      url: `${this.base}/responses/${encodeURIComponent(id)}${tail}`,
      method,
      headers: this.key.all,
      signal,
      whole: true,
      backendName: this.name,
    });
  }

  async listModels(signal: CancelSignal): Promise<ModelInfo[]> {
    const list = await this.upstream.getJson(this.modelsUrl, this.key.all, signal, this.name);
    return this.profile.decodeModels(list, this.name);
  }
}
