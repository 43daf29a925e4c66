import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import OpenAI, { APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';

const PROXY_KEY = 'test-proxy-key-0123456789';
const ADMIN_KEY = 'test-admin-key-0123456789';
const PROVIDER_KEY = 'sk-provider-test-abcdefghijklmnop';

describe('proxy core against a local OpenAI-compatible upstream', () => {
  let upstream: FakeProvider;
  let proxy: ProxyProcess;
  let client: OpenAI;

  beforeAll(async () => {
    upstream = await startFakeProvider();
    proxy = await startProxyProcess(
      ['--default-backend', 'openai', '--timeout', '1', '--max-body-bytes', '20000'],
      {
        LLM_INTERACTIVE_PROXY_API_KEY: PROXY_KEY,
        LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
        OPENAI_API_KEY: PROVIDER_KEY,
        OPENAI_API_BASE_URL: upstream.baseUrls.openai,
      },
    );
    client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: PROXY_KEY, maxRetries: 0 });
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('answers a non-streaming completion and forwards the provider key, never the proxy key', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello!' }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe('echo: Hello!');
    expect((data as unknown as Record<string, unknown>).extra_field_from_upstream).toBe('kept');
    expect(response.headers.get('x-request-id')).toBeTruthy();
    expect(Number(response.headers.get('x-proxy-overhead-ms'))).toBeGreaterThanOrEqual(0);

    const seen = upstream.requests.at(-1);
    expect(seen?.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
    expect(JSON.stringify(seen?.headers)).not.toContain(PROXY_KEY);
    expect((seen?.body as { model: string }).model).toBe('gpt-4o-mini');
  });

  it('keeps a client-sent x-request-id', async () => {
    const res = await fetch(`${proxy.url}/v1/models`, {
      headers: { authorization: `Bearer ${PROXY_KEY}`, 'x-request-id': 'my-trace-123' },
    });
    expect(res.headers.get('x-request-id')).toBe('my-trace-123');
    const body = (await res.json()) as { data: Array<{ id: string }> };
    expect(body.data.map((m) => m.id)).toContain('gpt-4o-mini');
  });

  it('relays a stream chunk by chunk: the first chunk arrives before the upstream has finished', async () => {
    const stream = await client.chat.completions.create({
      model: 'fault-hold-1',
      stream: true,
      messages: [{ role: 'user', content: 'stream me' }],
    });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    // The upstream is still holding the rest of its answer: this chunk was relayed on its own.
    expect(first.value?.choices[0]?.delta.content).toBe('echo');
    upstream.release();
    let rest = '';
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      rest += next.value.choices[0]?.delta.content ?? '';
    }
    expect(`echo${rest}`).toBe('echo: stream me');
  });

  it('logs an access line and counts metrics for a streamed answer, whose headers carry the usual extras', async () => {
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${PROXY_KEY}`,
        'content-type': 'application/json',
        'x-request-id': 'stream-log-1',
      },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        stream: true,
        messages: [{ role: 'user', content: 'log me' }],
      }),
    });
    expect(res.headers.get('x-request-id')).toBe('stream-log-1');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(Number(res.headers.get('x-proxy-overhead-ms'))).toBeGreaterThanOrEqual(0);
    expect(await res.text()).toContain('data: [DONE]');
    await expect
      .poll(
        () =>
          proxy
            .stdout()
            .split('\n')
            .find((line) => line.includes('"request_id":"stream-log-1"')) ?? '',
      )
      .toMatch(/"status":200.*"backend":"openai".*"msg":"request"/);
    const metrics = await (
      await fetch(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
    ).text();
    expect(metrics).toMatch(
      /llm_proxy_requests_total\{route="\/v1\/chat\/completions",backend="openai",status="200"\} \d+/,
    );
  });

  it('ends the client stream with an error event when the upstream fails mid-stream', async () => {
    const stream = await client.chat.completions.create({
      model: 'fault-reset-mid-stream',
      stream: true,
      messages: [{ role: 'user', content: 'break' }],
    });
    const received: string[] = [];
    await expect(
      (async () => {
        for await (const chunk of stream) received.push(chunk.choices[0]?.delta.content ?? '');
      })(),
    ).rejects.toThrow(/failed mid-stream/);
    expect(received[0]).toBe('ech');
  });

  it('routes backend:model to the named backend and strips the prefix', async () => {
    await client.chat.completions.create({
      model: 'openai:gpt-4o',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect((upstream.requests.at(-1)?.body as { model: string }).model).toBe('gpt-4o');

    const viaMock = await client.chat.completions.create({
      model: 'mock:anything',
      messages: [{ role: 'user', content: 'to the mock' }],
    });
    expect(viaMock.choices[0]?.message.content).toBe('to the mock');
  });

  it('treats a prefix that names no backend as part of the model', async () => {
    await client.chat.completions.create({
      model: 'meta-llama:llama-3',
      messages: [{ role: 'user', content: 'x' }],
    });
    expect((upstream.requests.at(-1)?.body as { model: string }).model).toBe('meta-llama:llama-3');
  });

  it('answers 400 naming the env var for a backend without credentials', async () => {
    const err = await client.chat.completions
      .create({ model: 'openrouter:some/model', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).status).toBe(400);
    expect((err as APIError).message).toContain('OPENROUTER_API_KEY');
  });

  it('passes upstream errors on with their status and Retry-After, in the OpenAI envelope, scrub-free of the proxy key', async () => {
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'fault-status-429-retry-after-7',
        messages: [{ role: 'user', content: 'x' }],
      }),
    });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toBe('upstream says 429');
  });

  it("gives a Retry-After in seconds for a provider's retry-after-ms alone, beside it", async () => {
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'fault-status-429-retry-after-ms-1500',
        messages: [{ role: 'user', content: 'x' }],
      }),
    });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after-ms')).toBe('1500');
    expect(res.headers.get('retry-after')).toBe('2');
  });

  it('answers 504 when the backend sends no first byte within --timeout', async () => {
    const err = await client.chat.completions
      .create({ model: 'fault-no-head', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect((err as APIError).status).toBe(504);
    expect((err as APIError).error).toEqual({
      message: "Backend 'openai' did not answer in time",
      type: 'server_error',
      code: 'upstream_timeout',
      param: null,
    });
  });

  it('answers 413 for a body over --max-body-bytes and 400 for malformed JSON, in the OpenAI envelope', async () => {
    const big = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(30_000) }] })
      .catch((e: unknown) => e);
    expect((big as APIError).status).toBe(413);

    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' },
      body: '{"model": "gpt-4o-mini", "messages": [',
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string; type: string; code: string } };
    expect(body.error).toEqual({
      message: 'Request body is not valid JSON',
      type: 'invalid_request_error',
      code: 'invalid_json',
      param: null,
    });
  });

  it('leaves damage inside a prompt string to whoever reads it: the provider when passed through, else a 400', async () => {
    // A raw tab inside a string value: the lane's scan checks structure and keys, not string contents.
    const damaged = (model: string) => `{"model":"${model}","messages":[{"role":"user","content":"a\tb"}]}`;
    const post = (text: string) =>
      fetch(`${proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' },
        body: text,
      });
    const before = upstream.requests.length;
    await post(damaged('gpt-4o-mini'));
    // Passed through untouched: the provider got the bytes as sent, and judged them itself.
    expect(upstream.requests.slice(before).map((r) => r.body)).toEqual([damaged('gpt-4o-mini')]);
    // Translated (the embedded mock reads the messages): the proxy's own 400, and nothing forwarded.
    const translated = await post(damaged('mock:echo'));
    expect(translated.status).toBe(400);
    expect(((await translated.json()) as { error: unknown }).error).toEqual({
      message: 'Request body is not valid JSON',
      type: 'invalid_request_error',
      code: 'invalid_json',
      param: null,
    });
    expect(upstream.requests.length).toBe(before + 1);
  });

  it('answers 400 when the model is missing', async () => {
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [] }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe('model');
  });

  it('answers 415 for a compressed body, rather than calling it broken JSON', async () => {
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${PROXY_KEY}`,
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      },
      body: gzipSync(JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })),
    });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
      'Unsupported Content-Encoding; send the body uncompressed (identity)',
    );
  });

  it('answers 400 when stream is not a boolean, rather than taking it for a whole answer', async () => {
    for (const [path, extra] of [
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] }],
      ['/anthropic/v1/messages', { max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }],
      ['/v1/responses', { input: 'hi' }],
    ] as const) {
      const res = await fetch(`${proxy.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', stream: 'yes', ...extra }),
      });
      expect(res.status).toBe(400);
      expect(JSON.stringify(await res.json())).toContain("Invalid type for 'stream': expected a boolean");
    }
  });

  it('serves public /health, /openapi.json and /docs, and keeps /internal/health behind the admin key', async () => {
    const health = await fetch(`${proxy.url}/health`);
    expect(await health.json()).toEqual({ status: 'ok' });

    const spec = (await (await fetch(`${proxy.url}/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(spec.paths)).toContain('/v1/chat/completions');

    const docs = await fetch(`${proxy.url}/docs/`);
    expect(docs.status).toBe(200);
    const html = await docs.text();
    expect(html).toContain('swagger-ui');
    // Air-gapped: every script and stylesheet is served by the proxy itself.
    expect(html).not.toMatch(/(src|href)="https?:\/\//);

    expect((await fetch(`${proxy.url}/internal/health`)).status).toBe(401);
    const asClient = await fetch(`${proxy.url}/internal/health`, {
      headers: { authorization: `Bearer ${PROXY_KEY}` },
    });
    expect(asClient.status).toBe(403);
    const internal = await fetch(`${proxy.url}/internal/health`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    const detail = (await internal.json()) as { backends: string[] };
    expect(detail.backends).toEqual(expect.arrayContaining(['openai', 'mock']));
    expect(JSON.stringify(detail)).not.toContain(PROVIDER_KEY);
  });

  it('answers 502 when the backend is unreachable', async () => {
    const closed = await startFakeProvider();
    const deadUrl = closed.baseUrls.openai;
    await closed.close();
    const other = await startProxyProcess(['--default-backend', 'openai'], {
      LLM_INTERACTIVE_PROXY_API_KEY: PROXY_KEY,
      OPENAI_API_KEY: PROVIDER_KEY,
      OPENAI_API_BASE_URL: deadUrl,
    });
    try {
      const c = new OpenAI({ baseURL: `${other.url}/v1`, apiKey: PROXY_KEY, maxRetries: 0 });
      const err = await c.chat.completions
        .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })
        .catch((e: unknown) => e);
      expect((err as APIError).status).toBe(502);
      expect((err as APIError).message).toContain("Backend 'openai' is unreachable");
    } finally {
      await other.stop();
    }
  });
});

describe('a client that leaves mid-stream', () => {
  let upstream: FakeProvider;
  let proxy: ProxyProcess;
  let client: OpenAI;

  beforeAll(async () => {
    upstream = await startFakeProvider();
    // The default --timeout (120 s) outlasts the test: only the client's disconnect can end the held request.
    proxy = await startProxyProcess(['--default-backend', 'openai'], {
      LLM_INTERACTIVE_PROXY_API_KEY: PROXY_KEY,
      OPENAI_API_KEY: PROVIDER_KEY,
      OPENAI_API_BASE_URL: upstream.baseUrls.openai,
    });
    client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: PROXY_KEY, maxRetries: 0 });
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('aborts the upstream request, and the proxy goes on serving', async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'fault-hold-2', stream: true, messages: [{ role: 'user', content: 'abort me' }] },
      { signal: controller.signal },
    );
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.choices[0]?.delta.content).toBe('echo');
    controller.abort();
    // The upstream holds the rest of its answer until release(), never called here: only an abort closes it.
    await upstream.closedEarly('abort me');

    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still here?' }] })
      .withResponse();
    expect(response.status).toBe(200);
    expect(data.choices[0]?.message.content).toBe('echo: still here?');
    expect(proxy.child.exitCode).toBeNull();
  });
});

describe('the embedded mock as the fallback', () => {
  it('says which declared backend lacks its key, not that none is configured', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lip-keyless-'));
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      'backends:\n  local: {type: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: LOCAL_KEY_UNSET}\n',
    );
    const proxy = await startProxyProcess(['--config', config], { LLM_INTERACTIVE_PROXY_API_KEY: PROXY_KEY });
    try {
      await expect
        .poll(() => proxy.stdout())
        .toContain(
          '"msg":"No backend has its key — local (set LOCAL_KEY_UNSET): requests that name no backend go to the embedded mock backend, which echoes the last user message"',
        );
      const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: PROXY_KEY, maxRetries: 0 });
      const err = await client.chat.completions
        .create({ model: 'local:m', messages: [{ role: 'user', content: 'hi' }] })
        .catch((e: unknown) => e);
      expect((err as APIError).status).toBe(400);
      expect((err as APIError).message).toContain('LOCAL_KEY_UNSET');
    } finally {
      await proxy.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
