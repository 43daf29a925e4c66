/**
 * Every API answer carries `Cache-Control: no-store`, streamed answers included (a `no-cache` would still
 * let a shared cache store the stream).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import { FRONTS, chatRequest } from './support.js';

const KEY = 'stream-cache-key-0123456789';

describe('streams are never stored by a cache', () => {
  let proxy: ProxyProcess;
  beforeAll(async () => {
    proxy = await startProxyProcess([], { LLM_INTERACTIVE_PROXY_API_KEY: KEY });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  for (const front of FRONTS) {
    it(`${front} stream: Cache-Control: no-store`, async () => {
      const req = chatRequest(front, 'mock:m', true);
      const res = await fetch(`${proxy.url}${req.path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: req.body,
      });
      await res.text();
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      expect(res.headers.get('cache-control')).toBe('no-store');
    });
  }
});
