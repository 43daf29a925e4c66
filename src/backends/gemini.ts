import type { CancelSignal } from './cancel.js';
import type { UpstreamHttp } from './http.js';
import type { ModelInfo } from '../protocols/canonical.js';
import type { Backend, BackendCall, UpstreamResponse } from './types.js';

export interface GeminiOptions {
  name: string;
  /** Host root without the API version, e.g. `https://generativelanguage.googleapis.com` (env GEMINI_API_BASE_URL). */
  baseUrl: string;
  apiKey: string | undefined;
  /** Env var that holds the key, named in errors when it is missing. */
  apiKeyEnv: string;
  extraHeaders?: Record<string, string>;
}

export const GEMINI_DEFAULT_BASE_URL = 'https://generativelanguage.googleapis.com';

/** Google's Gemini API (v1beta). The key goes only in `x-goog-api-key`, never in the URL's `?key=`. */
export class GeminiBackend implements Backend {
  readonly name: string;
  readonly protocol = 'gemini' as const;
  readonly missingCredential: string | null;
  readonly credentialName: string;
  private readonly modelsBase: string;
  /** Built once: every call sends the same credential headers. */
  private readonly headers: Record<string, string>;

  constructor(
    opts: GeminiOptions,
    private readonly upstream: UpstreamHttp,
  ) {
    this.name = opts.name;
    this.credentialName = opts.apiKeyEnv;
    this.missingCredential = opts.apiKey || !opts.apiKeyEnv ? null : opts.apiKeyEnv;
    this.modelsBase = `${opts.baseUrl.replace(/\/+$/, '')}/v1beta/models`;
    this.headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(opts.apiKey ? { 'x-goog-api-key': opts.apiKey } : {}),
      ...opts.extraHeaders,
    };
  }

  /** `models/gemini-2.0-flash` and `gemini-2.0-flash` name the same model; the id is one path segment. */
  private modelUrl(model: string, stream: boolean): string {
    const id = encodeURIComponent(model.replace(/^models\//, ''));
    return `${this.modelsBase}/${id}${stream ? ':streamGenerateContent?alt=sse' : ':generateContent'}`;
  }

  chat(call: BackendCall): Promise<UpstreamResponse> {
    return this.upstream.send({
      url: this.modelUrl(call.model, call.stream),
      method: 'POST',
      headers: this.headers,
      body: call.rawBody ?? JSON.stringify(call.body),
      signal: call.signal,
      whole: !call.stream,
      direct: call.direct === true,
      backendName: this.name,
    });
  }

  async listModels(signal: CancelSignal): Promise<ModelInfo[]> {
    const parsed = (await this.upstream.getJson(
      `${this.modelsBase}?pageSize=1000`,
      this.headers,
      signal,
      this.name,
    )) as {
      models?: Array<{ name?: unknown }>;
    };
    return (parsed.models ?? [])
      .filter((m): m is { name: string } => typeof m.name === 'string')
      .map((m) => ({ id: m.name.replace(/^models\//, ''), ownedBy: this.name }));
  }
}
