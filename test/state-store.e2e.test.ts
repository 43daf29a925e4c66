import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startRedisServer, type RedisServer } from './helpers/redis-server.js';

/**
 * The shared state store (README, "Shared state") as a user starts it: `--state-store redis://…` with
 * `PROXY_STATE_SECRET`, against a real redis-server. Brute-force records land under the shared prefix on the
 * one connection; `--brute-force-store` given too is overridden; without the secret the proxy refuses to
 * start, naming it and echoing nothing secret.
 */
const KEY = 'state-e2e-proxy-key-0123456789abc';
/** /internal/health is an operator endpoint: it needs the admin key. */
const ADMIN_KEY = 'state-store-admin-key-0123456789';
const BAD_KEY = 'state-e2e-wrong-key-9876543210zyx';
const SECRET = 'state-e2e-secret-Vq8sL2nX5bT1mK7pR4wZ9cY3';
const CHAT = { model: 'gpt-4', messages: [{ role: 'user', content: 'Hello!' }] };

async function chatStatus(proxy: ProxyProcess, client: string, key: string): Promise<number> {
  const res = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-forwarded-for': client,
      authorization: `Bearer ${key}`,
    },
    body: JSON.stringify(CHAT),
  });
  await res.arrayBuffer();
  return res.status;
}

/** Connections the server has now, the inspector's own excepted. */
async function otherClients(inspector: Redis): Promise<number> {
  const list = (await inspector.client('LIST')) as string;
  return list.trim().split('\n').length - 1;
}

describe('--state-store redis://… with PROXY_STATE_SECRET', () => {
  let state: RedisServer;
  let other: RedisServer;
  let inspector: Redis;
  let otherInspector: Redis;
  let proxy: ProxyProcess;

  beforeAll(async () => {
    [state, other] = await Promise.all([startRedisServer(), startRedisServer()]);
    inspector = new Redis(state.url);
    otherInspector = new Redis(other.url);
    proxy = await startProxyProcess(
      ['--state-store', state.url, '--brute-force-store', other.url, '--trusted-proxy', '127.0.0.1/8'],
      {
        LLM_INTERACTIVE_PROXY_API_KEY: KEY,
        LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
        PROXY_STATE_SECRET: SECRET,
      },
    );
  });

  afterAll(async () => {
    await proxy?.stop();
    inspector?.disconnect();
    otherInspector?.disconnect();
    await Promise.all([state?.stop(), other?.stop()]);
  });

  it('keeps brute-force records in the state store under the shared prefix, on one connection (and a subscription)', async () => {
    const client = '203.0.113.61';
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push(await chatStatus(proxy, client, BAD_KEY));
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    expect(await chatStatus(proxy, '203.0.113.62', KEY)).toBe(200);

    const record = await inspector.hgetall(`llm-interactive-proxy:{brute-force}:c:${client}`);
    expect(record.f).toBe('5');
    const keys = await inspector.keys('*');
    expect(keys.length).toBeGreaterThan(0);
    // Every key under the one prefix: the brute-force records and (settled after the answer, so maybe not yet)
    // the day's usage of the valid request.
    const others = keys.filter((key) => !key.startsWith('llm-interactive-proxy:{brute-force}:'));
    expect(others.every((key) => /^llm-interactive-proxy:\{usage\}:d:\d{4}-\d{2}-\d{2}$/.test(key))).toBe(
      true,
    );
    // One connection for every command, and one subscribed to the sessions' changes (the mirror of which
    // sessions have settings, src/state/idle-entries-redis.ts): pub/sub needs a connection of its own.
    expect(await otherClients(inspector)).toBe(2);
    const list = (await inspector.client('LIST')) as string;
    const subscribed = list.split('\n').filter((line) => / flags=P /.test(line) && / sub=1 /.test(line));
    expect(subscribed).toHaveLength(1);
    // --brute-force-store was given too: --state-store wins, so the other Redis is never even connected to.
    expect(await otherInspector.dbsize()).toBe(0);
    expect(await otherClients(otherInspector)).toBe(0);
  });

  it('reports the state store in /internal/health and warns that --brute-force-store is ignored', async () => {
    const res = await fetch(`${proxy.url}/internal/health`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'x-forwarded-for': '198.51.100.9' },
    });
    expect(res.status).toBe(200);
    const health = (await res.json()) as Record<string, Record<string, unknown>>;
    expect(health.status).toBe('ok');
    expect(health.state).toEqual({ store: 'redis', url: state.url, status: 'ok' });
    expect(health.auth?.brute_force).toMatchObject({ store: 'redis', url: state.url, status: 'ok' });
    expect(proxy.stdout()).toContain(
      '--brute-force-store (BRUTE_FORCE_STORE, auth.brute_force_protection.store) is ignored',
    );
  });

  it('never writes the secret or a key to its output', async () => {
    expect(await proxy.stop()).toBe(0);
    for (const text of [proxy.stdout(), proxy.stderr()]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(KEY);
      expect(text).not.toContain(BAD_KEY);
    }
  });
});

describe('refusing to start', () => {
  const url = 'redis://:redis-pw-Hx82@127.0.0.1:1/0';

  it('without PROXY_STATE_SECRET, with one line naming it and nothing secret', async () => {
    const { code, stdout, stderr, timedOut } = await runCli(['--state-store', url], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    });
    expect({ code, timedOut, stdout }).toEqual({ code: 1, timedOut: false, stdout: '' });
    expect(stderr).toMatch(/^llm-interactive-proxy: PROXY_STATE_SECRET is not set: .*\n$/);
    expect(stderr.split('\n')).toHaveLength(2);
    for (const secret of ['redis-pw-Hx82', KEY]) expect(stderr).not.toContain(secret);
  });

  it('with a secret that is too short, without echoing it', async () => {
    const short = 'short-Qz81-secret';
    const { code, stderr } = await runCli([], {
      STATE_STORE: url,
      PROXY_STATE_SECRET: short,
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^llm-interactive-proxy: PROXY_STATE_SECRET is too short/);
    for (const secret of [short, 'redis-pw-Hx82', KEY]) expect(stderr).not.toContain(secret);
  });

  it('but starts with --brute-force-store alone and no secret, as before', async () => {
    const redis = await startRedisServer();
    try {
      const proxy = await startProxyProcess(['--brute-force-store', redis.url], {
        LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      });
      expect(await proxy.stop()).toBe(0);
    } finally {
      await redis.stop();
    }
  });
});
