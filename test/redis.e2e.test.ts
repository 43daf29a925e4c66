import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { freePort, startRedisServer, type RedisServer } from './helpers/redis-server.js';

/**
 * Several real proxy processes sharing one real redis-server (README, "Several replicas behind a reverse
 * proxy"). The replicas sit behind a trusted reverse proxy (loopback), so each test speaks for its own client
 * address via X-Forwarded-For.
 */
const KEY = 'redis-e2e-proxy-key-0123456789';
const BAD_KEY = 'redis-e2e-wrong-key-9876543210';
const ADMIN_KEY = 'redis-e2e-admin-key-0123456789';
const ADMIN_CLIENT = '198.51.100.250';
const CHAT = { model: 'gpt-4', messages: [{ role: 'user', content: 'Hello!' }] };

function chat(proxy: ProxyProcess, client: string, key: string | null): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-forwarded-for': client };
  if (key !== null) headers.authorization = `Bearer ${key}`;
  return fetch(`${proxy.url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify(CHAT) });
}

async function statusOf(response: Promise<Response>): Promise<number> {
  const res = await response;
  await res.arrayBuffer();
  return res.status;
}

async function getJson(proxy: ProxyProcess, path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${proxy.url}${path}`, {
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'x-forwarded-for': ADMIN_CLIENT },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

async function storeStatus(proxy: ProxyProcess): Promise<unknown> {
  const health = await getJson(proxy, '/internal/health');
  return ((health.auth as Record<string, unknown>).brute_force as Record<string, unknown>).status;
}

async function metricsText(proxy: ProxyProcess): Promise<string> {
  const res = await fetch(`${proxy.url}/metrics`, {
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'x-forwarded-for': ADMIN_CLIENT },
  });
  return res.text();
}

/** Polls until `read` gives `expected`: a store reconnects on its own schedule, not the test's. */
async function eventually<T>(read: () => Promise<T>, expected: T, what: string): Promise<void> {
  await expect.poll(read, { message: what, timeout: 10_000, interval: 50 }).toBe(expected);
}

function logLines(proxy: ProxyProcess): Array<Record<string, unknown>> {
  return proxy
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const storeErrors = (proxy: ProxyProcess) =>
  logLines(proxy).filter((line) => line.level === 50 && /Brute-force store/.test(String(line.msg)));

function startReplica(redisUrl: string): Promise<ProxyProcess> {
  return startProxyProcess(['--brute-force-store', redisUrl, '--trusted-proxy', '127.0.0.1/8'], {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
  });
}

describe('two replicas sharing one redis-server', () => {
  let redis: RedisServer;
  let a: ProxyProcess;
  let b: ProxyProcess;

  beforeAll(async () => {
    redis = await startRedisServer();
    [a, b] = await Promise.all([startReplica(redis.url), startReplica(redis.url)]);
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  it('blocks failures spread over both replicas as if they hit one, on both', async () => {
    const client = '203.0.113.21';
    const statuses = [];
    for (const replica of [a, b, a, b, a]) statuses.push(await statusOf(chat(replica, client, BAD_KEY)));
    expect(statuses).toEqual([401, 401, 401, 401, 401]);

    const sixthOnA = await chat(a, client, BAD_KEY);
    expect(sixthOnA.status).toBe(429);
    expect(Number(sixthOnA.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await sixthOnA.arrayBuffer();
    expect(await statusOf(chat(b, client, BAD_KEY))).toBe(429);
    // The block set through A refuses a valid key on B.
    expect(await statusOf(chat(b, client, KEY))).toBe(429);
    expect(await statusOf(chat(b, '203.0.113.22', KEY))).toBe(200);

    const blocks = await getJson(b, '/admin/auth/blocks');
    expect(blocks.blocked).toEqual([
      expect.objectContaining({ address: client, failures: 5, blocked: true }),
    ]);
    const unblock = await fetch(`${a.url}/admin/auth/blocks/${client}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'x-forwarded-for': ADMIN_CLIENT },
    });
    expect(unblock.status).toBe(200);
    expect(await statusOf(chat(b, client, KEY))).toBe(200);
    expect(await storeStatus(a)).toBe('ok');
  });

  it('keeps authenticating on memory while Redis is stopped, and reports the degraded store', async () => {
    await redis.stop();
    const client = '203.0.113.31';
    expect(await statusOf(chat(a, client, KEY))).toBe(200);
    expect(await statusOf(chat(a, client, BAD_KEY))).toBe(401);
    expect(await statusOf(chat(a, client, null))).toBe(401);
    expect(await storeStatus(a)).toBe('degraded');
    expect(await metricsText(a)).toMatch(/^llm_proxy_auth_store_degraded 1$/m);

    // Brute-force protection still works, per replica: four more failures on A block the client on A.
    for (let i = 0; i < 4; i++) await statusOf(chat(a, client, BAD_KEY));
    expect(await statusOf(chat(a, client, KEY))).toBe(429);
    expect(await statusOf(chat(b, client, KEY))).toBe(200);
    expect(await storeStatus(b)).toBe('degraded');

    // One ERROR (a minute), however many requests failed over; never a key in the logs.
    expect(storeErrors(a)).toHaveLength(1);
    expect(storeErrors(a)[0]?.store).toBe(redis.url);
    for (const replica of [a, b]) {
      expect(replica.stdout()).not.toContain(KEY);
      expect(replica.stdout()).not.toContain(BAD_KEY);
    }
  });

  it('goes back to the shared store when Redis returns', async () => {
    await redis.restart();
    await eventually(() => storeStatus(a), 'ok', 'replica A store status');
    await eventually(() => storeStatus(b), 'ok', 'replica B store status');
    expect(await metricsText(b)).toMatch(/^llm_proxy_auth_store_degraded 0$/m);
    expect(logLines(a).some((line) => /reachable again/.test(String(line.msg)))).toBe(true);

    const client = '203.0.113.41';
    for (const replica of [b, a, b, a, b]) expect(await statusOf(chat(replica, client, BAD_KEY))).toBe(401);
    expect(await statusOf(chat(a, client, KEY))).toBe(429);
    expect(await statusOf(chat(b, client, KEY))).toBe(429);
  });

  it('does not stall requests on a Redis that stops answering', async () => {
    redis.pause();
    try {
      const client = '203.0.113.51';
      expect(await statusOf(chat(a, client, KEY))).toBe(200);
      expect(await statusOf(chat(a, client, BAD_KEY))).toBe(401);
      expect(await storeStatus(a)).toBe('degraded');
    } finally {
      redis.resume();
    }
    await eventually(() => storeStatus(a), 'ok', 'replica A store status after the stall');
  });
});

/**
 * A replica that loses Redis keeps what it saw (README, "When Redis is down or slow"): its memory store is a
 * shadow of every verdict Redis gave it, and what it counts during the outage is written back before it uses
 * Redis again. Redis is paused (SIGSTOP), not timed: every request during the pause is answered from memory.
 */
describe('one replica through a Redis outage', () => {
  let redis: RedisServer;
  let a: ProxyProcess;
  let b: ProxyProcess;

  beforeAll(async () => {
    redis = await startRedisServer();
    [a, b] = await Promise.all([startReplica(redis.url), startReplica(redis.url)]);
  });

  afterAll(async () => {
    redis?.resume();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  async function retryAfter(response: Promise<Response>): Promise<number> {
    const res = await response;
    await res.arrayBuffer();
    expect(res.status).toBe(429);
    return Number(res.headers.get('retry-after'));
  }

  it('keeps a block Redis holds in force during the outage, and after it, on the replica that saw it', async () => {
    const client = '203.0.113.71';
    for (const replica of [b, a, b, a, a]) expect(await statusOf(chat(replica, client, BAD_KEY))).toBe(401);
    const before = await retryAfter(chat(a, client, BAD_KEY));

    redis.pause();
    try {
      const during = await retryAfter(chat(a, client, BAD_KEY));
      expect(during).toBeLessThanOrEqual(before);
      expect(await statusOf(chat(a, client, KEY))).toBe(429);
      expect(await statusOf(chat(a, client, null))).toBe(429);
      expect(await storeStatus(a)).toBe('degraded');
    } finally {
      redis.resume();
    }
    await eventually(() => storeStatus(a), 'ok', 'replica A store status after the outage');
    expect(await statusOf(chat(a, client, BAD_KEY))).toBe(429);
    expect(await statusOf(chat(b, client, KEY))).toBe(429);
    const blocks = await getJson(b, '/admin/auth/blocks');
    expect(blocks.blocked).toContainEqual(
      expect.objectContaining({ address: client, failures: 5, blocked: true }),
    );
  });

  it('carries counts through the outage both ways: five guesses judged in all, the block shared after', async () => {
    const client = '203.0.113.72';
    const judged: number[] = [];
    for (let i = 0; i < 2; i++) judged.push(await statusOf(chat(a, client, BAD_KEY)));
    redis.pause();
    try {
      // Counted on from Redis's two, in memory: the third and fourth.
      for (let i = 0; i < 2; i++) judged.push(await statusOf(chat(a, client, BAD_KEY)));
      expect(await storeStatus(a)).toBe('degraded');
    } finally {
      redis.resume();
    }
    await eventually(() => storeStatus(a), 'ok', 'replica A store status after the outage');
    // Written back: B's guess is the fifth, which blocks, on both replicas.
    judged.push(await statusOf(chat(b, client, BAD_KEY)));
    expect(judged).toEqual([401, 401, 401, 401, 401]);
    expect(await statusOf(chat(a, client, BAD_KEY))).toBe(429);
    expect(await statusOf(chat(b, client, KEY))).toBe(429);
  });

  it('writes a block started during the outage back to Redis, never shortened', async () => {
    const client = '203.0.113.73';
    expect(await statusOf(chat(a, client, BAD_KEY))).toBe(401);
    redis.pause();
    let startedAt: number;
    let during: number;
    try {
      for (let i = 0; i < 4; i++) expect(await statusOf(chat(a, client, BAD_KEY))).toBe(401);
      startedAt = Date.now();
      during = await retryAfter(chat(a, client, KEY));
    } finally {
      redis.resume();
    }
    await eventually(() => storeStatus(a), 'ok', 'replica A store status after the outage');
    const onB = await retryAfter(chat(b, client, BAD_KEY));
    const onA = await retryAfter(chat(a, client, BAD_KEY));
    // What is left is what was left, less the time since (rounded up, so give a second): not a fresh start.
    const elapsedSeconds = Math.ceil((Date.now() - startedAt) / 1000);
    for (const left of [onB, onA]) {
      expect(left).toBeGreaterThanOrEqual(during - elapsedSeconds - 1);
      expect(left).toBeLessThanOrEqual(during);
    }
    const blocks = await getJson(b, '/admin/auth/blocks');
    expect(blocks.blocked).toContainEqual(
      expect.objectContaining({ address: client, failures: 5, blocked: true }),
    );
  });
});

describe('a replica started while Redis is down', () => {
  let proxy: ProxyProcess | undefined;
  let redis: RedisServer | undefined;

  afterAll(async () => {
    await proxy?.stop();
    await redis?.stop();
  });

  it('starts degraded, authenticates, and switches to Redis once it is up', async () => {
    const port = await freePort();
    proxy = await startReplica(`redis://127.0.0.1:${port}/0`);
    expect(await storeStatus(proxy)).toBe('degraded');
    expect(await statusOf(chat(proxy, '203.0.113.61', KEY))).toBe(200);
    expect(await statusOf(chat(proxy, '203.0.113.61', BAD_KEY))).toBe(401);
    expect(storeErrors(proxy)).toHaveLength(1);

    redis = await startRedisServer(port);
    await eventually(() => storeStatus(proxy as ProxyProcess), 'ok', 'store status');
    for (let i = 0; i < 5; i++) await statusOf(chat(proxy, '203.0.113.62', BAD_KEY));
    const blocks = await getJson(proxy, '/admin/auth/blocks');
    expect(blocks.blocked).toEqual([expect.objectContaining({ address: '203.0.113.62', failures: 5 })]);
  });
});
