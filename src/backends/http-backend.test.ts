import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicUpstream, type MockUpstream } from '../../test/helpers/anthropic-upstream.js';
import { startGeminiUpstream } from '../../test/helpers/gemini-upstream.js';
import { startOpenAIUpstream, type OpenAIUpstream } from '../../test/helpers/openai-upstream.js';
import { ProxyError } from '../proxy-error.js';
import { HttpBackend } from './http-backend.js';
import { readText, UpstreamHttp } from './http.js';
import { HTTP_PROFILES } from './profiles.js';

/** The proxy's side of the calls: its own pools, closed with the fake providers. */
const upstreamHttp = new UpstreamHttp({ timeoutMs: 30_000 });
const OPENAI_KEY = 'sk-openai-test-789';
const ANTHROPIC_KEY = 'sk-ant-test-123';
const GEMINI_KEY = 'AIza-test-456';
let openaiUp: OpenAIUpstream;
let anthropicUp: MockUpstream;
let geminiUp: MockUpstream;
let openaiBackend: HttpBackend;
let anthropicBackend: HttpBackend;
let geminiBackend: HttpBackend;

beforeAll(async () => {
  [openaiUp, anthropicUp, geminiUp] = await Promise.all([
    startOpenAIUpstream(),
    startAnthropicUpstream({ apiKey: ANTHROPIC_KEY }),
    startGeminiUpstream({ apiKey: GEMINI_KEY }),
  ]);
  openaiBackend = new HttpBackend(
    HTTP_PROFILES.openai,
    { name: 'openai', baseUrl: openaiUp.url, apiKey: OPENAI_KEY, apiKeyEnv: 'OPENAI_API_KEY' },
    upstreamHttp,
  );
  anthropicBackend = new HttpBackend(
    HTTP_PROFILES.anthropic,
    {
      name: 'anthropic',
      baseUrl: `${anthropicUp.url}/`,
      apiKey: ANTHROPIC_KEY,
      apiKeyEnv: 'ANTHROPIC_API_KEY',
    },
    upstreamHttp,
  );
  geminiBackend = new HttpBackend(
    HTTP_PROFILES.gemini,
    { name: 'gemini', baseUrl: geminiUp.url, apiKey: GEMINI_KEY, apiKeyEnv: 'GEMINI_API_KEY' },
    upstreamHttp,
  );
});
afterAll(() => Promise.all([openaiUp.close(), anthropicUp.close(), geminiUp.close(), upstreamHttp.close()]));

const signal = () => new AbortController().signal;

const openaiCall = (model: string, stream = false) => ({
  model,
  stream,
  body: { model, messages: [{ role: 'user', content: 'hi' }], ...(stream ? { stream: true } : {}) },
  signal: signal(),
  requestId: 'r1',
});

const anthropicCall = (model: string, stream = false) => ({
  model,
  stream,
  body: {
    model: 'anthropic:' + model,
    max_tokens: 50,
    messages: [{ role: 'user', content: 'hi' }],
    ...(stream ? { stream: true } : {}),
  },
  signal: signal(),
  requestId: 'r1',
});

const geminiCall = (model: string, stream = false) => ({
  model,
  stream,
  body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
  signal: signal(),
  requestId: 'r1',
});

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('HttpBackend, OpenAI-compatible profile', () => {
  it('posts to /chat/completions with a Bearer key and sends the body as given', async () => {
    const res = await openaiBackend.chat({
      ...openaiCall('gpt-4o-mini'),
      rawBody: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"raw"}]}',
    });
    const body = JSON.parse(await readText(res)) as { choices: Array<{ message: { content: string } }> };
    expect(res.status).toBe(200);
    expect(body.choices[0]?.message.content).toBe('echo: raw');
    const seen = openaiUp.requests.at(-1);
    expect(seen).toMatchObject({ method: 'POST', url: '/v1/chat/completions' });
    expect(seen?.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
    expect(seen?.headers['content-type']).toBe('application/json');
    expect(seen?.headers['x-api-key']).toBeUndefined();
  });

  it('passes a stream through as SSE bytes', async () => {
    const res = await openaiBackend.chat(openaiCall('gpt-4o-mini', true));
    const text = await readText(res.body);
    expect(res.headers['content-type']).toBe('text/event-stream');
    expect(text).toContain('"content":"ech"');
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('lists models with their owner', async () => {
    expect(await openaiBackend.listModels(signal())).toEqual([{ id: 'gpt-4o-mini', ownedBy: 'openai' }]);
    expect(openaiUp.requests.at(-1)).toMatchObject({ method: 'GET', url: '/v1/models' });
  });

  it('needs no key when no key variable is named (a local server), and sends no key header', async () => {
    const local = new HttpBackend(
      HTTP_PROFILES.openai,
      {
        name: 'local',
        baseUrl: openaiUp.url,
        apiKey: undefined,
        apiKeyEnv: '',
        extraHeaders: { 'x-title': 't' },
      },
      upstreamHttp,
    );
    expect(local.missingCredential).toBeNull();
    expect(local.credentialName).toBeNull();
    await readText(await local.chat(openaiCall('gpt-4o-mini')));
    const seen = openaiUp.requests.at(-1);
    expect(seen?.headers.authorization).toBeUndefined();
    expect(seen?.headers['x-title']).toBe('t');
  });
});

describe('HttpBackend, Anthropic profile', () => {
  it('posts to /v1/messages with x-api-key and anthropic-version, and the provider model name', async () => {
    const res = await anthropicBackend.chat(anthropicCall('claude-mock-1'));
    const body = JSON.parse(await readText(res.body)) as Record<string, unknown>;
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ type: 'message', content: [{ type: 'text', text: 'Echo: hi' }] });
    const seen = anthropicUp.requests.at(-1);
    expect(seen).toMatchObject({ method: 'POST', url: '/v1/messages' });
    expect(seen?.headers['x-api-key']).toBe(ANTHROPIC_KEY);
    expect(seen?.headers['anthropic-version']).toBe('2023-06-01');
    expect(seen?.headers['content-type']).toBe('application/json');
    expect(seen?.headers.authorization).toBeUndefined();
    expect(seen?.url).not.toContain(ANTHROPIC_KEY);
    expect((seen?.body as { model: string }).model).toBe('claude-mock-1');
  });

  it("sends the client's bytes when its body names the provider model, else the body re-encoded", async () => {
    // The bytes say another prompt than the decoded body, so the upstream shows which of the two went.
    const raw = '{"model":"claude-mock-1","max_tokens":50,"messages":[{"role":"user","content":"raw"}]}';
    const named = anthropicCall('claude-mock-1');
    await readText(
      await anthropicBackend.chat({
        ...named,
        body: { ...named.body, model: 'claude-mock-1' },
        rawBody: raw,
      }),
    );
    expect(anthropicUp.requests.at(-1)?.body).toEqual(JSON.parse(raw));

    const prefixed = anthropicCall('claude-mock-1');
    await readText(await anthropicBackend.chat({ ...prefixed, rawBody: raw }));
    expect(anthropicUp.requests.at(-1)?.body).toEqual({ ...prefixed.body, model: 'claude-mock-1' });
  });

  it('passes a stream through as SSE bytes', async () => {
    const res = await anthropicBackend.chat(anthropicCall('claude-mock-1', true));
    const text = await readText(res.body);
    expect(res.headers['content-type']).toBe('text/event-stream');
    expect(text).toContain('event: message_start');
    expect(text).toContain('event: message_stop');
  });

  it('hands back the provider status and error body unchanged', async () => {
    const res = await anthropicBackend.chat(anthropicCall('fail-429'));
    expect(res.status).toBe(429);
    expect(JSON.parse(await readText(res.body))).toEqual({
      type: 'error',
      error: { type: 'rate_limit_error', message: 'Mock failure 429 for model fail-429' },
    });
  });

  it('is refused by the provider with a wrong key', async () => {
    const wrong = new HttpBackend(
      HTTP_PROFILES.anthropic,
      {
        name: 'anthropic',
        baseUrl: anthropicUp.url,
        apiKey: 'nope',
        apiKeyEnv: 'ANTHROPIC_API_KEY',
      },
      upstreamHttp,
    );
    const res = await wrong.chat(anthropicCall('claude-mock-1'));
    expect(res.status).toBe(401);
    await readText(res.body);
  });

  it('lists models', async () => {
    expect(await anthropicBackend.listModels(new AbortController().signal)).toEqual([
      { id: 'claude-mock-1', ownedBy: 'anthropic' },
      { id: 'claude-mock-2', ownedBy: 'anthropic' },
    ]);
    expect(anthropicUp.requests.at(-1)).toMatchObject({ method: 'GET', url: '/v1/models?limit=1000' });
  });

  it('names the missing key variable and sends no key header without one', () => {
    const none = new HttpBackend(
      HTTP_PROFILES.anthropic,
      {
        name: 'anthropic',
        baseUrl: anthropicUp.url,
        apiKey: undefined,
        apiKeyEnv: 'ANTHROPIC_API_KEY',
      },
      upstreamHttp,
    );
    expect(none.missingCredential).toBe('ANTHROPIC_API_KEY');
    expect(anthropicBackend.missingCredential).toBeNull();
    expect(anthropicBackend.credentialName).toBe('ANTHROPIC_API_KEY');
  });

  it('answers 502 when the provider is unreachable, without the key in the message', async () => {
    const port = await closedPort();
    const dead = new HttpBackend(
      HTTP_PROFILES.anthropic,
      {
        name: 'anthropic',
        baseUrl: `http://127.0.0.1:${port}/v1`,
        apiKey: ANTHROPIC_KEY,
        apiKeyEnv: 'ANTHROPIC_API_KEY',
      },
      upstreamHttp,
    );
    const err = await dead.chat(anthropicCall('claude-mock-1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyError);
    expect(err).toMatchObject({ status: 502, code: 'upstream_unreachable' });
    expect((err as Error).message).not.toContain(ANTHROPIC_KEY);
  });
});

describe('HttpBackend, Gemini profile', () => {
  it('posts generateContent with x-goog-api-key, never ?key=', async () => {
    const res = await geminiBackend.chat(geminiCall('models/gemini-mock-flash'));
    const body = JSON.parse(await readText(res.body)) as Record<string, unknown>;
    expect(res.status).toBe(200);
    expect(body).toMatchObject({
      candidates: [{ content: { parts: [{ text: 'Echo: hi' }] }, finishReason: 'STOP' }],
    });
    const seen = geminiUp.requests.at(-1);
    expect(seen).toMatchObject({ method: 'POST', url: '/v1beta/models/gemini-mock-flash:generateContent' });
    expect(seen?.headers['x-goog-api-key']).toBe(GEMINI_KEY);
    expect(seen?.headers.authorization).toBeUndefined();
    expect(seen?.url).not.toContain(GEMINI_KEY);
  });

  it('streams through streamGenerateContent?alt=sse', async () => {
    const res = await geminiBackend.chat(geminiCall('gemini-mock-flash', true));
    const text = await readText(res.body);
    expect(geminiUp.requests.at(-1)?.url).toBe(
      '/v1beta/models/gemini-mock-flash:streamGenerateContent?alt=sse',
    );
    expect(res.headers['content-type']).toBe('text/event-stream');
    expect(text).toContain('"finishReason":"STOP"');
  });

  it('keeps an odd model name inside one path segment', async () => {
    const res = await geminiBackend.chat(geminiCall('../x?key=1'));
    await readText(res.body);
    expect(geminiUp.requests.at(-1)?.url).toBe('/v1beta/models/..%2Fx%3Fkey%3D1:generateContent');
  });

  it('hands back the provider status and error body unchanged', async () => {
    const res = await geminiBackend.chat(geminiCall('fail-403'));
    expect(res.status).toBe(403);
    expect(JSON.parse(await readText(res.body))).toEqual({
      error: { code: 403, message: 'Mock failure 403 for model fail-403', status: 'PERMISSION_DENIED' },
    });
  });

  it('lists models without the models/ prefix', async () => {
    expect(await geminiBackend.listModels(new AbortController().signal)).toEqual([
      { id: 'gemini-mock-flash', ownedBy: 'gemini' },
      { id: 'gemini-mock-pro', ownedBy: 'gemini' },
    ]);
    expect(geminiUp.requests.at(-1)).toMatchObject({ method: 'GET', url: '/v1beta/models?pageSize=1000' });
  });

  it('turns a refused model listing into a ProxyError with the provider status', async () => {
    const wrong = new HttpBackend(
      HTTP_PROFILES.gemini,
      {
        name: 'gemini',
        baseUrl: geminiUp.url,
        apiKey: 'bad',
        apiKeyEnv: 'GEMINI_API_KEY',
      },
      upstreamHttp,
    );
    await expect(wrong.listModels(new AbortController().signal)).rejects.toMatchObject({ status: 401 });
    expect(
      new HttpBackend(
        HTTP_PROFILES.gemini,
        { name: 'g', baseUrl: geminiUp.url, apiKey: '', apiKeyEnv: 'GEMINI_API_KEY' },
        upstreamHttp,
      ).missingCredential,
    ).toBe('GEMINI_API_KEY');
  });

  it('answers 502 when the provider is unreachable', async () => {
    const port = await closedPort();
    const dead = new HttpBackend(
      HTTP_PROFILES.gemini,
      {
        name: 'gemini',
        baseUrl: `http://127.0.0.1:${port}`,
        apiKey: GEMINI_KEY,
        apiKeyEnv: 'GEMINI_API_KEY',
      },
      upstreamHttp,
    );
    const err = await dead.chat(geminiCall('gemini-mock-flash')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyError);
    expect(err).toMatchObject({ status: 502 });
    expect((err as Error).message).not.toContain(GEMINI_KEY);
  });
});
