import Fastify, { type FastifyInstance, type InjectOptions, type LightMyRequestResponse } from 'fastify';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BruteForceGuard, bruteForcePolicy, type BruteForcePolicy } from './brute-force.js';
import { BypassMatcher, DEFAULT_BYPASS_PATHS } from './bypass.js';
import { CidrMatcher, compileTrustProxy } from './client-address.js';
import { BLOCKED_MESSAGE } from '../server/auth-answers.js';
import { createAuthGate, installClientAddress, registerAuthDecorations } from '../server/auth-hook.js';
import { createAuthCheck, type AuthFailureReason } from './gate.js';
import { hashKey, KeySet } from './keys.js';
import { MemoryBruteForceStore } from './stores/memory.js';
import { Redactor } from '../redaction/redactor.js';
import type { BruteForceStore } from './stores/types.js';

const KEY = 'proxy-key-0123456789abcdef';
const TEAM_KEY = 'team-key-fedcba9876543210';
const CLIENT = '203.0.113.9';
/** A configured secret that is no proxy key (a provider's): what a client may paste into a path. */
const PROVIDER_KEY = 'opaque-provider-key-Zq7xW2vB9nL4';
const redactor = new Redactor([KEY, TEAM_KEY, PROVIDER_KEY]);
const redact = (text: string): string => redactor.redact(text);

interface LogLine {
  level: 'warn' | 'error';
  obj: object;
  msg: string;
}

interface Harness {
  app: FastifyInstance;
  guard: BruteForceGuard | null;
  logs: LogLine[];
  events: { failures: AuthFailureReason[]; blocks: number; successes: string[] };
  clock: { ms: number };
  keys: { current: KeySet };
  send(options: InjectOptions & { ip?: string }): Promise<LightMyRequestResponse>;
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

function build(
  options: {
    policy?: Partial<BruteForcePolicy>;
    bruteForce?: boolean;
    store?: BruteForceStore;
    trustedIps?: string[];
    trustedProxies?: string[];
    corsOrigins?: string[];
    /** Failure warnings as finished lines (the server's template writer), parsed into `logs`. */
    warnLine?: boolean;
  } = {},
): Harness {
  const clock = { ms: 1_700_000_000_000 };
  const now = () => clock.ms;
  const guard =
    options.bruteForce === false
      ? null
      : new BruteForceGuard({ policy: bruteForcePolicy(options.policy), store: options.store, now });
  const logs: LogLine[] = [];
  const events = { failures: [] as AuthFailureReason[], blocks: 0, successes: [] as string[] };
  const keys = {
    current: new KeySet([
      { name: 'env', key: KEY },
      { name: 'team', sha256: hashKey(TEAM_KEY) },
    ]),
  };

  const app = Fastify();
  installClientAddress(app, compileTrustProxy(options.trustedProxies ?? []));
  apps.push(app);
  registerAuthDecorations(app);
  app.addHook(
    'onRequest',
    createAuthGate({
      getKeys: () => keys.current,
      guard,
      bypass: new BypassMatcher(DEFAULT_BYPASS_PATHS),
      trustedIps: new CidrMatcher(options.trustedIps ?? []),
      isAllowedOrigin: options.corsOrigins
        ? (origin) => options.corsOrigins?.includes(origin) === true
        : undefined,
      log: {
        warn: (obj, msg) => logs.push({ level: 'warn', obj, msg }),
        error: (obj, msg) => logs.push({ level: 'error', obj, msg }),
        ...(options.warnLine
          ? {
              warnLine: (line: string) => {
                const { level, time, msg, ...obj } = JSON.parse(line) as Record<string, unknown>;
                expect([level, typeof time, line.endsWith('}\n')]).toEqual([40, 'number', true]);
                logs.push({ level: 'warn', obj, msg: msg as string });
              },
            }
          : {}),
      },
      events: {
        onFailure: (reason) => events.failures.push(reason),
        onBlock: () => events.blocks++,
        onSuccess: (name) => events.successes.push(name),
      },
      now,
      redact,
    }),
  );
  // Stands in for the security-header / CORS hooks the server adds: they must still run on 401/429.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
  });

  const whoami = async (request: { authKeyName: string | null; ip: string }) => ({
    key: request.authKeyName,
    ip: request.ip,
  });
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/docs', async () => 'docs');
  app.get('/docs/*', async () => 'asset');
  app.get('/openapi.json', async () => ({}));
  app.get('/v1/models', whoami);
  app.post('/v1/chat/completions', whoami);
  app.options('/v1/chat/completions', async (_request, reply) => reply.code(204).send());
  app.post('/anthropic/v1/messages', whoami);
  app.post('/v1beta/*', whoami);

  const send: Harness['send'] = ({ ip = CLIENT, ...rest }) => app.inject({ remoteAddress: ip, ...rest });
  return { app, guard, logs, events, clock, keys, send };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('auth gate: 401 answers', () => {
  it('answers a missing key with 401, a Bearer challenge and the OpenAI envelope', async () => {
    const h = build();
    const response = await h.send({ method: 'POST', url: '/v1/chat/completions', payload: {} });
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="llm-interactive-proxy"');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    const body = response.json();
    expect(body).toEqual({
      error: {
        message: expect.stringContaining('Missing API key.'),
        type: 'invalid_request_error',
        code: 'invalid_api_key',
        param: null,
      },
    });
    expect(body.error.message).toContain('Authorization: Bearer <key>');
  });

  it('answers a wrong key with invalid_token and never echoes it', async () => {
    const h = build();
    const wrong = 'sk-wrong-secret-value-42';
    const response = await h.send({ method: 'GET', url: '/v1/models', headers: bearer(wrong) });
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toBe(
      'Bearer realm="llm-interactive-proxy", error="invalid_token"',
    );
    expect(response.json().error.message).toMatch(/^Invalid API key/);
    expect(response.body).not.toContain(wrong);
    expect(JSON.stringify(h.logs)).not.toContain(wrong);
  });

  it('answers a malformed credential as invalid_request', async () => {
    const h = build();
    const response = await h.send({
      method: 'GET',
      url: '/v1/models',
      headers: { authorization: 'Basic dXNlcg==' },
    });
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toBe(
      'Bearer realm="llm-interactive-proxy", error="invalid_request"',
    );
    expect(response.json().error.message).toMatch(/^Malformed API key credentials/);
    expect(response.body).not.toContain('dXNlcg==');
    expect(h.events.failures).toEqual(['invalid']);
  });

  it('refuses a credential header sent twice, even with the right key both times, and counts it', async () => {
    const h = build({ policy: { maxFailedAttempts: 2 } });
    const twice = { method: 'GET', url: '/v1/models' } as const;
    // light-my-request sends an array as one raw header line per value, as Node's parser reports them.
    const repeated: Array<Record<string, string[]>> = [
      { authorization: [`Bearer ${KEY}`, `Bearer ${KEY}`] },
      { 'x-api-key': [KEY, KEY] },
    ];
    for (const headers of repeated as unknown as Array<Record<string, string>>) {
      const response = await h.send({ ...twice, headers });
      expect(response.statusCode).toBe(401);
      expect(response.headers['www-authenticate']).toBe(
        'Bearer realm="llm-interactive-proxy", error="invalid_request"',
      );
    }
    expect(h.events.failures).toEqual(['invalid', 'invalid']);
    expect(h.logs.map((line) => (line.obj as { credentialSource?: string }).credentialSource)).toContain(
      'x-api-key',
    );
    // Two failures block the address: now even one good header is refused.
    expect((await h.send({ ...twice, headers: bearer(KEY) })).statusCode).toBe(429);
  });

  it('uses the Anthropic envelope on /anthropic paths', async () => {
    const h = build();
    const response = await h.send({ method: 'POST', url: '/anthropic/v1/messages', payload: {} });
    expect(response.statusCode).toBe(401);
    const body = response.json();
    expect(body).toEqual({
      type: 'error',
      error: { type: 'authentication_error', message: expect.any(String) },
    });
    expect(body.error.message).toContain('x-api-key');
  });

  it('uses the Gemini envelope on /v1beta paths', async () => {
    const h = build();
    const response = await h.send({
      method: 'POST',
      url: '/v1beta/models/gemini-2.0-flash:generateContent?key=wrong-query-key',
      payload: {},
    });
    expect(response.statusCode).toBe(401);
    const body = response.json();
    expect(body).toEqual({ error: { code: 401, message: expect.any(String), status: 'UNAUTHENTICATED' } });
    expect(body.error.message).toContain('x-goog-api-key');
    expect(response.body).not.toContain('wrong-query-key');
  });

  it.each([
    ['through the logger', false],
    ['as a finished line', true],
  ])(
    'logs each failure with method, path without query, address and reason — never the key (%s)',
    async (_how, warnLine) => {
      const h = build({ warnLine });
      await h.send({ method: 'GET', url: '/v1/models?key=leaked-query-secret' });
      await h.send({ method: 'GET', url: '/v1/models' });
      expect(h.logs).toEqual([
        {
          level: 'warn',
          obj: {
            method: 'GET',
            path: '/v1/models',
            clientAddress: CLIENT,
            reason: 'invalid',
            credentialSource: 'query',
          },
          msg: 'Authentication failed (invalid API key)',
        },
        {
          level: 'warn',
          obj: {
            method: 'GET',
            path: '/v1/models',
            clientAddress: CLIENT,
            reason: 'missing',
            credentialSource: null,
          },
          msg: 'Authentication failed (missing API key)',
        },
      ]);
      expect(h.events.failures).toEqual(['invalid', 'missing']);
    },
  );

  it.each([
    ['through the logger', false],
    ['as a finished line', true],
  ])('quotes a path cut short with a secret in it redacted before the cut (%s)', async (_how, warnLine) => {
    const h = build({ warnLine });
    // `/v1/models/` and the padding are 240 characters: the cut at 256 falls 16 characters into the key.
    const padding = 'a'.repeat(240 - '/v1/models/'.length);
    await h.send({ method: 'GET', url: `/v1/models/${padding}${PROVIDER_KEY}/more` });
    expect(h.logs).toHaveLength(1);
    const path = (h.logs[0]?.obj as { path: string }).path;
    expect(path).toBe(`/v1/models/${padding}****/more`);
    expect(JSON.stringify(h.logs)).not.toContain(PROVIDER_KEY.slice(0, 8));
    await h.send({ method: 'GET', url: `/v1/models/${padding}${'b'.repeat(20)}${PROVIDER_KEY}` });
    expect((h.logs[1]?.obj as { path: string }).path).toBe(`/v1/models/${padding}${'b'.repeat(16)}…`);
  });
});

describe('auth gate: valid keys', () => {
  it.each([
    ['Authorization: Bearer', { headers: bearer(KEY) }, '/v1/models'],
    ['lower-case bearer', { headers: { authorization: `bearer ${KEY}` } }, '/v1/models'],
    ['x-api-key', { headers: { 'x-api-key': KEY } }, '/v1/models'],
    ['x-goog-api-key', { headers: { 'x-goog-api-key': KEY } }, '/v1/models'],
    ['query key', {}, `/v1/models?key=${KEY}`],
    ['query api_key', {}, `/v1/models?alt=sse&api_key=${KEY}`],
  ])('accepts the key via %s and names it on the request', async (_label, extra, url) => {
    const h = build();
    const response = await h.send({ method: 'GET', url, ...extra });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ key: 'env', ip: CLIENT });
    expect(h.events.successes).toEqual(['env']);
    expect(h.logs).toEqual([]);
  });

  it('accepts a sha256 entry and follows key rotation at once', async () => {
    const h = build();
    const first = await h.send({ method: 'GET', url: '/v1/models', headers: bearer(TEAM_KEY) });
    expect(first.json().key).toBe('team');
    h.keys.current = new KeySet([{ name: 'env', key: KEY }]);
    const second = await h.send({ method: 'GET', url: '/v1/models', headers: bearer(TEAM_KEY) });
    expect(second.statusCode).toBe(401);
  });
});

describe('auth gate: brute-force protection', () => {
  it('answers failures 1–5 with 401, blocks on the 5th and answers the 6th with 429', async () => {
    const h = build();
    const statuses = [];
    for (let i = 0; i < 5; i++) {
      statuses.push(
        (await h.send({ method: 'GET', url: '/v1/models', headers: bearer(`wrong-${i}`) })).statusCode,
      );
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    expect(h.logs.at(-1)).toEqual({
      level: 'warn',
      obj: { method: 'GET', path: '/v1/models', clientAddress: CLIENT, clientKey: CLIENT, blockSeconds: 30 },
      msg: `Blocked IP ${CLIENT} for 30s after 5 failed authentication attempts`,
    });
    expect(h.events.blocks).toBe(1);

    const blocked = await h.send({ method: 'GET', url: '/v1/models', headers: bearer('wrong-6') });
    expect(blocked.statusCode).toBe(429);
    expect(blocked.headers['retry-after']).toBe('30');
    expect(blocked.headers['x-content-type-options']).toBe('nosniff');
    expect(blocked.json()).toEqual({
      error: {
        message: BLOCKED_MESSAGE,
        type: 'rate_limit_exceeded',
        code: 'rate_limit_exceeded',
        param: null,
        retry_after: 30,
      },
    });
    // The 429 is not another failure.
    expect(h.events.failures).toHaveLength(5);
  });

  it('refuses a valid key while blocked, then accepts it and clears the record', async () => {
    const h = build();
    for (let i = 0; i < 5; i++) await h.send({ method: 'GET', url: '/v1/models' });
    h.clock.ms += 12_300;
    const refused = await h.send({ method: 'GET', url: '/v1/models', headers: bearer(KEY) });
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('18');

    h.clock.ms += 17_700;
    const accepted = await h.send({ method: 'GET', url: '/v1/models', headers: bearer(KEY) });
    expect(accepted.statusCode).toBe(200);
    expect(await h.guard?.size()).toBe(0);
  });

  it('uses the protocol envelope for 429 too', async () => {
    const h = build({ policy: { maxFailedAttempts: 1 } });
    await h.send({ method: 'POST', url: '/anthropic/v1/messages', payload: {} });
    const anthropic = await h.send({ method: 'POST', url: '/anthropic/v1/messages', payload: {} });
    expect(anthropic.json()).toEqual({
      type: 'error',
      error: { type: 'rate_limit_error', message: BLOCKED_MESSAGE, retry_after: 30 },
    });
    const gemini = await h.send({ method: 'POST', url: '/v1beta/models/x:generateContent', payload: {} });
    expect(gemini.json()).toEqual({
      error: { code: 429, message: BLOCKED_MESSAGE, status: 'RESOURCE_EXHAUSTED', retry_after: 30 },
    });
  });

  it('still answers 401 (never 429) with brute-force protection disabled', async () => {
    const h = build({ bruteForce: false });
    for (let i = 0; i < 10; i++)
      expect((await h.send({ method: 'GET', url: '/v1/models' })).statusCode).toBe(401);
    expect((await h.send({ method: 'GET', url: '/v1/models', headers: bearer(KEY) })).statusCode).toBe(200);
  });

  it('keeps authenticating when the store fails, logging the error once a minute', async () => {
    const broken = new Error('connect ECONNREFUSED 127.0.0.1:6379');
    const fail = () => Promise.reject(broken);
    const store: BruteForceStore = {
      check: fail,
      attempt: fail,
      recordFailure: fail,
      recordSuccess: fail,
      list: fail,
      unblock: fail,
      size: fail,
    };
    const h = build({ store });
    expect((await h.send({ method: 'GET', url: '/v1/models', headers: bearer(KEY) })).statusCode).toBe(200);
    expect((await h.send({ method: 'GET', url: '/v1/models' })).statusCode).toBe(401);
    expect(h.logs.filter((line) => line.level === 'error')).toHaveLength(1);
    h.clock.ms += 60_000;
    await h.send({ method: 'GET', url: '/v1/models' });
    expect(h.logs.filter((line) => line.level === 'error')).toHaveLength(2);
    expect(h.logs.find((line) => line.level === 'error')?.obj).toEqual({ err: broken.message });
  });
});

describe('auth gate: key-less requests a browser made for another site', () => {
  it('answers cross-site key-less requests 401 without counting them, so no web page can block a user', async () => {
    const h = build();
    for (let i = 0; i < 20; i++) {
      const res = await h.send({
        method: 'GET',
        url: '/v1/models',
        headers: { 'sec-fetch-site': 'cross-site' },
      });
      expect(res.statusCode).toBe(401);
    }
    expect(await h.guard?.size()).toBe(0);
    expect(h.logs.filter((line) => line.msg.startsWith('Authentication failed'))).toHaveLength(20);
    expect(h.logs[0]?.obj).toMatchObject({ reason: 'missing', counted: false });
    const res = await h.send({ method: 'GET', url: '/v1/models', headers: bearer(KEY) });
    expect(res.statusCode).toBe(200);
  });

  it('does not count a key-less request from an Origin outside --cors-origin, counts one from inside', async () => {
    const h = build({ corsOrigins: ['https://chat.example'] });
    for (let i = 0; i < 6; i++) {
      const res = await h.send({
        method: 'GET',
        url: '/v1/models',
        headers: { origin: 'https://evil.example' },
      });
      expect(res.statusCode).toBe(401);
    }
    expect(await h.guard?.size()).toBe(0);
    await h.send({ method: 'GET', url: '/v1/models', headers: { origin: 'https://chat.example' } });
    expect((await h.guard?.list())?.map((client) => client.failures)).toEqual([1]);
  });

  it('still counts a wrong key, whoever sends it, and a same-site key-less request', async () => {
    const h = build({ policy: { maxFailedAttempts: 2 } });
    const crossSiteWrongKey = { 'sec-fetch-site': 'cross-site', ...bearer('wrong') };
    expect((await h.send({ method: 'GET', url: '/v1/models', headers: crossSiteWrongKey })).statusCode).toBe(
      401,
    );
    const sameSite = { 'sec-fetch-site': 'same-origin' };
    expect((await h.send({ method: 'GET', url: '/v1/models', headers: sameSite })).statusCode).toBe(401);
    expect((await h.send({ method: 'GET', url: '/v1/models', headers: bearer(KEY) })).statusCode).toBe(429);
  });
});

describe('auth gate: requests that need no key', () => {
  it.each(['/health', '/docs', '/docs/static/index.css', '/openapi.json'])(
    'lets GET %s through uncounted',
    async (url) => {
      const h = build({ policy: { maxFailedAttempts: 1 } });
      for (let i = 0; i < 3; i++) expect((await h.send({ method: 'GET', url })).statusCode).toBe(200);
      expect(await h.guard?.size()).toBe(0);
      expect(h.events.failures).toEqual([]);
    },
  );

  it.each([
    '/docs/../v1/models',
    '/health/..%2Fv1/models',
    '//health/../v1/models',
    '/docs/%2e%2e/v1/models',
    '/%68ealth',
    '/docs/..%5cv1/models',
  ])('requires a key for %s', async (url) => {
    const h = build();
    const response = await h.send({ method: 'GET', url });
    expect(response.statusCode).toBe(401);
    expect(h.events.failures).toEqual(['missing']);
  });

  it('lets a CORS pre-flight through, but not a bare OPTIONS', async () => {
    const h = build();
    const preflight = await h.send({
      method: 'OPTIONS',
      url: '/v1/chat/completions',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.statusCode).toBe(204);
    const bare = await h.send({ method: 'OPTIONS', url: '/v1/chat/completions' });
    expect(bare.statusCode).toBe(401);
  });

  it('lets trusted addresses through as "trusted-ip", and only those', async () => {
    const h = build({ trustedIps: ['192.0.2.0/24'] });
    const trusted = await h.send({ method: 'GET', url: '/v1/models', ip: '192.0.2.44' });
    expect(trusted.statusCode).toBe(200);
    expect(trusted.json().key).toBe('trusted-ip');
    expect((await h.send({ method: 'GET', url: '/v1/models', ip: '192.0.3.1' })).statusCode).toBe(401);
  });
});

describe('auth gate: client address', () => {
  it('ignores a spoofed X-Forwarded-For from an untrusted peer', async () => {
    const h = build({
      trustedIps: ['192.0.2.0/24'],
      trustedProxies: ['10.0.0.0/8'],
      policy: { maxFailedAttempts: 2 },
    });
    const spoofed = { 'x-forwarded-for': '192.0.2.44' };
    const response = await h.send({ method: 'GET', url: '/v1/models', headers: spoofed });
    expect(response.statusCode).toBe(401);
    expect(h.logs[0]?.obj).toMatchObject({ clientAddress: CLIENT });

    // Rotating the spoofed header does not escape the block either.
    await h.send({ method: 'GET', url: '/v1/models', headers: { 'x-forwarded-for': '198.51.100.1' } });
    const blocked = await h.send({
      method: 'GET',
      url: '/v1/models',
      headers: { 'x-forwarded-for': '198.51.100.2' },
    });
    expect(blocked.statusCode).toBe(429);
  });

  it('believes X-Forwarded-For from a trusted proxy, counting each client separately', async () => {
    const h = build({
      trustedIps: ['192.0.2.0/24'],
      trustedProxies: ['10.0.0.0/8'],
      policy: { maxFailedAttempts: 2 },
    });
    const viaProxy = (client: string) =>
      h.send({ method: 'GET', url: '/v1/models', ip: '10.0.0.1', headers: { 'x-forwarded-for': client } });
    expect((await viaProxy('192.0.2.44')).json().key).toBe('trusted-ip');
    await viaProxy('198.51.100.1');
    await viaProxy('198.51.100.1');
    expect((await viaProxy('198.51.100.1')).statusCode).toBe(429);
    expect((await viaProxy('198.51.100.2')).statusCode).toBe(401);
  });
});

describe('auth gate: property', () => {
  it('never lets a request through without the configured key (arbitrary header values)', async () => {
    const h = build({ bruteForce: false });
    const value = fc.string({ unit: 'grapheme-ascii', maxLength: 40 });
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          { authorization: value, 'x-api-key': value, 'x-goog-api-key': value },
          { requiredKeys: [] },
        ),
        fc.string({ unit: 'grapheme-ascii', maxLength: 30 }),
        async (headers, key) => {
          const response = await h.send({
            method: 'GET',
            url: `/v1/models?key=${encodeURIComponent(key)}`,
            headers,
          });
          expect(response.statusCode).toBe(401);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('tarpit for blocked clients', () => {
  const subject = (ip: string, key: string) => ({
    method: 'POST',
    url: '/v1/chat/completions',
    headers: { authorization: `Bearer ${key}` },
    raw: { rawHeaders: ['authorization', `Bearer ${key}`] },
    ip,
  });

  it("holds a blocked client's 429 for blockedDelayMs; other clients are not held", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    try {
      const check = createAuthCheck({
        getKeys: () => new KeySet([{ name: 'env', key: KEY }]),
        guard: new BruteForceGuard({ policy: bruteForcePolicy({ maxFailedAttempts: 1 }) }),
        bypass: new BypassMatcher(DEFAULT_BYPASS_PATHS),
        trustedIps: new CidrMatcher([]),
        log: { warn: () => undefined },
        redact,
        blockedDelayMs: 1000,
      });
      // The first failure answers at once (401) and blocks the address.
      expect(await check.decide(subject(CLIENT, 'wrong'))).toEqual({ status: 401, kind: 'invalid' });

      let answered: unknown;
      void Promise.resolve(check.decide(subject(CLIENT, KEY))).then((verdict) => (answered = verdict));
      await vi.advanceTimersByTimeAsync(999);
      expect(answered).toBeUndefined();
      // Meanwhile another address is answered without waiting.
      expect(await check.decide(subject('198.51.100.1', KEY))).toEqual({
        keyName: 'env',
        role: 'client',
        expiresAtMs: null,
        hashed: false,
      });
      await vi.advanceTimersByTimeAsync(1);
      expect(answered).toEqual({ status: 429, retryAfterSeconds: 30 });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('auth gate: expired keys', () => {
  const OLD_KEY = 'old-key-0123456789abcdef';
  const expiring = (expiresAtMs: number) =>
    new KeySet([
      { name: 'env', key: KEY },
      { name: 'old', key: OLD_KEY, expiresAtMs },
    ]);
  /** The memory store's records behind the shared-store interface: the gate's asynchronous path. */
  const sharedStore = (): BruteForceStore => {
    const memory = new MemoryBruteForceStore(bruteForcePolicy({ maxFailedAttempts: 2 }));
    return {
      check: (key, now) => memory.check(key, now),
      attempt: (key, now, succeeded) => memory.attempt(key, now, succeeded),
      recordFailure: (key, now) => memory.recordFailure(key, now),
      recordSuccess: (key) => memory.recordSuccess(key),
      list: (now) => memory.list(now),
      unblock: (key) => memory.unblock(key),
      size: () => memory.size(),
    };
  };

  it.each([
    ['the memory store', {}],
    ['a shared store', { store: sharedStore() }],
    ['no brute-force protection', { bruteForce: false }],
  ])('answers 401 "key expired" from the expiry on, never counting it (%s)', async (_label, options) => {
    const h = build({ policy: { maxFailedAttempts: 2 }, ...options });
    h.keys.current = expiring(h.clock.ms + 1000);
    const before = await h.send({ method: 'GET', url: '/v1/models', headers: bearer(OLD_KEY) });
    expect(before.json()).toEqual({ key: 'old', ip: CLIENT });
    h.clock.ms += 1000;
    for (let i = 0; i < 10; i++) {
      const refused = await h.send({ method: 'GET', url: '/v1/models', headers: bearer(OLD_KEY) });
      expect(refused.statusCode).toBe(401);
      expect(refused.headers['www-authenticate']).toBe(
        'Bearer realm="llm-interactive-proxy", error="invalid_token", error_description="key expired"',
      );
      expect(refused.json()).toEqual({
        error: {
          message: 'API key expired: ask the operator of this proxy for a new key.',
          type: 'invalid_request_error',
          code: 'key_expired',
          param: null,
        },
      });
    }
    expect(h.events.failures).toEqual(Array(10).fill('expired'));
    expect(h.events.blocks).toBe(0);
    expect(h.logs[0]).toEqual({
      level: 'warn',
      obj: { method: 'GET', path: '/v1/models', clientAddress: CLIENT, reason: 'expired', keyName: 'old' },
      msg: 'Authentication refused: API key "old" has expired',
    });
    expect((await h.send({ method: 'GET', url: '/v1/models', headers: bearer(KEY) })).statusCode).toBe(200);
  });

  it('does not clear the failures of an address either: guesses around it still block', async () => {
    const h = build({ policy: { maxFailedAttempts: 2 } });
    h.keys.current = expiring(h.clock.ms);
    await h.send({ method: 'GET', url: '/v1/models', headers: bearer('guess-1') });
    await h.send({ method: 'GET', url: '/v1/models', headers: bearer(OLD_KEY) });
    expect((await h.send({ method: 'GET', url: '/v1/models', headers: bearer('guess-2') })).statusCode).toBe(
      401,
    );
    const blocked = await h.send({ method: 'GET', url: '/v1/models', headers: bearer(OLD_KEY) });
    expect(blocked.statusCode).toBe(429);
  });

  it('answers a blocked address 429 for an expired key too, on a shared store', async () => {
    const h = build({ policy: { maxFailedAttempts: 2 }, store: sharedStore() });
    h.keys.current = expiring(h.clock.ms);
    await h.send({ method: 'GET', url: '/v1/models', headers: bearer('guess-1') });
    await h.send({ method: 'GET', url: '/v1/models', headers: bearer('guess-2') });
    const blocked = await h.send({ method: 'GET', url: '/v1/models', headers: bearer(OLD_KEY) });
    expect(blocked.statusCode).toBe(429);
  });
});

describe('auth gate: roles', () => {
  const ADMIN_KEY = 'admin-key-0123456789abcdef';
  const withAdmin = () =>
    new KeySet([
      { name: 'env', key: KEY },
      { name: 'ops', key: ADMIN_KEY, role: 'admin' },
    ]);

  it('grants each key its own role', () => {
    const check = createAuthCheck({
      getKeys: withAdmin,
      guard: null,
      bypass: new BypassMatcher(DEFAULT_BYPASS_PATHS),
      trustedIps: new CidrMatcher(['192.0.2.0/24']),
      log: { warn: () => undefined },
      redact,
    });
    const subject = (ip: string, key?: string) => ({
      method: 'GET',
      url: '/metrics',
      headers: key ? { authorization: `Bearer ${key}` } : {},
      raw: { rawHeaders: key ? ['authorization', `Bearer ${key}`] : [] },
      ip,
    });
    expect(check.decide(subject(CLIENT, ADMIN_KEY))).toEqual({
      keyName: 'ops',
      role: 'admin',
      expiresAtMs: null,
      hashed: false,
    });
    expect(check.decide(subject(CLIENT, KEY))).toEqual({
      keyName: 'env',
      role: 'client',
      expiresAtMs: null,
      hashed: false,
    });
    // A trusted address is a client without a key, and what its key grants with one.
    expect(check.decide(subject('192.0.2.7'))).toEqual({
      keyName: 'trusted-ip',
      role: 'client',
      expiresAtMs: null,
      hashed: false,
    });
    expect(check.decide(subject('192.0.2.7', 'wrong'))).toEqual({
      keyName: 'trusted-ip',
      role: 'client',
      expiresAtMs: null,
      hashed: false,
    });
    expect(check.decide(subject('192.0.2.7', ADMIN_KEY))).toEqual({
      keyName: 'ops',
      role: 'admin',
      expiresAtMs: null,
      hashed: false,
    });
    expect(check.hasAdminKey()).toBe(true);
  });
});
