import type { CancelSignal } from './cancel.js';
import type { UpstreamHttp } from './http.js';
import type { ModelInfo } from '../protocols/canonical.js';
import type { Backend, BackendCall, UpstreamResponse } from './types.js';

export interface OpenAICompatibleOptions {
  name: string;
  baseUrl: string;
  apiKey: string | undefined;
  /** Env var that holds the key, named in errors when it is missing; '' when the server needs no key. */
  apiKeyEnv: string;
  /** Extra fixed headers (OpenRouter's attribution headers, for instance). */
  extraHeaders?: Record<string, string>;
}

/** Any server that speaks OpenAI's chat completions API: OpenAI, OpenRouter, vLLM, Ollama, LM Studio. */
export class OpenAICompatibleBackend implements Backend {
  readonly name: string;
  readonly protocol = 'openai' as const;
  readonly missingCredential: string | null;
  readonly credentialName: string | null;
  private readonly chatUrl: string;
  private readonly modelsUrl: string;
  /** Built once: every call sends the same credential headers. */
  private readonly headers: Record<string, string>;

  constructor(
    opts: OpenAICompatibleOptions,
    private readonly upstream: UpstreamHttp,
  ) {
    this.name = opts.name;
    this.credentialName = opts.apiKeyEnv || null;
    // A local server (Ollama, vLLM) may need no key: only a named key env var makes one required.
    this.missingCredential = opts.apiKey || !opts.apiKeyEnv ? null : opts.apiKeyEnv;
    const base = opts.baseUrl.replace(/\/+$/, '');
    this.chatUrl = `${base}/chat/completions`;
    this.modelsUrl = `${base}/models`;
    this.headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}),
      ...opts.extraHeaders,
    };
  }

  chat(call: BackendCall): Promise<UpstreamResponse> {
    return this.upstream.send({
      url: this.chatUrl,
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
    const parsed = (await this.upstream.getJson(this.modelsUrl, this.headers, signal, this.name)) as {
      data?: Array<{ id?: unknown; owned_by?: unknown }>;
    };
    return (parsed.data ?? [])
      .filter((m): m is { id: string; owned_by?: unknown } => typeof m.id === 'string')
      .map((m) => ({ id: m.id, ownedBy: typeof m.owned_by === 'string' ? m.owned_by : this.name }));
  }
}
