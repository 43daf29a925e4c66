import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, type RawResponse } from './helpers/http.js';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { rawExchange } from './reliability/support.js';

const KEY = 'host-check-proxy-key-0123456789';
const CHAT = JSON.stringify({ model: 'gpt-4', messages: [{ role: 'user', content: 'hello' }] });
const UI = 'https://ui.example';

/** A chat completion through the chat lane (no Origin), with the given Host. */
const chat = (proxy: ProxyProcess, host: string, extra: Record<string, string> = {}) =>
  rawRequest(proxy.url, '/v1/chat/completions', {
    method: 'POST',
    headers: { host, 'content-type': 'application/json', ...extra },
    body: CHAT,
  });
const get = (proxy: ProxyProcess, path: string, host: string, extra: Record<string, string> = {}) =>
  rawRequest(proxy.url, path, { headers: { host, ...extra } });
const preflight = (proxy: ProxyProcess, host: string) =>
  rawRequest(proxy.url, '/v1/chat/completions', {
    method: 'OPTIONS',
    headers: {
      host,
      origin: UI,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type',
    },
  });

function expectMisdirected(res: RawResponse): void {
  expect(res.status).toBe(421);
  expect(res.headers['access-control-allow-origin']).toBeUndefined();
  expect(res.headers['x-content-type-options']).toBe('nosniff');
  expect(JSON.parse(res.body)).toEqual({
    error: {
      message: expect.stringMatching(/^Misdirected request: with authentication disabled/),
      type: 'invalid_request_error',
      code: 'misdirected_request',
      param: null,
    },
  });
}

describe('authentication off: only requests addressed to this proxy, no CORS by default', () => {
  let proxy: ProxyProcess;
  let port: string;

  beforeAll(async () => {
    proxy = await startProxyProcess(['--disable-auth']);
    port = new URL(proxy.url).port;
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('refuses a foreign Host with 421 on the chat lane, on Fastify routes and on a pre-flight', async () => {
    for (const host of [
      'evil.example',
      `evil.example:${port}`,
      `localhost.evil.example:${port}`,
      `0.0.0.0:${port}`,
    ]) {
      expectMisdirected(await chat(proxy, host));
      expectMisdirected(await chat(proxy, host, { origin: UI })); // through Fastify
      expectMisdirected(await get(proxy, '/v1/models', host));
      expectMisdirected(await get(proxy, '/health', host));
      expectMisdirected(await preflight(proxy, host));
    }
    const anthropic = await rawRequest(proxy.url, '/anthropic/v1/messages', {
      method: 'POST',
      headers: { host: 'evil.example', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
    });
    expect(anthropic.status).toBe(421);
    expect(JSON.parse(anthropic.body)).toEqual({
      type: 'error',
      error: {
        type: 'invalid_request_error',
        message:
          'Misdirected request: with authentication disabled the proxy answers only requests addressed to localhost, a loopback address, its --host or an --allowed-host name',
      },
    });
  });

  it('refuses a request without a Host header (HTTP/1.0)', async () => {
    const answer = await rawExchange(proxy.url, 'GET /v1/models HTTP/1.0\r\n\r\n');
    expect(answer.raw).toMatch(/^HTTP\/1\.1 421 /);
    expect(answer.raw).toContain('"code":"misdirected_request"');
  });

  it('answers localhost and loopback hosts, with or without a port', async () => {
    for (const host of [
      `localhost:${port}`,
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      'localhost',
      '127.0.0.1',
    ]) {
      const completion = await chat(proxy, host);
      expect(completion.status, host).toBe(200);
      expect(JSON.parse(completion.body).choices[0].message.content).toBe('hello');
      expect((await get(proxy, '/v1/models', host)).status, host).toBe(200);
    }
  });

  it('sends no CORS headers, and does not answer pre-flights with CORS', async () => {
    const host = `127.0.0.1:${port}`;
    for (const res of [
      await chat(proxy, host),
      await chat(proxy, host, { origin: UI }),
      await get(proxy, '/v1/models', host, { origin: UI }),
      await preflight(proxy, host),
    ]) {
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      expect(res.headers['access-control-allow-methods']).toBeUndefined();
      expect(res.headers['access-control-expose-headers']).toBeUndefined();
    }
    expect((await preflight(proxy, host)).status).toBe(404);
  });
});

describe('authentication off with --allowed-host and --cors-origin', () => {
  let proxy: ProxyProcess;
  let port: string;

  beforeAll(async () => {
    proxy = await startProxyProcess(
      ['--disable-auth', '--allowed-host', 'proxy.internal', '--cors-origin', UI],
      {
        ALLOWED_HOSTS: 'overridden-by-the-flag.example',
      },
    );
    port = new URL(proxy.url).port;
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('answers an allowed host, still refuses others, and grants CORS to the named origin only', async () => {
    expect((await chat(proxy, `proxy.internal:${port}`)).status).toBe(200);
    expect((await get(proxy, '/v1/models', 'PROXY.INTERNAL')).status).toBe(200);
    expectMisdirected(await chat(proxy, 'overridden-by-the-flag.example'));
    expectMisdirected(await chat(proxy, 'evil.example'));

    const granted = await get(proxy, '/v1/models', 'proxy.internal', { origin: UI });
    expect(granted.headers['access-control-allow-origin']).toBe(UI);
    const pre = await preflight(proxy, 'proxy.internal');
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe(UI);
    const refused = await get(proxy, '/v1/models', 'proxy.internal', { origin: 'https://evil.example' });
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('takes allowed hosts from ALLOWED_HOSTS (comma-separated)', async () => {
    const other = await startProxyProcess(['--disable-auth'], {
      ALLOWED_HOSTS: 'a.internal, b.internal:9000',
    });
    try {
      const otherPort = new URL(other.url).port;
      expect((await chat(other, `a.internal:${otherPort}`)).status).toBe(200);
      expect((await chat(other, 'b.internal:9000')).status).toBe(200);
      expectMisdirected(await chat(other, `b.internal:${otherPort}`));
    } finally {
      await other.stop();
    }
  });
});

describe('authentication on: Host is not checked, CORS for any origin as before', () => {
  let proxy: ProxyProcess;

  beforeAll(async () => {
    proxy = await startProxyProcess([], { LLM_INTERACTIVE_PROXY_API_KEY: KEY });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('answers any Host with the key, with CORS *', async () => {
    const auth = { authorization: `Bearer ${KEY}` };
    const lane = await chat(proxy, 'evil.example', auth);
    expect(lane.status).toBe(200);
    expect(lane.headers['access-control-allow-origin']).toBe('*');
    const models = await get(proxy, '/v1/models', 'lb.example.com', { ...auth, origin: UI });
    expect(models.status).toBe(200);
    expect(models.headers['access-control-allow-origin']).toBe('*');
    const pre = await preflight(proxy, 'evil.example');
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('*');
    expect((await get(proxy, '/v1/models', 'evil.example')).status).toBe(401);
    const noHost = await rawExchange(
      proxy.url,
      `GET /v1/models HTTP/1.0\r\nauthorization: Bearer ${KEY}\r\n\r\n`,
    );
    expect(noHost.raw).toMatch(/^HTTP\/1\.1 200 /);
  });
});
