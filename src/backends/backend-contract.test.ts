import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from '../../test/fake-provider/index.mjs';
import { ProxyError } from '../proxy-error.js';
import type { ModelInfo } from '../protocols/canonical.js';
import type { Protocol } from '../protocols/types.js';
import { HttpBackend, type HttpBackendOptions } from './http-backend.js';
import { readText, UpstreamHttp } from './http.js';
import { HTTP_PROFILES } from './profiles.js';
import type { BackendCall } from './types.js';

/**
 * The contract every HTTP backend keeps, whatever its protocol (README, Backends): one suite, run against
 * each backend profile with the fake provider (test/fake-provider) standing in for the real one. What
 * differs between profiles is data in PROFILES; a few profile-only behaviours follow the suite.
 */

type Json = Record<string, unknown>;

/** A chat request body asking `text`, in each protocol's wire format. */
const BODIES: Record<Protocol, (model: string, text: string, stream: boolean) => Json> = {
  openai: (model, text, stream) => ({
    model,
    messages: [{ role: 'user', content: text }],
    ...(stream ? { stream: true } : {}),
  }),
  anthropic: (model, text, stream) => ({
    model,
    max_tokens: 256,
    messages: [{ role: 'user', content: text }],
    ...(stream ? { stream: true } : {}),
  }),
  gemini: (_model, text) => ({ contents: [{ role: 'user', parts: [{ text }] }] }),
  responses: (model, text, stream) => ({ model, input: text, ...(stream ? { stream: true } : {}) }),
};

/** The answer's text in a whole answer, and in one event of a stream, per protocol. */
const TEXT: Record<Protocol, { whole(body: Json): string; event(data: Json): string }> = {
  openai: {
    whole: (b) => (b as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content,
    event: (d) =>
      (d as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content ?? '',
  },
  anthropic: {
    whole: (b) => (b as { content: Array<{ text: string }> }).content[0]!.text,
    event: (d) => (d.type === 'content_block_delta' ? ((d.delta as { text?: string }).text ?? '') : ''),
  },
  gemini: {
    whole: (b) => TEXT.gemini.event(b),
    event: (d) =>
      (
        (d as { candidates?: Array<{ content?: { parts?: Array<{ text?: string }> } }> }).candidates?.[0]
          ?.content?.parts ?? []
      )
        .map((p) => p.text ?? '')
        .join(''),
  },
  responses: {
    whole: (b) => (b as { output: Array<{ content: Array<{ text: string }> }> }).output[0]!.content[0]!.text,
    event: (d) => (d.type === 'response.output_text.delta' ? String(d.delta) : ''),
  },
};

/** The text of an SSE body, and whether it ended with its protocol's finish. */
function streamed(protocol: Protocol, sse: string): { text: string; finished: boolean } {
  const data = sse
    .split(/\r?\n/)
    .filter((line) => line.startsWith('data: '))
    .map((line) => line.slice(6));
  const events = data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d) as Json);
  const finished = {
    openai: data.at(-1) === '[DONE]',
    anthropic: events.at(-1)?.type === 'message_stop',
    gemini:
      typeof (events.at(-1) as { candidates?: Array<{ finishReason?: string }> })?.candidates?.[0]
        ?.finishReason === 'string',
    responses: events.at(-1)?.type === 'response.completed',
  }[protocol];
  return { text: events.map((e) => TEXT[protocol].event(e)).join(''), finished };
}

interface Profile {
  /** The backend as configured: a built-in one, or a custom OpenAI-compatible one with extra headers. */
  name: string;
  protocol: Protocol;
  key: string;
  keyEnv: string;
  extraHeaders?: Record<string, string>;
  /** The key as the provider's protocol wants it: header and value. */
  keyHeader: [string, string];
  /** Path and query of a chat call and of the model list, as the provider sees them. */
  chatPath(model: string, stream: boolean): string;
  modelsPath: string;
  /** The model list the backend makes of the fake provider's. */
  models: ModelInfo[];
  /** The model the calls name. */
  model: string;
}

const PROFILES: Profile[] = [
  {
    name: 'openai',
    protocol: 'openai',
    key: 'sk-openai-test-789',
    keyEnv: 'OPENAI_API_KEY',
    keyHeader: ['authorization', 'Bearer sk-openai-test-789'],
    chatPath: () => '/v1/chat/completions',
    modelsPath: '/v1/models',
    models: [{ id: 'gpt-4o-mini', ownedBy: 'openai' }],
    model: 'gpt-4o-mini',
  },
  {
    name: 'openai (Responses API)',
    protocol: 'responses',
    key: 'sk-openai-test-789',
    keyEnv: 'OPENAI_API_KEY',
    keyHeader: ['authorization', 'Bearer sk-openai-test-789'],
    chatPath: () => '/v1/responses',
    modelsPath: '/v1/models',
    models: [{ id: 'gpt-4o-mini', ownedBy: 'openai' }],
    model: 'gpt-4o-mini',
  },
  {
    name: 'openrouter',
    protocol: 'openai',
    key: 'sk-or-test-321',
    keyEnv: 'OPENROUTER_API_KEY',
    extraHeaders: { 'http-referer': 'https://example.test', 'x-title': 'contract' },
    keyHeader: ['authorization', 'Bearer sk-or-test-321'],
    chatPath: () => '/v1/chat/completions',
    modelsPath: '/v1/models',
    models: [{ id: 'gpt-4o-mini', ownedBy: 'openai' }],
    model: 'meta-llama/llama-3-8b',
  },
  {
    name: 'anthropic',
    protocol: 'anthropic',
    key: 'sk-ant-test-123',
    keyEnv: 'ANTHROPIC_API_KEY',
    keyHeader: ['x-api-key', 'sk-ant-test-123'],
    chatPath: () => '/v1/messages',
    modelsPath: '/v1/models?limit=1000',
    models: [
      { id: 'claude-mock-1', ownedBy: 'anthropic' },
      { id: 'claude-mock-2', ownedBy: 'anthropic' },
    ],
    model: 'claude-mock-1',
  },
  {
    name: 'gemini',
    protocol: 'gemini',
    key: 'AIza-test-456',
    keyEnv: 'GEMINI_API_KEY',
    keyHeader: ['x-goog-api-key', 'AIza-test-456'],
    chatPath: (model, stream) =>
      `/v1beta/models/${model}:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`,
    modelsPath: '/v1beta/models?pageSize=1000',
    models: [
      { id: 'gemini-mock-flash', ownedBy: 'gemini' },
      { id: 'gemini-mock-pro', ownedBy: 'gemini' },
    ],
    model: 'gemini-mock-flash',
  },
];

/** Every key header any protocol uses: a call must send its own and none of the others. */
const KEY_HEADERS = ['authorization', 'x-api-key', 'x-goog-api-key'];

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe.each(PROFILES)('backend contract: $name', (profile) => {
  /** The proxy's side of the calls: its own pools, closed with the fake provider. */
  const upstreamHttp = new UpstreamHttp({ timeoutMs: 30_000 });
  /** A short timeout, for the calls that must time out. */
  const impatientHttp = new UpstreamHttp({ timeoutMs: 200 });
  let provider: FakeProvider;

  const options = (overrides: Partial<HttpBackendOptions> = {}): HttpBackendOptions => ({
    name: profile.name,
    baseUrl: provider.baseUrls[profile.protocol],
    apiKey: profile.key,
    apiKeyEnv: profile.keyEnv,
    ...(profile.extraHeaders ? { extraHeaders: profile.extraHeaders } : {}),
    ...overrides,
  });
  const backend = (overrides: Partial<HttpBackendOptions> = {}, http = upstreamHttp) =>
    new HttpBackend(HTTP_PROFILES[profile.protocol], options(overrides), http);
  const call = (text: string, stream = false, model = profile.model, signal = new AbortController().signal) =>
    ({
      model,
      stream,
      body: BODIES[profile.protocol](model, text, stream),
      signal,
      requestId: 'r1',
    }) satisfies BackendCall;

  beforeAll(async () => {
    // The Responses API is served with OpenAI's key (and model list).
    const keyed = profile.protocol === 'responses' ? 'openai' : profile.protocol;
    provider = await startFakeProvider({ keys: { [keyed]: profile.key } });
  });
  afterAll(() => Promise.all([provider.close(), upstreamHttp.close(), impatientHttp.close()]));

  it('answers a whole chat call', async () => {
    const res = await backend().chat(call('hello'));
    expect(res.status).toBe(200);
    expect(TEXT[profile.protocol].whole(JSON.parse(await readText(res)) as Json)).toBe('echo: hello');
    const seen = provider.requests.at(-1);
    expect(seen).toMatchObject({ method: 'POST', url: profile.chatPath(profile.model, false) });
    expect(seen?.headers['content-type']).toBe('application/json');
  });

  it('passes a streamed chat call through as SSE bytes, to its finish', async () => {
    const res = await backend().chat(call('hello', true));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    expect(streamed(profile.protocol, await readText(res.body))).toEqual({
      text: 'echo: hello',
      finished: true,
    });
    expect(provider.requests.at(-1)?.url).toBe(profile.chatPath(profile.model, true));
  });

  it('lists the models', async () => {
    expect(await backend().listModels(new AbortController().signal)).toEqual(profile.models);
    expect(provider.requests.at(-1)).toMatchObject({ method: 'GET', url: profile.modelsPath });
  });

  it('sends the provider key the way its protocol wants, nowhere else', async () => {
    await readText(await backend().chat(call('key')));
    const seen = provider.requests.at(-1)!;
    const [header, value] = profile.keyHeader;
    expect(seen.headers[header]).toBe(value);
    for (const other of KEY_HEADERS.filter((h) => h !== header)) expect(seen.headers[other]).toBeUndefined();
    expect(seen.url).not.toContain(profile.key);
    for (const [name, extra] of Object.entries(profile.extraHeaders ?? {}))
      expect(seen.headers[name]).toBe(extra);
  });

  it('names its key variable, and is missing it without a key', () => {
    expect(backend().missingCredential).toBeNull();
    expect(backend().credentialName).toBe(profile.keyEnv);
    expect(backend({ apiKey: undefined }).missingCredential).toBe(profile.keyEnv);
    expect(backend({ apiKey: '' }).missingCredential).toBe(profile.keyEnv);
  });

  it("hands back the provider's status, Retry-After and error body unchanged", async () => {
    const res = await backend().chat(call('x', false, 'fault-status-429-retry-after-7'));
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('7');
    expect(JSON.parse(await readText(res))).toEqual(
      {
        openai: { error: { message: 'upstream says 429', type: 'requests', param: null, code: null } },
        anthropic: { type: 'error', error: { type: 'rate_limit_error', message: 'upstream says 429' } },
        gemini: { error: { code: 429, message: 'upstream says 429', status: 'RESOURCE_EXHAUSTED' } },
        responses: { error: { message: 'upstream says 429', type: 'requests', param: null, code: null } },
      }[profile.protocol],
    );
  });

  it('hands back a refusal of a wrong key, and refuses a model listing with the status', async () => {
    const wrong = backend({ apiKey: 'wrong-key' });
    const res = await wrong.chat(call('x'));
    expect(res.status).toBe(401);
    await readText(res);
    await expect(wrong.listModels(new AbortController().signal)).rejects.toMatchObject({ status: 401 });
  });

  it("sends the client's bytes as received when the body is unchanged", async () => {
    // The bytes ask another question than the decoded body: the provider shows which of the two went.
    const raw = JSON.stringify(BODIES[profile.protocol](profile.model, 'raw bytes', false));
    const res = await backend().chat({ ...call('decoded'), rawBody: Buffer.from(raw) });
    expect(TEXT[profile.protocol].whole(JSON.parse(await readText(res)) as Json)).toBe('echo: raw bytes');
    expect(provider.requests.at(-1)?.body).toEqual(JSON.parse(raw));
  });

  it('gives up when the signal fires before the answer comes: 499, and the provider sees the close', async () => {
    const controller = new AbortController();
    const pending = backend().chat(call('abandoned before', false, 'fault-no-head', controller.signal));
    const seen = provider.received;
    await expect.poll(() => provider.received).toBeGreaterThan(seen);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ status: 499, code: 'client_closed' });
    await provider.closedEarly('abandoned before');
  });

  it('stops a stream when the signal fires mid-way, and the provider sees the close', async () => {
    const controller = new AbortController();
    const res = await backend().chat(call('abandoned during', true, 'fault-hold', controller.signal));
    const reading = (async () => {
      for await (const _ of res.body) controller.abort();
    })();
    await expect(reading).rejects.toThrow();
    await provider.closedEarly('abandoned during');
  });

  it.each([false, true])('times out with 504 when no answer comes (stream: %s)', async (stream) => {
    const err = await backend({}, impatientHttp)
      .chat(call('too slow', stream, 'fault-no-head'))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyError);
    expect(err).toMatchObject({ status: 504, code: 'upstream_timeout' });
  });

  it('answers 502 when the provider is unreachable, without the key in the message', async () => {
    const dead = backend({ baseUrl: `http://127.0.0.1:${await closedPort()}/v1` });
    const err = await dead.chat(call('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyError);
    expect(err).toMatchObject({ status: 502, code: 'upstream_unreachable' });
    expect((err as Error).message).not.toContain(profile.key);
  });
});

describe('profile-only behaviour', () => {
  const upstreamHttp = new UpstreamHttp({ timeoutMs: 30_000 });
  let provider: FakeProvider;
  beforeAll(async () => {
    provider = await startFakeProvider();
  });
  afterAll(() => Promise.all([provider.close(), upstreamHttp.close()]));

  const backend = (protocol: Protocol, overrides: Partial<HttpBackendOptions> = {}) =>
    new HttpBackend(
      HTTP_PROFILES[protocol],
      { name: protocol, baseUrl: provider.baseUrls[protocol], apiKey: 'k', apiKeyEnv: 'K', ...overrides },
      upstreamHttp,
    );
  const call = (protocol: Protocol, model: string, body: Json, rawBody?: string) => ({
    model,
    stream: false,
    body,
    signal: new AbortController().signal,
    requestId: 'r1',
    ...(rawBody ? { rawBody } : {}),
  });

  it('an OpenAI-compatible server named without a key variable (a local one) needs none and gets none', async () => {
    const local = backend('openai', { apiKey: undefined, apiKeyEnv: '', extraHeaders: { 'x-title': 't' } });
    expect(local.missingCredential).toBeNull();
    expect(local.credentialName).toBeNull();
    await readText(
      await local.chat(call('openai', 'gpt-4o-mini', BODIES.openai('gpt-4o-mini', 'hi', false))),
    );
    const seen = provider.requests.at(-1);
    expect(seen?.headers.authorization).toBeUndefined();
    expect(seen?.headers['x-title']).toBe('t');
  });

  it("Anthropic: the provider's model name wins over a prefixed one in the body, which is then re-encoded", async () => {
    const prefixed = BODIES.anthropic('anthropic:claude-mock-1', 'decoded', false);
    const raw = JSON.stringify(BODIES.anthropic('anthropic:claude-mock-1', 'raw', false));
    await readText(await backend('anthropic').chat(call('anthropic', 'claude-mock-1', prefixed, raw)));
    expect(provider.requests.at(-1)?.body).toEqual({ ...prefixed, model: 'claude-mock-1' });
    expect(provider.requests.at(-1)?.headers['anthropic-version']).toBe('2023-06-01');
  });

  it('Gemini: keeps an odd model name inside one path segment, and drops a models/ prefix', async () => {
    const body = BODIES.gemini('', 'hi', false);
    await readText(await backend('gemini').chat(call('gemini', '../x?key=1', body)));
    expect(provider.requests.at(-1)?.url).toBe('/v1beta/models/..%2Fx%3Fkey%3D1:generateContent');
    await readText(await backend('gemini').chat(call('gemini', 'models/gemini-mock-flash', body)));
    expect(provider.requests.at(-1)?.url).toBe('/v1beta/models/gemini-mock-flash:generateContent');
  });
});
