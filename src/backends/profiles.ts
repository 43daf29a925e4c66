import type { ModelInfo } from '../protocols/canonical.js';
import type { Protocol } from '../protocols/types.js';

/** What providers of one wire protocol differ in; `HttpBackend` does the rest the same way for all. */
export interface HttpProfile {
  readonly protocol: Protocol;
  /** Headers every call sends besides content-type, accept and the key (Anthropic's API version). */
  readonly fixedHeaders: Readonly<Record<string, string>>;
  /** The header that carries the key: always a header, never the URL, so no log or error line shows it. */
  readonly keyHeader: string;
  /** Written before the key in that header. */
  readonly keyPrefix: string;
  /**
   * Where chat calls go: a path below the base URL, the same for every call; or, when the model and the
   * streaming mode are part of the URL (Gemini), the whole URL built per call.
   */
  readonly chatUrl: string | ((base: string, model: string, stream: boolean) => string);
  /** The model list's path (and query) below the base URL. */
  readonly modelsPath: string;
  /** Where the provider counts a request's tokens (README, Token counting); null when it has no such API. */
  readonly countTokensUrl: ((base: string, model: string) => string) | null;
  /**
   * The body names the model, and the provider's own name must win over whatever the client wrote there (a
   * `backend:` prefix, say). Otherwise the body goes as given: the proxy has already put the model name in an
   * OpenAI body, and Gemini names the model in the URL.
   */
  readonly modelInBody: boolean;
  /** The provider's model list (parsed JSON) as ModelInfo entries; `backendName` owns unattributed ones. */
  decodeModels(list: unknown, backendName: string): ModelInfo[];
}

export const ANTHROPIC_VERSION = '2023-06-01';

/** Any server that speaks OpenAI's chat completions API (OpenAI, OpenRouter, vLLM, Ollama, LM Studio); base URL up to `/v1`. */
const openAICompatible: HttpProfile = {
  protocol: 'openai',
  fixedHeaders: {},
  keyHeader: 'authorization',
  keyPrefix: 'Bearer ',
  chatUrl: '/chat/completions',
  modelsPath: '/models',
  countTokensUrl: null,
  modelInBody: false,
  decodeModels(list, backendName) {
    const { data } = list as { data?: Array<{ id?: unknown; owned_by?: unknown }> };
    return (data ?? [])
      .filter((m): m is { id: string; owned_by?: unknown } => typeof m.id === 'string')
      .map((m) => ({ id: m.id, ownedBy: typeof m.owned_by === 'string' ? m.owned_by : backendName }));
  },
};

/** OpenAI's Responses API (`POST {base}/responses`): the same server, key and model list as chat completions. */
const responses: HttpProfile = { ...openAICompatible, protocol: 'responses', chatUrl: '/responses' };

/** Anthropic's Messages API; base URL up to and including `/v1` (env ANTHROPIC_API_BASE_URL). */
const anthropic: HttpProfile = {
  protocol: 'anthropic',
  fixedHeaders: { 'anthropic-version': ANTHROPIC_VERSION },
  keyHeader: 'x-api-key',
  keyPrefix: '',
  chatUrl: '/messages',
  modelsPath: '/models?limit=1000',
  countTokensUrl: (base) => `${base}/messages/count_tokens`,
  modelInBody: true,
  decodeModels(list, backendName) {
    const { data } = list as { data?: Array<{ id?: unknown }> };
    return (data ?? [])
      .filter((m): m is { id: string } => typeof m.id === 'string')
      .map((m) => ({ id: m.id, ownedBy: backendName }));
  },
};

/** `models/gemini-2.0-flash` and `gemini-2.0-flash` name the same Gemini model. */
const bareGeminiModel = (name: string): string => name.replace(/^models\//, '');

/**
 * Google's Gemini API (v1beta); base URL the host root without the API version (env GEMINI_API_BASE_URL).
 * The key goes in `x-goog-api-key`, never in the URL's `?key=`.
 */
const gemini: HttpProfile = {
  protocol: 'gemini',
  fixedHeaders: {},
  keyHeader: 'x-goog-api-key',
  keyPrefix: '',
  // The model id is kept inside one path segment, whatever it contains.
  chatUrl: (base, model, stream) =>
    `${base}/v1beta/models/${encodeURIComponent(bareGeminiModel(model))}${
      stream ? ':streamGenerateContent?alt=sse' : ':generateContent'
    }`,
  modelsPath: '/v1beta/models?pageSize=1000',
  countTokensUrl: (base, model) =>
    `${base}/v1beta/models/${encodeURIComponent(bareGeminiModel(model))}:countTokens`,
  modelInBody: false,
  decodeModels(list, backendName) {
    const { models } = list as { models?: Array<{ name?: unknown }> };
    return (models ?? [])
      .filter((m): m is { name: string } => typeof m.name === 'string')
      .map((m) => ({ id: bareGeminiModel(m.name), ownedBy: backendName }));
  },
};

/** One profile per wire protocol: the backends of a protocol (built-in or from the YAML) all use it. */
export const HTTP_PROFILES: Readonly<Record<Protocol, HttpProfile>> = {
  openai: openAICompatible,
  anthropic,
  gemini,
  responses,
};
