import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from '../fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import { chatRequest } from './support.js';

const KEY = 'headers-proxy-key-0123456789';
const GOOD = 'https://chat.good.example';
const EVIL = 'https://evil.example';

describe('security headers and CORS on every kind of answer', () => {
  let upstream: FakeProvider;
  let proxy: ProxyProcess;

  beforeAll(async () => {
    upstream = await startFakeProvider();
    proxy = await startProxyProcess(
      [
        '--default-backend',
        'openai',
        '--cors-origin',
        GOOD,
        '--max-body-bytes',
        '2000',
        // The blocked client below is a forwarded address, so the test's own 127.0.0.1 stays usable.
        '--trusted-proxy',
        '127.0.0.1',
        '--auth-max-failed-attempts',
        '1',
      ],
      {
        LLM_INTERACTIVE_PROXY_API_KEY: KEY,
        OPENAI_API_KEY: 'sk-provider-openai-000',
        OPENAI_API_BASE_URL: `${upstream.url}/v1`,
      },
    );
    // Block 203.0.113.9: one failure is enough with --auth-max-failed-attempts 1.
    await fetch(`${proxy.url}/v1/models`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const chat = (model: string, extra: Record<string, string> = {}, prompt = 'hi') => {
    const req = chatRequest('openai', model, false, prompt);
    return fetch(`${proxy.url}${req.path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', origin: GOOD, ...extra },
      body: req.body,
    });
  };

  const answers: Array<[string, number, () => Promise<Response>]> = [
    ['a completion', 200, () => chat('m')],
    // Failures come from forwarded addresses of their own: one failure blocks an address here.
    [
      'a missing key',
      401,
      () => fetch(`${proxy.url}/v1/models`, { headers: { origin: GOOD, 'x-forwarded-for': '198.51.100.1' } }),
    ],
    ['a blocked address', 429, () => chat('m', { 'x-forwarded-for': '203.0.113.9' })],
    [
      'an unknown route',
      404,
      () => fetch(`${proxy.url}/v1/nothing`, { headers: { authorization: `Bearer ${KEY}`, origin: GOOD } }),
    ],
    ['a body over the limit', 413, () => chat('m', {}, 'x'.repeat(3000))],
    ['a backend error page', 502, () => chat('fault-html-502')],
    ['an upstream 429', 429, () => chat('fault-status-429-retry-after-7')],
    [
      'a model list',
      200,
      () => fetch(`${proxy.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}`, origin: GOOD } }),
    ],
    ['the health check', 200, () => fetch(`${proxy.url}/health`, { headers: { origin: GOOD } })],
    ['the OpenAPI document', 200, () => fetch(`${proxy.url}/openapi.json`, { headers: { origin: GOOD } })],
  ];
  for (const [label, status, send] of answers) {
    it(`${label} (${status}): nosniff, no-store, CORS for the allowed origin, nothing that names the server`, async () => {
      const res = await send();
      await res.arrayBuffer();
      expect(res.status).toBe(status);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('access-control-allow-origin')).toBe(GOOD);
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      expect(res.headers.get('x-powered-by')).toBeNull();
      expect(res.headers.get('server')).toBeNull();
      expect(res.headers.get('x-request-id')).toBeTruthy();
    });
  }

  it('streams carry nosniff and CORS too', async () => {
    const req = chatRequest('openai', 'm', true);
    const res = await fetch(`${proxy.url}${req.path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', origin: GOOD },
      body: req.body,
    });
    await res.text();
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('access-control-allow-origin')).toBe(GOOD);
    expect(res.headers.get('x-powered-by')).toBeNull();
  });

  it('answers a pre-flight from the allowed origin, without a key and without credentials', async () => {
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: GOOD,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get('access-control-allow-origin')).toBe(GOOD);
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    expect(res.headers.get('vary')?.toLowerCase()).toContain('origin');
  });

  it('gives an origin that is not allowed no CORS grant, on pre-flights and on real answers', async () => {
    const preflight = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: EVIL, 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    for (const send of [
      () => chat('m', { origin: EVIL }),
      () => fetch(`${proxy.url}/v1/models`, { headers: { origin: EVIL, 'x-forwarded-for': '198.51.100.2' } }),
    ]) {
      const res = await send();
      await res.arrayBuffer();
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });
});
