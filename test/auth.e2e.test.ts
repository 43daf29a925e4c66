import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import OpenAI, { APIConnectionError, AuthenticationError } from 'openai';
import { Pool } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from './helpers/http.js';
import { runCli, startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { rawExchange } from './reliability/support.js';

const KEY = 'your-secret-proxy-key-for-tests';
const ADMIN_KEY = 'admin-key-for-tests-0123456789';
const CHAT = {
  model: 'gpt-4',
  messages: [{ role: 'user', content: 'Hello!' }],
};

function post(url: string, headers: Record<string, string> = {}, body: unknown = CHAT) {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

describe('startup rules', () => {
  it('refuses to start without a key: exit 1, "API key not configured", no stack trace', async () => {
    const { code, stderr, stdout } = await runCli(['--port', '0']);
    expect(code).toBe(1);
    expect(stderr).toContain('API key not configured');
    expect(stderr).toContain('LLM_INTERACTIVE_PROXY_API_KEY');
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stdout).toBe('');
  });

  it('refuses to run unauthenticated on a non-loopback host unless --allow-unauthenticated-remote', async () => {
    const refused = await runCli(['--port', '0', '--disable-auth', '--host', '0.0.0.0']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--allow-unauthenticated-remote');
    const allowed = await startProxyProcess([
      '--disable-auth',
      '--host',
      '0.0.0.0',
      '--allow-unauthenticated-remote',
    ]);
    await allowed.stop();
  });

  it('keygen prints a random key and its sha256 form', async () => {
    const { code, stdout } = await runCli(['keygen']);
    expect(code).toBe(0);
    const key = stdout.split('\n')[0] ?? '';
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(stdout).toContain(`sha256: ${createHash('sha256').update(key).digest('hex')}`);
  });
});

describe('authentication disabled for development', () => {
  let proxy: ProxyProcess | undefined;
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });

  const cases: Array<[string, string[], Record<string, string>, string?]> = [
    ['--disable-auth', ['--disable-auth'], {}],
    ['DISABLE_AUTH=true', [], { DISABLE_AUTH: 'true' }],
    ['auth.disable_auth: true', [], {}, 'auth:\n  disable_auth: true\n'],
  ];
  for (const [label, args, env, yaml] of cases) {
    it(`${label}: clients connect without an Authorization header, with a startup warning`, async () => {
      const extra = [...args];
      if (yaml) {
        const dir = mkdtempSync(join(tmpdir(), 'lip-'));
        writeFileSync(join(dir, 'config.yaml'), yaml);
        extra.push('--config', join(dir, 'config.yaml'));
      }
      proxy = await startProxyProcess(extra, env);
      expect(proxy.stdout()).toContain('Authentication is DISABLED');
      const res = await post(proxy.url);
      expect(res.status).toBe(200);
    });
  }

  it('--enable... a CLI flag beats the environment: DISABLE_AUTH=false with --disable-auth disables', async () => {
    proxy = await startProxyProcess(['--disable-auth'], { DISABLE_AUTH: 'false' });
    expect((await post(proxy.url)).status).toBe(200);
  });
});

describe('authentication enabled (the default)', () => {
  let proxy: ProxyProcess;
  let dir: string;
  const second = 'second-team-key-abcdefgh';
  const hashed = 'hashed-yaml-key-ijklmnop';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lip-auth-'));
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      [
        'auth:',
        '  api_keys:',
        `    - name: ci-bot`,
        `      sha256: ${createHash('sha256').update(hashed).digest('hex')}`,
        '  brute_force_protection:',
        '    enabled: true',
        '    max_failed_attempts: 5',
        '    ttl_seconds: 900',
      ].join('\n'),
    );
    proxy = await startProxyProcess(['--config', config, '--log-file', join(dir, 'proxy.log')], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      API_KEYS: second,
    });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('accepts the key as a Bearer token (the seed curl example) and logs the key name, never the key', async () => {
    const res = await post(proxy.url, { Authorization: `Bearer ${KEY}` });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
    expect(body.choices[0]?.message.content).toBe('Hello!');
    expect((await post(proxy.url, { authorization: `bearer ${second}` })).status).toBe(200);
    expect((await post(proxy.url, { authorization: `BEARER ${hashed}` })).status).toBe(200);
    // Access lines are written asynchronously: poll for them instead of sleeping.
    await expect.poll(() => proxy.stdout()).toContain('"key_name":"env"');
    await expect.poll(() => proxy.stdout()).toContain('"key_name":"API_KEYS[0]"');
    await expect.poll(() => proxy.stdout()).toContain('"key_name":"ci-bot"');
    const out = proxy.stdout();
    expect(out).not.toContain(KEY);
    expect(out).not.toContain(second);
  });

  it('works with the OpenAI JavaScript SDK exactly as the seed shows', async () => {
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY });
    const response = await client.chat.completions.create({
      model: 'gpt-4',
      messages: [{ role: 'user', content: 'Hello!' }],
    });
    expect(response.choices[0]?.message.content).toBe('Hello!');
  });

  it('accepts x-api-key, x-goog-api-key and ?key=', async () => {
    expect((await post(proxy.url, { 'x-api-key': KEY })).status).toBe(200);
    expect((await post(proxy.url, { 'x-goog-api-key': KEY })).status).toBe(200);
    const viaQuery = await fetch(`${proxy.url}/v1/models?key=${KEY}`);
    expect(viaQuery.status).toBe(200);
  });

  it('answers 401 with WWW-Authenticate for a missing key, without counting public endpoints', async () => {
    const res = await post(proxy.url, {}, CHAT);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="llm-interactive-proxy"');
    const body = (await res.json()) as { error: { message: string; code: string; type: string } };
    expect(body.error.code).toBe('invalid_api_key');
    expect(body.error.message).toMatch(/Missing API key/);
    expect(body.error.message).toContain('Authorization: Bearer');
    for (const path of ['/health', '/docs', '/openapi.json']) {
      expect((await fetch(`${proxy.url}${path}`)).status).toBe(200);
    }
  });

  it('cannot reach a protected route through path tricks on the bypass list', async () => {
    for (const path of [
      '/docs/../v1/models',
      '/health/..%2Fv1/models',
      '//health',
      '/docs/%2e%2e/v1/models',
      '/%68ealth',
    ]) {
      const res = await rawRequest(proxy.url, path);
      // 429 once the tricks themselves have used up the address's failed attempts: still no way in.
      expect([401, 404, 429], `${path} answered ${res.status}`).toContain(res.status);
      expect(res.body).not.toContain('"object":"list"');
    }
  });

  it('answers CORS pre-flights without a key', async () => {
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'http://ui.example', 'access-control-request-method': 'POST' },
    });
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('brute-force protection', () => {
  let proxy: ProxyProcess | undefined;
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });

  it('five bad keys get 401, the sixth request gets 429 with Retry-After — even with a valid key', async () => {
    // A 2 s tarpit: the reconnect below comes well within the quiet time after the 429 is answered.
    proxy = await startProxyProcess(['--auth-blocked-delay', '2000'], { LLM_INTERACTIVE_PROXY_API_KEY: KEY });
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'wrong-key-123456', maxRetries: 0 });
    for (let i = 1; i <= 5; i++) {
      const err = await client.chat.completions.create(CHAT as never).catch((e: unknown) => e);
      expect(err, `attempt ${i}`).toBeInstanceOf(AuthenticationError);
      expect((err as AuthenticationError).headers?.get('www-authenticate')).toContain(
        'error="invalid_token"',
      );
      expect((err as AuthenticationError).message).not.toContain('wrong-key-123456');
    }
    // The sixth request is refused 429 even with the valid key, its key never looked at.
    const withValidKey = await post(proxy.url, { authorization: `Bearer ${KEY}` });
    expect(withValidKey.status).toBe(429);
    expect(withValidKey.headers.get('connection')).toBe('close');
    const retryAfter = Number(withValidKey.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(30);
    const body = (await withValidKey.json()) as {
      error: { message: string; type: string; retry_after: number };
    };
    expect(body.error).toMatchObject({
      message: 'Too many failed authentication attempts. Please try again later.',
      type: 'rate_limit_exceeded',
    });
    expect(body.error.retry_after).toBe(retryAfter);

    // Reconnecting straight away (within the tarpit's 2 s of that answer) is closed at accept: the SDK sees
    // a connection error, and the proxy parsed nothing. The operator's request from this address too.
    const hammering = await client.chat.completions.create(CHAT as never).catch((e: unknown) => e);
    expect(hammering).toBeInstanceOf(APIConnectionError);
    const operator = await fetch(`${proxy.url}/admin/auth/blocks`).catch((e: unknown) => e);
    expect(operator).toBeInstanceOf(TypeError);

    await expect
      .poll(() => proxy?.stdout())
      .toContain('Blocked IP 127.0.0.1 for 30s after 5 failed authentication attempts');
  });

  it('the operator endpoints list and lift a block; /metrics counts failures (settings from env and flags)', async () => {
    proxy = await startProxyProcess(['--trusted-proxy', '127.0.0.1', '--auth-max-failed-attempts', '2'], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
      BRUTE_FORCE_MAX_FAILED_ATTEMPTS: '9',
      BRUTE_FORCE_INITIAL_BLOCK_SECONDS: '45',
    });
    const attacker = { 'x-forwarded-for': '203.0.113.7', authorization: 'Bearer nope-nope-nope' };
    expect((await post(proxy.url, attacker)).status).toBe(401);
    expect((await post(proxy.url, attacker)).status).toBe(401);
    const third = await post(proxy.url, attacker);
    expect(third.status).toBe(429);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(30);

    const operator = { authorization: `Bearer ${ADMIN_KEY}` };
    const list = (await (await fetch(`${proxy.url}/admin/auth/blocks`, { headers: operator })).json()) as {
      blocked: Array<{ address: string }>;
    };
    expect(list.blocked.map((b) => b.address)).toContain('203.0.113.7');
    const lifted = await fetch(`${proxy.url}/admin/auth/blocks/203.0.113.7`, {
      method: 'DELETE',
      headers: operator,
    });
    expect(lifted.status).toBe(200);
    expect(
      (await post(proxy.url, { 'x-forwarded-for': '203.0.113.7', authorization: `Bearer ${KEY}` })).status,
    ).toBe(200);

    const metrics = await (await fetch(`${proxy.url}/metrics`, { headers: operator })).text();
    expect(metrics).toMatch(/llm_proxy_auth_failures_total\{reason="invalid"\} 2/);
    expect(metrics).toMatch(/llm_proxy_auth_blocks_started_total 1/);
    expect(metrics).toMatch(/llm_proxy_auth_blocked_requests_total 1/);
    expect((await fetch(`${proxy.url}/metrics`)).status).toBe(401);
    expect(
      (await fetch(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).status,
    ).toBe(403);
  });

  it('/metrics counts a refused request under its route; unmatched only a path no route serves', async () => {
    proxy = await startProxyProcess(['--trusted-proxy', '127.0.0.1', '--auth-max-failed-attempts', '2'], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
    });
    const url = proxy.url;
    const from = (address: string, key: string) => ({
      'x-forwarded-for': address,
      authorization: `Bearer ${key}`,
    });
    const bad = 'nope-nope-nope-nope';
    // A chat route (the chat lane): refused for its keys, then blocked.
    expect((await post(url, from('203.0.113.9', bad))).status).toBe(401);
    expect((await post(url, from('203.0.113.9', bad))).status).toBe(401);
    expect((await post(url, from('203.0.113.9', KEY))).status).toBe(429);
    // A Fastify route, and a chat route's path asked with a method it does not take.
    const get = (path: string, headers: Record<string, string>) =>
      fetch(`${url}${path}`, { headers }).then((r) => r.status);
    expect(await get('/v1/chat/completions', from('203.0.113.10', bad))).toBe(401);
    expect(await get('/v1/models', from('203.0.113.10', bad))).toBe(401);
    expect(await get('/v1/models', from('203.0.113.10', KEY))).toBe(429);
    // With a valid key: a path a route serves with another method, and one no route serves.
    const stored = await fetch(`${url}/v1/responses/resp_label_probe`, {
      method: 'POST',
      headers: { ...from('203.0.113.11', KEY), 'content-type': 'application/json' },
      body: '{}',
    });
    expect(stored.status).toBe(404);
    expect(await get('/v1/no-such-route/made-up-path-xyz', from('203.0.113.11', KEY))).toBe(404);

    const metrics = await (
      await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
    ).text();
    expect(
      metrics
        .split('\n')
        .filter((l) => l.startsWith('llm_proxy_requests_total{'))
        .sort(),
    ).toEqual([
      'llm_proxy_requests_total{route="/v1/chat/completions",backend="",status="401"} 3',
      'llm_proxy_requests_total{route="/v1/chat/completions",backend="",status="429"} 1',
      'llm_proxy_requests_total{route="/v1/models",backend="",status="401"} 1',
      'llm_proxy_requests_total{route="/v1/models",backend="",status="429"} 1',
      'llm_proxy_requests_total{route="/v1/responses/:id",backend="",status="404"} 1',
      'llm_proxy_requests_total{route="unmatched",backend="",status="404"} 1',
    ]);
    expect(metrics).not.toContain('made-up-path-xyz');
    expect(metrics).not.toContain('resp_label_probe');
  });

  it('ignores a spoofed X-Forwarded-For from an untrusted peer', async () => {
    proxy = await startProxyProcess([], { LLM_INTERACTIVE_PROXY_API_KEY: KEY });
    for (let i = 0; i < 5; i++) {
      expect(
        (await post(proxy.url, { 'x-forwarded-for': `198.51.100.${i}`, authorization: 'Bearer bad' })).status,
      ).toBe(401);
    }
    expect(
      (await post(proxy.url, { 'x-forwarded-for': '198.51.100.99', authorization: 'Bearer bad' })).status,
    ).toBe(429);
  });

  describe('one client however a trusted proxy spells its address', () => {
    /** Through both doors: the chat lane (POST chat) and Fastify (GET models). */
    const attempt = async (url: string, i: number, headers: Record<string, string>) => {
      const all = { authorization: 'Bearer wrong-wrong-wrong', ...headers };
      if (i % 2 === 0) return (await post(url, all)).status;
      return (await fetch(`${url}/v1/models`, { headers: all })).status;
    };

    it.each<[string, string, Array<Record<string, string>>, Record<string, string>]>([
      [
        'IPv4',
        '203.0.113.7',
        [
          { 'x-forwarded-for': '203.0.113.7:4711' },
          { 'x-forwarded-for': '198.51.100.1, ::ffff:203.0.113.7' },
          { forwarded: 'for="203.0.113.7:80";proto=https' },
          { 'x-forwarded-for': '[::ffff:cb00:7107]:443' },
          { forwarded: 'for=198.51.100.1, For="[::FFFF:203.0.113.7]"' },
        ],
        { 'x-forwarded-for': '0:0:0:0:0:ffff:203.0.113.7' },
      ],
      [
        'IPv6',
        '2001:db8:7::/64',
        [
          { 'x-forwarded-for': '[2001:db8:7::1]:4711' },
          { 'x-forwarded-for': '2001:DB8:7:0:0:0:0:1' },
          { forwarded: 'for="[2001:db8:7::1]:80"' },
          { 'x-forwarded-for': '[2001:0db8:0007:0000:0000:0000:0000:0001]' },
          { forwarded: 'for="[2001:db8:7::1]"' },
        ],
        { forwarded: 'for="[2001:db8:7:0::1]:1"' },
      ],
    ])(
      '%s: five spellings are five failures of one address, the sixth is 429 — the proxy itself is not blocked',
      async (_family, blockedKey, spellings, sixth) => {
        proxy = await startProxyProcess(['--trusted-proxy', '127.0.0.1', '--auth-blocked-delay', '0'], {
          LLM_INTERACTIVE_PROXY_API_KEY: KEY,
          LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
        });
        for (const [i, headers] of spellings.entries()) {
          expect(await attempt(proxy.url, i, headers), JSON.stringify(headers)).toBe(401);
        }
        const valid = { authorization: `Bearer ${KEY}` };
        expect((await post(proxy.url, { ...valid, ...sixth })).status).toBe(429);
        expect((await fetch(`${proxy.url}/v1/models`, { headers: { ...valid, ...sixth } })).status).toBe(429);
        // Another client behind the same proxy, and the proxy's own address, are served.
        expect((await post(proxy.url, { ...valid, 'x-forwarded-for': '198.51.100.1' })).status).toBe(200);
        expect((await post(proxy.url, valid)).status).toBe(200);

        const operator = { authorization: `Bearer ${ADMIN_KEY}` };
        const blocks = (await (
          await fetch(`${proxy.url}/admin/auth/blocks`, { headers: operator })
        ).json()) as {
          blocked: Array<{ address: string }>;
        };
        expect(blocks.blocked.map((b) => b.address)).toEqual([blockedKey]);
      },
    );

    it('a forwarded value that is not an address counts against the proxy, with one warning', async () => {
      proxy = await startProxyProcess(
        ['--trusted-proxy', '127.0.0.1', '--auth-max-failed-attempts', '3', '--auth-blocked-delay', '0'],
        { LLM_INTERACTIVE_PROXY_API_KEY: KEY },
      );
      const unusable: Array<Record<string, string>> = [
        { 'x-forwarded-for': '203.0.113.007' },
        { 'x-forwarded-for': 'garbageé' },
        { forwarded: 'for=_hidden' },
      ];
      for (const [i, headers] of unusable.entries()) expect(await attempt(proxy.url, i, headers)).toBe(401);
      // All three counted against 127.0.0.1, the peer: now it is blocked.
      expect((await post(proxy.url, { authorization: `Bearer ${KEY}` })).status).toBe(429);
      const running = proxy;
      const warnings = () => running.stdout().match(/whose client is not an IP address/g) ?? [];
      await expect.poll(warnings).toHaveLength(2); // once per header name
      expect(proxy.stdout()).toContain('"header":"x-forwarded-for","value":"203.0.113.007"');
    });
  });

  it('a flood of 10,000 addresses via a trusted proxy stays under the tracking cap while a valid client is served', async () => {
    proxy = await startProxyProcess(
      ['--trusted-proxy', '127.0.0.1', '--auth-brute-force-max-tracked', '1000'],
      {
        LLM_INTERACTIVE_PROXY_API_KEY: KEY,
        LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
      },
    );
    const pool = new Pool(proxy.url, { connections: 16 });
    try {
      const statuses = new Map<number, number>();
      const send = async (i: number) => {
        const res = await pool.request({
          path: '/v1/models',
          method: 'GET',
          headers: {
            authorization: 'Bearer flood',
            'x-forwarded-for': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
          },
        });
        await res.body.dump();
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      };
      for (let batch = 0; batch < 10_000; batch += 200) {
        await Promise.all(Array.from({ length: 200 }, (_, j) => send(batch + j)));
        if (batch % 2000 === 0) {
          const ok = await pool.request({
            path: '/v1/models',
            method: 'GET',
            headers: { authorization: `Bearer ${KEY}` },
          });
          await ok.body.dump();
          expect(ok.statusCode).toBe(200);
        }
      }
      expect(statuses.get(401)).toBe(10_000);
      const metrics = await pool.request({
        path: '/metrics',
        method: 'GET',
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
      const text = await metrics.body.text();
      const tracked = Number(/llm_proxy_auth_tracked_clients (\d+)/.exec(text)?.[1]);
      expect(tracked).toBeGreaterThan(0);
      expect(tracked).toBeLessThanOrEqual(1000);
    } finally {
      await pool.close();
    }
  });

  describe('a credential header sent twice', () => {
    const twice = (method: string, path: string, lines: string[]) =>
      Buffer.from(
        `${method} ${path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n` +
          `${lines.map((line) => `${line}\r\n`).join('')}content-length: 2\r\nconnection: close\r\n\r\n{}`,
        'latin1',
      );

    it('is refused with 401 and counted as a failed attempt, on both doors, even with the right key', async () => {
      proxy = await startProxyProcess(['--auth-blocked-delay', '0'], { LLM_INTERACTIVE_PROXY_API_KEY: KEY });
      const url = proxy.url;
      const attempts = [
        twice('POST', '/v1/chat/completions', [
          `Authorization: Bearer ${KEY}`,
          'authorization: Bearer other',
        ]),
        twice('POST', '/v1/chat/completions', [
          `Authorization: Bearer ${KEY}`,
          `Authorization: Bearer ${KEY}`,
        ]),
        twice('GET', '/v1/models', [`authorization: Bearer ${KEY}`, `AUTHORIZATION: Bearer ${KEY}`]),
        twice('POST', '/anthropic/v1/messages', [`x-api-key: ${KEY}`, `X-Api-Key: ${KEY}`]),
        twice('GET', '/v1beta/models', [
          `authorization: Bearer ${KEY}`,
          `x-goog-api-key: ${KEY}`,
          'x-goog-api-key: x',
        ]),
      ];
      for (const bytes of attempts) {
        const { status, raw } = await rawExchange(url, bytes);
        expect(status, String(bytes).split('\r\n').slice(0, 5).join(' | ')).toBe(401);
        expect(raw.toLowerCase()).toContain(
          'www-authenticate: bearer realm="llm-interactive-proxy", error="invalid_request"',
        );
      }
      // Five failures: the address is blocked, even for a request with one good header.
      expect((await post(url, { authorization: `Bearer ${KEY}` })).status).toBe(429);

      await proxy.stop();
      proxy = await startProxyProcess(['--auth-max-failed-attempts', '100'], {
        LLM_INTERACTIVE_PROXY_API_KEY: KEY,
        LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
      });
      const single = twice('GET', '/v1/models', [`Authorization: Bearer ${KEY}`]);
      expect((await rawExchange(proxy.url, single)).status).toBe(200);
      await rawExchange(
        proxy.url,
        twice('GET', '/v1/models', [`Authorization: Bearer ${KEY}`, 'Authorization: x']),
      );
      const metrics = await (
        await fetch(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
      ).text();
      expect(metrics).toMatch(/llm_proxy_auth_failures_total\{reason="invalid"\} 1/);
    });
  });

  it('--trusted-ip skips authentication', async () => {
    proxy = await startProxyProcess(['--trusted-ip', '127.0.0.0/8'], { LLM_INTERACTIVE_PROXY_API_KEY: KEY });
    expect((await post(proxy.url)).status).toBe(200);
  });

  it('--disable-brute-force-protection never blocks', async () => {
    proxy = await startProxyProcess(['--disable-brute-force-protection'], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    });
    for (let i = 0; i < 8; i++)
      expect((await post(proxy.url, { authorization: 'Bearer bad' })).status).toBe(401);
  });
});
