import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { Cancellation } from './cancel.js';
import { HttpBackend } from './http-backend.js';
import { readBytes, UpstreamHttp } from './http.js';
import { HTTP_PROFILES } from './profiles.js';

describe('HttpBackend.headersFor', () => {
  const upstream = new UpstreamHttp({ timeoutMs: 1000 });
  const anthropic = new HttpBackend(
    HTTP_PROFILES.anthropic,
    {
      name: 'anthropic',
      baseUrl: 'http://127.0.0.1:9/v1',
      apiKey: 'sk-ant-own',
      apiKeyEnv: 'ANTHROPIC_API_KEY',
    },
    upstream,
  );

  it('sends its own headers, the same object every call, when the client adds none', () => {
    expect(anthropic.headersFor(undefined)).toBe(anthropic.headersFor(undefined));
    expect(anthropic.headersFor(undefined)).toEqual({
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'anthropic-version': '2023-06-01',
      'x-api-key': 'sk-ant-own',
    });
  });

  it("lets the client's headers replace a default, never the credential", () => {
    expect(
      anthropic.headersFor({
        'anthropic-version': '2099-01-01',
        'anthropic-beta': 'b1',
        'x-api-key': 'client',
      }),
    ).toEqual({
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'anthropic-version': '2099-01-01',
      'anthropic-beta': 'b1',
      'x-api-key': 'sk-ant-own',
    });
  });
});

describe('HttpBackend with a key pool', () => {
  const upstream = new UpstreamHttp({ timeoutMs: 5000 });
  const seen: string[] = [];
  let server: Server;
  afterAll(async () => {
    await upstream.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('answers 429 itself while every usable key rests, naming when one is back; the provider is not asked', async () => {
    // The provider rate-limits every key for 20 s.
    server = createServer((req, res) => {
      seen.push(String(req.headers['x-api-key']));
      req.resume();
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '20' });
      res.end('{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const backend = new HttpBackend(
      HTTP_PROFILES.anthropic,
      {
        name: 'anthropic',
        baseUrl: `http://127.0.0.1:${port}/v1`,
        apiKey: 'sk-ant-one',
        apiKeyEnv: 'ANTHROPIC_API_KEY',
        pool: [
          { name: 'ANTHROPIC_API_KEY_1', value: 'sk-ant-one' },
          { name: 'ANTHROPIC_API_KEY_2', value: 'sk-ant-two' },
        ],
      },
      upstream,
    );
    const call = () =>
      backend.chat({
        model: 'claude-x',
        stream: false,
        body: { model: 'claude-x', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] },
        signal: new Cancellation(),
        requestId: 'req-pool',
      });

    const first = await call();
    expect(first.status).toBe(429);
    expect(seen).toEqual(['sk-ant-one', 'sk-ant-two']);

    const second = await call();
    expect(seen).toHaveLength(2);
    expect(second.status).toBe(429);
    expect(second.headers['retry-after']).toBe('20');
    expect(JSON.parse((await readBytes(second)).toString('utf8'))).toEqual({
      type: 'error',
      error: {
        type: 'rate_limit_error',
        message: "Every key of backend 'anthropic' is resting after a rate limit; try again in 20s",
      },
    });
  });
});
