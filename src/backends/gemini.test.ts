import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGeminiUpstream, type MockUpstream } from '../../test/helpers/gemini-upstream.js';
import { ProxyError } from '../errors.js';
import { GeminiBackend } from './gemini.js';
import { readText, UpstreamHttp } from './http.js';

/** The proxy's side of the calls: its own pools, closed with the fake provider. */
const upstreamHttp = new UpstreamHttp({ timeoutMs: 30_000 });
const KEY = 'AIza-test-456';
let upstream: MockUpstream;
let backend: GeminiBackend;

beforeAll(async () => {
  upstream = await startGeminiUpstream({ apiKey: KEY });
  backend = new GeminiBackend(
    {
      name: 'gemini',
      baseUrl: upstream.url,
      apiKey: KEY,
      apiKeyEnv: 'GEMINI_API_KEY',
    },
    upstreamHttp,
  );
});
afterAll(() => Promise.all([upstream.close(), upstreamHttp.close()]));

const call = (model: string, stream = false) => ({
  model,
  stream,
  body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
  signal: new AbortController().signal,
  requestId: 'r1',
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('GeminiBackend', () => {
  it('posts generateContent with x-goog-api-key, never ?key=', async () => {
    const res = await backend.chat(call('models/gemini-mock-flash'));
    const body = JSON.parse(await readText(res.body)) as Record<string, unknown>;
    expect(res.status).toBe(200);
    expect(body).toMatchObject({
      candidates: [{ content: { parts: [{ text: 'Echo: hi' }] }, finishReason: 'STOP' }],
    });
    const seen = upstream.requests.at(-1);
    expect(seen).toMatchObject({ method: 'POST', url: '/v1beta/models/gemini-mock-flash:generateContent' });
    expect(seen?.headers['x-goog-api-key']).toBe(KEY);
    expect(seen?.headers.authorization).toBeUndefined();
    expect(seen?.url).not.toContain(KEY);
  });

  it('streams through streamGenerateContent?alt=sse', async () => {
    const res = await backend.chat(call('gemini-mock-flash', true));
    const text = await readText(res.body);
    expect(upstream.requests.at(-1)?.url).toBe(
      '/v1beta/models/gemini-mock-flash:streamGenerateContent?alt=sse',
    );
    expect(res.headers['content-type']).toBe('text/event-stream');
    expect(text).toContain('"finishReason":"STOP"');
  });

  it('keeps an odd model name inside one path segment', async () => {
    const res = await backend.chat(call('../x?key=1'));
    await readText(res.body);
    expect(upstream.requests.at(-1)?.url).toBe('/v1beta/models/..%2Fx%3Fkey%3D1:generateContent');
  });

  it('hands back the provider status and error body unchanged', async () => {
    const res = await backend.chat(call('fail-403'));
    expect(res.status).toBe(403);
    expect(JSON.parse(await readText(res.body))).toEqual({
      error: { code: 403, message: 'Mock failure 403 for model fail-403', status: 'PERMISSION_DENIED' },
    });
  });

  it('lists models without the models/ prefix', async () => {
    expect(await backend.listModels(new AbortController().signal)).toEqual([
      { id: 'gemini-mock-flash', ownedBy: 'gemini' },
      { id: 'gemini-mock-pro', ownedBy: 'gemini' },
    ]);
    expect(upstream.requests.at(-1)).toMatchObject({ method: 'GET', url: '/v1beta/models?pageSize=1000' });
  });

  it('turns a refused model listing into a ProxyError with the provider status', async () => {
    const wrong = new GeminiBackend(
      {
        name: 'gemini',
        baseUrl: upstream.url,
        apiKey: 'bad',
        apiKeyEnv: 'GEMINI_API_KEY',
      },
      upstreamHttp,
    );
    await expect(wrong.listModels(new AbortController().signal)).rejects.toMatchObject({ status: 401 });
    expect(
      new GeminiBackend(
        { name: 'g', baseUrl: upstream.url, apiKey: '', apiKeyEnv: 'GEMINI_API_KEY' },
        upstreamHttp,
      ).missingCredential,
    ).toBe('GEMINI_API_KEY');
  });

  it('answers 502 when the provider is unreachable', async () => {
    const port = await closedPort();
    const dead = new GeminiBackend(
      {
        name: 'gemini',
        baseUrl: `http://127.0.0.1:${port}`,
        apiKey: KEY,
        apiKeyEnv: 'GEMINI_API_KEY',
      },
      upstreamHttp,
    );
    const err = await dead.chat(call('gemini-mock-flash')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyError);
    expect(err).toMatchObject({ status: 502 });
    expect((err as Error).message).not.toContain(KEY);
  });
});
