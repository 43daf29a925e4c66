import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicUpstream, type MockUpstream } from '../../test/helpers/anthropic-upstream.js';
import { ProxyError } from '../errors.js';
import { AnthropicBackend } from './anthropic.js';
import { readText, UpstreamHttp } from './http.js';

/** The proxy's side of the calls: its own pools, closed with the fake provider. */
const upstreamHttp = new UpstreamHttp({ timeoutMs: 30_000 });
const KEY = 'sk-ant-test-123';
let upstream: MockUpstream;
let backend: AnthropicBackend;

beforeAll(async () => {
  upstream = await startAnthropicUpstream({ apiKey: KEY });
  backend = new AnthropicBackend(
    {
      name: 'anthropic',
      baseUrl: `${upstream.url}/`,
      apiKey: KEY,
      apiKeyEnv: 'ANTHROPIC_API_KEY',
    },
    upstreamHttp,
  );
});
afterAll(() => Promise.all([upstream.close(), upstreamHttp.close()]));

const call = (model: string, stream = false) => ({
  model,
  stream,
  body: {
    model: 'anthropic:' + model,
    max_tokens: 50,
    messages: [{ role: 'user', content: 'hi' }],
    ...(stream ? { stream: true } : {}),
  },
  signal: new AbortController().signal,
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

describe('AnthropicBackend', () => {
  it('posts to /v1/messages with x-api-key and anthropic-version, and the provider model name', async () => {
    const res = await backend.chat(call('claude-mock-1'));
    const body = JSON.parse(await readText(res.body)) as Record<string, unknown>;
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ type: 'message', content: [{ type: 'text', text: 'Echo: hi' }] });
    const seen = upstream.requests.at(-1);
    expect(seen).toMatchObject({ method: 'POST', url: '/v1/messages' });
    expect(seen?.headers['x-api-key']).toBe(KEY);
    expect(seen?.headers['anthropic-version']).toBe('2023-06-01');
    expect(seen?.headers['content-type']).toBe('application/json');
    expect(seen?.headers.authorization).toBeUndefined();
    expect(seen?.url).not.toContain(KEY);
    expect((seen?.body as { model: string }).model).toBe('claude-mock-1');
  });

  it('passes a stream through as SSE bytes', async () => {
    const res = await backend.chat(call('claude-mock-1', true));
    const text = await readText(res.body);
    expect(res.headers['content-type']).toBe('text/event-stream');
    expect(text).toContain('event: message_start');
    expect(text).toContain('event: message_stop');
  });

  it('hands back the provider status and error body unchanged', async () => {
    const res = await backend.chat(call('fail-429'));
    expect(res.status).toBe(429);
    expect(JSON.parse(await readText(res.body))).toEqual({
      type: 'error',
      error: { type: 'rate_limit_error', message: 'Mock failure 429 for model fail-429' },
    });
  });

  it('is refused by the provider with a wrong key', async () => {
    const wrong = new AnthropicBackend(
      {
        name: 'anthropic',
        baseUrl: upstream.url,
        apiKey: 'nope',
        apiKeyEnv: 'ANTHROPIC_API_KEY',
      },
      upstreamHttp,
    );
    const res = await wrong.chat(call('claude-mock-1'));
    expect(res.status).toBe(401);
    await readText(res.body);
  });

  it('lists models', async () => {
    expect(await backend.listModels(new AbortController().signal)).toEqual([
      { id: 'claude-mock-1', ownedBy: 'anthropic' },
      { id: 'claude-mock-2', ownedBy: 'anthropic' },
    ]);
    expect(upstream.requests.at(-1)).toMatchObject({ method: 'GET', url: '/v1/models?limit=1000' });
  });

  it('names the missing key variable and sends no key header without one', () => {
    const none = new AnthropicBackend(
      {
        name: 'anthropic',
        baseUrl: upstream.url,
        apiKey: undefined,
        apiKeyEnv: 'ANTHROPIC_API_KEY',
      },
      upstreamHttp,
    );
    expect(none.missingCredential).toBe('ANTHROPIC_API_KEY');
    expect(backend.missingCredential).toBeNull();
    expect(backend.credentialName).toBe('ANTHROPIC_API_KEY');
  });

  it('answers 502 when the provider is unreachable, without the key in the message', async () => {
    const port = await closedPort();
    const dead = new AnthropicBackend(
      {
        name: 'anthropic',
        baseUrl: `http://127.0.0.1:${port}/v1`,
        apiKey: KEY,
        apiKeyEnv: 'ANTHROPIC_API_KEY',
      },
      upstreamHttp,
    );
    const err = await dead.chat(call('claude-mock-1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyError);
    expect(err).toMatchObject({ status: 502, code: 'upstream_unreachable' });
    expect((err as Error).message).not.toContain(KEY);
  });
});
