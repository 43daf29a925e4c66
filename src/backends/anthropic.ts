import type { CancelSignal } from './cancel.js';
import type { UpstreamHttp } from './http.js';
import type { ModelInfo } from '../protocols/canonical.js';
import type { Backend, BackendCall, UpstreamResponse } from './types.js';

export interface AnthropicOptions {
  name: string;
  /** Up to and including `/v1`, e.g. `https://api.anthropic.com/v1` (env ANTHROPIC_API_BASE_URL). */
  baseUrl: string;
  apiKey: string | undefined;
  /** Env var that holds the key, named in errors when it is missing. */
  apiKeyEnv: string;
  extraHeaders?: Record<string, string>;
}

export const ANTHROPIC_DEFAULT_BASE_URL = 'https://api.anthropic.com/v1';
export const ANTHROPIC_VERSION = '2023-06-01';

/** Anthropic's Messages API. The key goes only in `x-api-key`. */
export class AnthropicBackend implements Backend {
  readonly name: string;
  readonly protocol = 'anthropic' as const;
  readonly missingCredential: string | null;
  readonly credentialName: string;
  private readonly messagesUrl: string;
  private readonly modelsUrl: string;
  /** Built once: every call sends the same credential headers. */
  private readonly headers: Record<string, string>;

  constructor(
    opts: AnthropicOptions,
    private readonly upstream: UpstreamHttp,
  ) {
    this.name = opts.name;
    this.credentialName = opts.apiKeyEnv;
    this.missingCredential = opts.apiKey || !opts.apiKeyEnv ? null : opts.apiKeyEnv;
    const base = opts.baseUrl.replace(/\/+$/, '');
    this.messagesUrl = `${base}/messages`;
    this.modelsUrl = `${base}/models?limit=1000`;
    this.headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'anthropic-version': ANTHROPIC_VERSION,
      ...(opts.apiKey ? { 'x-api-key': opts.apiKey } : {}),
      ...opts.extraHeaders,
    };
  }

  chat(call: BackendCall): Promise<UpstreamResponse> {
    return this.upstream.send({
      url: this.messagesUrl,
      method: 'POST',
      headers: this.headers,
      // The provider's own model name wins over whatever the client wrote (a `backend:` prefix, say).
      body:
        call.rawBody !== undefined && call.body.model === call.model
          ? call.rawBody
          : JSON.stringify({ ...call.body, model: call.model }),
      signal: call.signal,
      whole: !call.stream,
      direct: call.direct === true,
      backendName: this.name,
    });
  }

  async listModels(signal: CancelSignal): Promise<ModelInfo[]> {
    const parsed = (await this.upstream.getJson(this.modelsUrl, this.headers, signal, this.name)) as {
      data?: Array<{ id?: unknown }>;
    };
    return (parsed.data ?? [])
      .filter((m): m is { id: string } => typeof m.id === 'string')
      .map((m) => ({ id: m.id, ownedBy: this.name }));
  }
}
