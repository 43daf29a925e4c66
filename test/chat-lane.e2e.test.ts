import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rawRequest, type RawResponse } from './helpers/http.js';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';

/**
 * The chat lane serves every chat request, a browser's (with Origin) as well as an SDK's. Both must be
 * answered alike but for the CORS headers. Each case is sent twice — without Origin and with one — and the
 * answers compared: status, body and every header but the per-request and CORS ones.
 */
const PROXY_KEY = 'lane-parity-proxy-key-0123456789';
const PROVIDER_KEY = 'sk-lane-parity-provider-abcdefghij';
const ORIGIN = 'http://parity.example';

/** Headers that differ per request or only exist for a browser (CORS), left out of the comparison. */
const PER_REQUEST = new Set([
  'date',
  'x-request-id',
  'x-proxy-overhead-ms',
  'connection',
  'keep-alive',
  'vary',
  'access-control-allow-origin',
  'access-control-expose-headers',
]);

function comparable(res: RawResponse) {
  const headers = Object.fromEntries(Object.entries(res.headers).filter(([name]) => !PER_REQUEST.has(name)));
  // Translated answers carry ids made from the request id; those differ by design.
  const requestId = String(res.headers['x-request-id'] ?? '');
  const body = requestId ? res.body.split(requestId).join('<request-id>') : res.body;
  return { status: res.status, headers, body };
}

interface Case {
  name: string;
  path: string;
  body: string;
  headers?: Record<string, string>;
  status: number;
}

const chat = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'parity' }], ...extra });
const gemini = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'parity' }] }] });
const auth = { authorization: `Bearer ${PROXY_KEY}` };

const CASES: Case[] = [
  { name: 'OpenAI completion', path: '/v1/chat/completions', body: chat(), status: 200 },
  { name: 'OpenAI stream', path: '/v1/chat/completions', body: chat({ stream: true }), status: 200 },
  {
    name: 'Anthropic, translated',
    path: '/anthropic/v1/messages',
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      max_tokens: 20,
      messages: [{ role: 'user', content: 'hi' }],
    }),
    status: 200,
  },
  {
    name: 'Anthropic stream, translated',
    path: '/anthropic/v1/messages',
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      max_tokens: 20,
      stream: true,
      messages: [{ role: 'user', content: 'hi' }],
    }),
    status: 200,
  },
  {
    name: 'Gemini generateContent',
    path: '/v1beta/models/gpt-4o-mini:generateContent',
    body: gemini,
    status: 200,
  },
  {
    name: 'Gemini stream',
    path: '/v1beta/models/gpt-4o-mini:streamGenerateContent?alt=sse',
    body: gemini,
    status: 200,
  },
  {
    name: 'Gemini stream without alt=sse',
    path: '/v1beta/models/gpt-4o-mini:streamGenerateContent',
    body: gemini,
    status: 400,
  },
  {
    name: 'Gemini unknown action',
    path: '/v1beta/models/gpt-4o-mini:constructor',
    body: gemini,
    status: 404,
  },
  {
    name: 'Content-Type with charset',
    path: '/v1/chat/completions',
    body: chat(),
    headers: { 'content-type': 'Application/JSON; charset=utf-8' },
    status: 200,
  },
  { name: 'invalid JSON', path: '/v1/chat/completions', body: '{"model": ', status: 400 },
  { name: 'empty body', path: '/v1/chat/completions', body: '', status: 400 },
  { name: 'array body', path: '/v1/chat/completions', body: '[1,2]', status: 400 },
  {
    name: 'prototype poisoning',
    path: '/v1/chat/completions',
    body: '{"model":"gpt-4o-mini","__proto__":{"admin":true}}',
    status: 400,
  },
  { name: 'missing model', path: '/v1/chat/completions', body: '{"messages":[]}', status: 400 },
  {
    name: 'body too large',
    path: '/v1/chat/completions',
    body: chat({ pad: 'x'.repeat(30_000) }),
    status: 413,
  },
  {
    name: 'upstream 429',
    path: '/v1/chat/completions',
    body: chat({ model: 'fault-status-429-retry-after-7' }),
    status: 429,
  },
  {
    name: 'upstream 401',
    path: '/v1/chat/completions',
    body: chat({ model: 'fault-key-in-error' }),
    status: 401,
  },
  {
    name: 'no key',
    path: '/anthropic/v1/messages',
    body: chat(),
    headers: { authorization: '' },
    status: 401,
  },
  {
    name: 'wrong key',
    path: '/v1beta/models/gpt-4o-mini:generateContent',
    body: gemini,
    headers: { 'x-goog-api-key': 'not-the-key' },
    status: 401,
  },
];

describe('the chat lane answers alike with and without Origin', () => {
  let upstream: FakeProvider;
  let proxy: ProxyProcess;
  let nextClient = 1;

  beforeAll(async () => {
    upstream = await startFakeProvider();
    proxy = await startProxyProcess(
      [
        '--default-backend',
        'openai',
        '--max-body-bytes',
        '20000',
        '--trusted-proxy',
        '127.0.0.1',
        '--auth-max-failed-attempts',
        '2',
      ],
      {
        LLM_INTERACTIVE_PROXY_API_KEY: PROXY_KEY,
        OPENAI_API_KEY: PROVIDER_KEY,
        OPENAI_API_BASE_URL: upstream.baseUrls.openai,
      },
    );
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  /** Each request from its own address (via the trusted proxy), so failures never add up to a block. */
  const send = (c: Case, origin: string | undefined, client = `198.51.100.${nextClient++}`) => {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-forwarded-for': client,
      ...auth,
      ...c.headers,
    };
    if (headers.authorization === '') delete headers.authorization;
    if (c.headers?.['x-goog-api-key']) delete headers.authorization;
    if (origin) headers.origin = origin;
    return rawRequest(proxy.url, c.path, { method: 'POST', headers, body: c.body });
  };

  it.each(CASES)('$name', async (c) => {
    const lane = await send(c, undefined);
    const routed = await send(c, ORIGIN);
    expect(lane.status).toBe(c.status);
    expect(comparable(lane)).toEqual(comparable(routed));
    // CORS allows any origin here (auth on, no --cors-origin): '*' with Origin and without it.
    expect(routed.headers['access-control-allow-origin']).toBe('*');
    expect(lane.headers['access-control-allow-origin']).toBe('*');
    expect(lane.headers['x-request-id']).toBeTruthy();
    expect(Number(lane.headers['x-proxy-overhead-ms'])).toBeGreaterThanOrEqual(0);
  });

  it('a blocked address gets the same 429 with and without Origin', async () => {
    const blocked = '203.0.113.77';
    const bad: Case = {
      name: 'bad',
      path: '/v1/chat/completions',
      body: chat(),
      headers: { authorization: 'Bearer nope' },
      status: 401,
    };
    expect((await send(bad, undefined, blocked)).status).toBe(401);
    expect((await send(bad, ORIGIN, blocked)).status).toBe(401);
    const good: Case = { name: 'good', path: '/v1/chat/completions', body: chat(), status: 429 };
    const lane = await send(good, undefined, blocked);
    const routed = await send(good, ORIGIN, blocked);
    expect(lane.status).toBe(429);
    // Each 429 is held a second (the tarpit), so the two count down the same block a second apart.
    const withoutCountdown = (res: RawResponse) => {
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      const { headers, ...rest } = comparable(res);
      const { 'retry-after': _countdown, ...others } = headers;
      return { ...rest, headers: others, body: rest.body.replace(/"retry_after":\d+/, '"retry_after":N') };
    };
    expect(withoutCountdown(lane)).toEqual(withoutCountdown(routed));
  });

  it('logs one access line per request with and without Origin, with the client address from X-Forwarded-For', async () => {
    const c = CASES[0]!;
    await send(c, undefined, '192.0.2.10');
    await send(c, ORIGIN, '192.0.2.11');
    const accessLine = (client: string) =>
      proxy
        .stdout()
        .split('\n')
        .filter((l) => l.includes('"msg":"request"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.client === client);
    // Log lines are written asynchronously: wait for them rather than for a fixed time.
    await vi.waitFor(() => expect(accessLine('192.0.2.11')).toBeDefined());
    for (const client of ['192.0.2.10', '192.0.2.11']) {
      const line = accessLine(client);
      expect(line).toMatchObject({
        method: 'POST',
        path: '/v1/chat/completions',
        status: 200,
        backend: 'openai',
        model: 'gpt-4o-mini',
        key_name: expect.any(String),
      });
    }
    expect(proxy.stdout()).not.toContain(PROXY_KEY);
  });
});
