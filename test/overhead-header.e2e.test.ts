import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

/**
 * `x-proxy-overhead-ms` is the time spent in the proxy itself, the backend's time left out (README,
 * Endpoints). The backend here holds every answer for HOLD_MS: a header that counted the backend's time
 * would be at least that, whatever the machine's speed.
 */
const HOLD_MS = 600;
const KEY = 'overhead-test-proxy-key-0123456789';

let upstream: FakeProvider;
let proxy: ProxyProcess;

beforeAll(async () => {
  upstream = await startFakeProvider();
  // Every answer, the model list included, waits HOLD_MS before its first byte.
  upstream.setFault(`slow-first-byte-${HOLD_MS}`);
  proxy = await startProxyProcess(['--default-backend', 'openai'], {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    OPENAI_API_KEY: 'sk-overhead-provider-0000',
    OPENAI_API_BASE_URL: upstream.baseUrls.openai,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
});

describe('x-proxy-overhead-ms', () => {
  const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
  const chat = JSON.stringify({ model: 'held-model', messages: [{ role: 'user', content: 'hi' }] });

  it.each([
    ['a chat completion (same protocol)', '/v1/chat/completions', chat],
    [
      'a translated chat (Anthropic client)',
      '/anthropic/v1/messages',
      JSON.stringify({ model: 'held-model', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
    ],
    ['the model list', '/v1/models', undefined],
  ])('leaves the backend out for %s', async (_name, path, body) => {
    const res = await fetch(`${proxy.url}${path}`, { method: body ? 'POST' : 'GET', headers, body });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const overhead = Number(res.headers.get('x-proxy-overhead-ms'));
    expect(Number.isFinite(overhead)).toBe(true);
    expect(overhead).toBeGreaterThanOrEqual(0);
    expect(overhead).toBeLessThan(HOLD_MS);
  });
});
