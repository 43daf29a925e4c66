import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { compileTrustProxy } from '../auth/client-address.js';
import type { AuthCheck } from '../auth/gate.js';
import type { AccessEntry } from './access-log.js';
import { laneHeaders } from './cors.js';
import { createChatLane, type ChatLaneOptions } from './chat-lane.js';
import type { ChatExchange } from '../pipeline/exchange.js';
import { writeJson } from '../pipeline/respond.js';
import type { ChatRoute } from './routes.js';

interface Harness {
  url: string;
  served: ChatExchange[];
  access: AccessEntry[];
  open: { value: boolean };
}

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A real server: the lane first, then a stand-in for Fastify that answers 299 "fastify". */
async function start(options: Partial<ChatLaneOptions> = {}): Promise<Harness> {
  const served: ChatExchange[] = [];
  const access: AccessEntry[] = [];
  const open = { value: true };
  const route = (url: string): ChatRoute => ({
    url,
    protocol: 'openai',
    summary: '',
    required: [],
    run: async (ex) => {
      served.push(ex);
      writeJson(ex, 200, { served: url });
    },
  });
  const lane = createChatLane({
    routes: [route('/v1/chat/completions'), route('/v1beta/models/*')],
    auth: null,
    hostCheck: null,
    trustProxy: false,
    maxBodyBytes: 100,
    recordAccess: (entry) => access.push(entry),
    headers: laneHeaders({ 'x-content-type-options': 'nosniff' }, CORS),
    isOpen: () => open.value,
    log: { error: () => undefined },
    redact: (text) => text,
    ...options,
  });
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!lane(req, res)) {
      res.writeHead(299);
      res.end('fastify');
    }
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, served, access, open };
}

/** CORS as with `--cors-origin http://a.example`: one listed origin. */
const CORS = { origin: ['http://a.example'], exposedHeaders: ['x-request-id'] };

async function post(
  url: string,
  path: string,
  body: string,
  headers: Record<string, string> = { 'content-type': 'application/json' },
) {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers, body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('chat lane: which requests it takes', () => {
  it('takes a JSON POST to a chat route and hands the pipeline the parsed and the raw body', async () => {
    const h = await start();
    const res = await post(h.url, '/v1/chat/completions?x=1', '{"model":"m"}');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(h.served[0]).toMatchObject({
      method: 'POST',
      url: '/v1/chat/completions?x=1',
      body: { model: 'm' },
      rawBody: '{"model":"m"}',
      ip: '127.0.0.1',
      authKeyName: null,
    });
  });

  it('takes a prefix route only with a tail', async () => {
    const h = await start();
    expect((await post(h.url, '/v1beta/models/m:generateContent', '{}')).status).toBe(200);
    expect((await post(h.url, '/v1beta/models/', '{}')).status).toBe(299);
  });

  it.each([
    ['another path', '/v1/chat/completions/'],
    ['a look-alike prefix', '/v1/chat/completionsx'],
  ])('leaves %s to Fastify', async (_name, path) => {
    const h = await start();
    const res = await post(h.url, path, '{}');
    expect(res.status).toBe(299);
    expect(h.served).toHaveLength(0);
  });

  it('leaves every method but POST to Fastify (pre-flights, GET)', async () => {
    const h = await start();
    expect((await fetch(`${h.url}/v1/chat/completions`)).status).toBe(299);
    expect((await fetch(`${h.url}/v1/chat/completions`, { method: 'OPTIONS' })).status).toBe(299);
  });

  it("takes a browser's request, with the CORS headers of its origin", async () => {
    const h = await start();
    const listed = await post(h.url, '/v1/chat/completions', '{}', {
      'content-type': 'application/json',
      origin: 'http://a.example',
    });
    expect(listed.status).toBe(200);
    expect(listed.headers.get('access-control-allow-origin')).toBe('http://a.example');
    expect(listed.headers.get('vary')).toBe('Origin');
    expect(listed.headers.get('access-control-expose-headers')).toBe('x-request-id');
    const unlisted = await post(h.url, '/v1/chat/completions', '{}', {
      'content-type': 'application/json',
      origin: 'http://b.example',
    });
    expect(unlisted.status).toBe(200);
    expect(unlisted.headers.get('access-control-allow-origin')).toBeNull();
    expect(unlisted.headers.get('vary')).toBe('Origin');
    expect(h.served).toHaveLength(2);
  });

  it.each([
    ['another content type', { 'content-type': 'text/plain' }],
    ['a JSON look-alike', { 'content-type': 'application/jsonx' }],
    ['no content type, with a body', {}],
  ])('answers %s with 415, the body unread', async (_name, headers) => {
    const h = await start();
    const res = await post(h.url, '/v1/chat/completions', '{}', headers as Record<string, string>);
    expect(res.status).toBe(415);
    expect(JSON.parse(res.text)).toEqual({
      error: {
        message: 'Unsupported Content-Type; send application/json',
        type: 'invalid_request_error',
        code: 'unsupported_media_type',
        param: null,
      },
    });
    expect(h.served).toHaveLength(0);
  });

  it('hands a request with no content type and no body to the pipeline with the body absent', async () => {
    const h = await start();
    const res = await fetch(`${h.url}/v1/chat/completions`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(h.served[0]).toMatchObject({ body: undefined, rawBody: undefined });
  });

  it('answers 503 and closes the connection once the server is draining', async () => {
    const h = await start();
    h.open.value = false;
    const res = await post(h.url, '/v1/chat/completions', '{}');
    expect(res.status).toBe(503);
    expect(res.headers.get('connection')).toBe('close');
    expect(JSON.parse(res.text)).toMatchObject({
      error: { message: 'The proxy is shutting down; send the request again', code: 'service_unavailable' },
    });
    expect(h.served).toHaveLength(0);
  });
});

describe('chat lane: what it answers itself', () => {
  it('refuses a body over the limit with 413 and closes the connection', async () => {
    const h = await start();
    const res = await post(h.url, '/v1/chat/completions', JSON.stringify({ pad: 'x'.repeat(200) }));
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expect(JSON.parse(res.text)).toEqual({
      error: {
        message: 'Request body is too large',
        type: 'invalid_request_error',
        code: 'request_too_large',
        param: null,
      },
    });
    expect(h.served).toHaveLength(0);
  });

  it('refuses a chunked body that grows over the limit', async () => {
    const h = await start();
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${h.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('{"pad":"' + 'x'.repeat(80));
      req.write('x'.repeat(80) + '"}');
      req.end();
    });
    expect(status).toBe(413);
  });

  it('answers invalid and empty JSON with 400 in the envelope, quoting nothing of the body', async () => {
    const h = await start();
    const bad = await post(h.url, '/v1/chat/completions', '{"secret-ish": ');
    expect(bad.status).toBe(400);
    expect(bad.text).not.toContain('secret-ish');
    expect((await post(h.url, '/v1/chat/completions', '')).status).toBe(400);
  });

  it('runs the auth check first: a refusal is rendered and answered before the body is read', async () => {
    const refusing: AuthCheck = {
      decide: async () => ({ status: 401, kind: 'invalid' }),
      hasAdminKey: () => false,
    };
    const h = await start({ auth: refusing });
    const res = await post(h.url, '/v1/chat/completions', '{"model":"m"}');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      'Bearer realm="llm-interactive-proxy", error="invalid_token"',
    );
    expect(JSON.parse(res.text)).toEqual({
      error: {
        message:
          'Invalid API key: use the proxy API key, not a provider key. Send it as "Authorization: Bearer <key>" (or in the x-api-key or x-goog-api-key header).',
        type: 'invalid_request_error',
        code: 'invalid_api_key',
        param: null,
      },
    });
    expect(h.served).toHaveLength(0);
    await expect.poll(() => h.access.length).toBe(1);
    expect(h.access[0]).toMatchObject({ status: 401, route: '/v1/chat/completions', keyName: null });
  });

  it('passes the key name on, and records one access entry per request', async () => {
    const passing: AuthCheck = {
      decide: () => ({ keyName: 'team-a', role: 'client', expiresAtMs: null, hashed: false }),
      hasAdminKey: () => false,
    };
    const h = await start({ auth: passing });
    await post(h.url, '/v1/chat/completions', '{"model":"m"}');
    expect(h.served[0]?.authKeyName).toBe('team-a');
    await expect.poll(() => h.access.length).toBe(1);
    expect(h.access[0]).toMatchObject({
      status: 200,
      keyName: 'team-a',
      method: 'POST',
      client: '127.0.0.1',
    });
  });

  it('resolves the client address through a trusted proxy', async () => {
    const h = await start({ trustProxy: compileTrustProxy(['127.0.0.1']) });
    await post(h.url, '/v1/chat/completions', '{}', {
      'content-type': 'application/json',
      'x-forwarded-for': '203.0.113.5',
    });
    expect(h.served[0]?.ip).toBe('203.0.113.5');
  });

  it('records a client that leaves mid-body as 499, without calling the pipeline', async () => {
    let taken = 0;
    const h = await start({ isOpen: () => ++taken > 0 });
    await new Promise<void>((resolve) => {
      const req = http.request(`${h.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': '90' },
      });
      req.on('error', () => resolve());
      req.write('{"model":');
      // Leave once the lane has taken the request (it asks isOpen() just before).
      void expect
        .poll(() => taken)
        .toBe(1)
        .then(() => req.destroy());
      req.on('close', () => resolve());
    });
    await expect.poll(() => h.access.length).toBe(1);
    expect(h.access[0]?.status).toBe(499);
    expect(h.served).toHaveLength(0);
  });
});
