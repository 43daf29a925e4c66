import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, type RawResponse } from './helpers/http.js';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

const KEY = 'request-id-proxy-key-0123456789';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** Header values are bytes on the wire: UTF-8 text is sent as its bytes, which Node reads back as Latin-1. */
const utf8Bytes = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

/** One route of each door: the chat lane, a keyed Fastify route, a public Fastify route. */
const ROUTES: Record<string, (proxy: ProxyProcess, id: string | string[]) => Promise<RawResponse>> = {
  'POST /v1/chat/completions': (proxy, id) =>
    rawRequest(proxy.url, '/v1/chat/completions', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${KEY}`,
        'content-type': 'application/json',
        'x-request-id': id,
      },
      body: JSON.stringify({ model: 'gpt-x', messages: [{ role: 'user', content: 'hello' }] }),
    }),
  'GET /v1/models': (proxy, id) =>
    rawRequest(proxy.url, '/v1/models', { headers: { authorization: `Bearer ${KEY}`, 'x-request-id': id } }),
  'GET /health': (proxy, id) => rawRequest(proxy.url, '/health', { headers: { 'x-request-id': id } }),
};

const KEPT: Array<[string, string]> = [
  ['a plain id', 'trace-Kept_1.2:3'],
  ['128 characters', 'k'.repeat(128)],
];
const REPLACED: Array<[string, string | string[]]> = [
  ['129 characters', 'r'.repeat(129)],
  ['a space', 'replaced trace'],
  ['a tab', 'replaced\ttrace'],
  ['Latin-1', 'replaced-tracé'],
  ['UTF-8 bytes', utf8Bytes('replaced-日本')],
  ['markup', '<replaced-trace>'],
  ['two headers', ['replaced-one', 'replaced-two']],
];

describe('x-request-id from the client', () => {
  let proxy: ProxyProcess;

  beforeAll(async () => {
    proxy = await startProxyProcess(['--default-backend', 'mock'], { LLM_INTERACTIVE_PROXY_API_KEY: KEY });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  const accessLineOf = (id: string) => proxy.stdout().includes(`"request_id":"${id}"`);

  describe.each(Object.keys(ROUTES))('%s', (route) => {
    const send = ROUTES[route] as (typeof ROUTES)[string];

    it.each(KEPT)('is echoed when it is %s', async (_what, id) => {
      const res = await send(proxy, id);
      expect(res.status).toBe(200);
      expect(res.headers['x-request-id']).toBe(id);
      await expect.poll(() => accessLineOf(id)).toBe(true);
    });

    it.each(REPLACED)('is replaced by a fresh UUID when it holds %s', async (_what, id) => {
      const first = await send(proxy, id);
      const second = await send(proxy, id);
      expect([first.status, second.status]).toEqual([200, 200]);
      const generated = first.headers['x-request-id'] as string;
      expect(generated).toMatch(UUID);
      expect(second.headers['x-request-id']).toMatch(UUID);
      expect(second.headers['x-request-id']).not.toBe(generated);
      // The access line names the generated id; what the client sent is logged nowhere.
      await expect.poll(() => accessLineOf(generated)).toBe(true);
      expect(proxy.stdout()).not.toContain('replaced');
    });
  });
});
