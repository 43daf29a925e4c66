import type { CancelSignal } from './cancel.js';
import type { UpstreamHttp } from './http.js';
import type { HttpProfile } from './profiles.js';
import type { ModelInfo } from '../protocols/canonical.js';
import type { Backend, BackendCall, UpstreamResponse } from './types.js';
import { KeyPool, type PoolKey } from './key-pool.js';

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
}

/** A provider's `Retry-After` in seconds, when it gave one as a number. */
function retryAfterOf(headers: UpstreamResponse['headers']): number | null {
  const value = headers['retry-after'];
  return typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : null;
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
  /** Built once: every call sends the same credential headers. */
  private readonly headers: Record<string, string>;
  /** With a key pool: the pool, and the headers of each of its keys (built once too). */
  readonly keyPool: KeyPool | null = null;
  private readonly poolHeaders: Array<Record<string, string>> = [];

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
    const chat = profile.chatUrl;
    if (typeof chat === 'string') {
      const url = `${base}${chat}`;
      this.chatUrl = () => url;
    } else {
      this.chatUrl = (model, stream) => chat(base, model, stream);
    }
    this.modelsUrl = `${base}${profile.modelsPath}`;
    const headersFor = (key: string | undefined): Record<string, string> => ({
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...profile.fixedHeaders,
      ...(key ? { [profile.keyHeader]: `${profile.keyPrefix}${key}` } : {}),
      ...opts.extraHeaders,
    });
    this.headers = headersFor(opts.apiKey);
    if (opts.pool !== undefined && opts.pool.length > 1) {
      this.keyPool = new KeyPool(opts.pool);
      this.poolHeaders = opts.pool.map((k) => headersFor(k.value));
      this.credentialName = opts.pool.map((k) => k.name).join(',');
    }
  }

  chat(call: BackendCall): Promise<UpstreamResponse> {
    const pool = this.keyPool;
    if (pool === null) return this.send(call, this.headers);
    const index = pool.take();
    return this.send(call, this.poolHeaders[index]!).then((answer) => {
      pool.report(index, answer.status, retryAfterOf(answer.headers));
      return answer;
    });
  }

  private send(call: BackendCall, headers: Record<string, string>): Promise<UpstreamResponse> {
    return this.upstream.send({
      url: this.chatUrl(call.model, call.stream),
      method: 'POST',
      headers,
      body:
        this.profile.modelInBody && call.body.model !== call.model
          ? JSON.stringify({ ...call.body, model: call.model })
          : (call.rawBody ?? JSON.stringify(call.body)),
      signal: call.signal,
      whole: !call.stream,
      direct: call.direct === true,
      backendName: this.name,
    });
  }

  async listModels(signal: CancelSignal): Promise<ModelInfo[]> {
    const list = await this.upstream.getJson(this.modelsUrl, this.headers, signal, this.name);
    return this.profile.decodeModels(list, this.name);
  }
}
