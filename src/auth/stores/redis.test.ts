import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../../test/helpers/redis-server.js';
import { RedisBruteForceStore, describeRedisUrl, type RedisStoreOptions } from './redis.js';
import { DEFAULT_BRUTE_FORCE_POLICY } from '../brute-force-policy.js';

const policy = DEFAULT_BRUTE_FORCE_POLICY;
const T0 = 1_700_000_000_000;

let redis: RedisServer;
let inspector: Redis;
const stores: RedisBruteForceStore[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  inspector = new Redis(redis.url, { lazyConnect: true });
  await inspector.connect();
});
afterEach(async () => {
  redis.resume();
  await Promise.all(stores.splice(0).map((store) => store.close()));
});
afterAll(async () => {
  inspector.disconnect();
  await redis.stop();
});

/** `count` stores on one Redis and one key prefix: replicas of one deployment. */
function replicas(count: number, options: Partial<RedisStoreOptions> = {}): RedisBruteForceStore[] {
  const keyPrefix = `t:${randomUUID()}:{bf}:`;
  return Array.from({ length: count }, () => {
    const store = new RedisBruteForceStore({ url: redis.url, policy, keyPrefix, ...options });
    stores.push(store);
    return store;
  });
}

async function waitUntilAnswers(store: RedisBruteForceStore): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      await store.ping();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  throw new Error('Redis store did not reconnect');
}

describe('RedisBruteForceStore', () => {
  it('shares counts and blocks between replicas', async () => {
    const [a, b] = replicas(2) as [RedisBruteForceStore, RedisBruteForceStore];
    for (let i = 0; i < 3; i++) await a.recordFailure('198.51.100.7', T0);
    expect(await b.recordFailure('198.51.100.7', T0)).toEqual({ failures: 4 });
    expect(await a.recordFailure('198.51.100.7', T0 + 1)).toEqual({ failures: 5, blockedForSeconds: 30 });
    expect(await b.check('198.51.100.7', T0 + 1)).toEqual({ blocked: true, retryAfterSeconds: 30 });
    expect(await b.list(T0 + 1)).toEqual([
      {
        address: '198.51.100.7',
        failures: 5,
        blocked: true,
        blockSecondsLeft: 30,
        secondsSinceLastFailure: 0,
      },
    ]);
    expect(await b.unblock('198.51.100.7')).toBe(true);
    expect(await a.check('198.51.100.7', T0 + 1)).toEqual({ blocked: false, tracked: false });
  });

  it('applies concurrent failures from several replicas atomically: one count each, one block', async () => {
    const group = replicas(3);
    const outcomes = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        (group[i % 3] as RedisBruteForceStore).recordFailure('192.0.2.1', T0),
      ),
    );
    expect(outcomes.map((o) => o.failures).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 60 }, (_, i) => i + 1),
    );
    expect(outcomes.filter((o) => o.blockedForSeconds !== undefined)).toEqual([
      { failures: 5, blockedForSeconds: 30 },
    ]);
  });

  it('lets Redis expire a record a window after its last activity', async () => {
    const keyPrefix = `t:${randomUUID()}:{bf}:`;
    const [store] = replicas(1, { keyPrefix });
    const now = Date.now();
    await store?.recordFailure('192.0.2.2', now);
    const unblockedTtl = await inspector.pttl(`${keyPrefix}c:192.0.2.2`);
    expect(unblockedTtl).toBeGreaterThan(0);
    expect(unblockedTtl).toBeLessThanOrEqual(900_001);
    for (let i = 0; i < 4; i++) await store?.recordFailure('192.0.2.2', now);
    // Blocked for 30 s: forgotten a window after the block ends.
    const blockedTtl = await inspector.pttl(`${keyPrefix}c:192.0.2.2`);
    expect(blockedTtl).toBeGreaterThan(900_001);
    expect(blockedTtl).toBeLessThanOrEqual(930_001);
    await store?.recordSuccess('192.0.2.2');
    expect(await inspector.exists(`${keyPrefix}c:192.0.2.2`)).toBe(0);
  });

  it('counts a record Redis has expired as gone, also in the size and the bound', async () => {
    const keyPrefix = `t:${randomUUID()}:{bf}:`;
    const [store] = replicas(1, { keyPrefix, policy: { ...policy, maxTrackedClients: 2 } });
    await store?.recordFailure('192.0.2.3', T0);
    await store?.recordFailure('192.0.2.4', T0);
    await inspector.del(`${keyPrefix}c:192.0.2.3`); // what expiry does
    expect(await store?.size()).toBe(1);
    await store?.recordFailure('192.0.2.5', T0);
    expect(await store?.check('192.0.2.4', T0)).toEqual({ blocked: false, tracked: true });
    expect(await store?.size()).toBe(2);
  });

  it('lists every tracked client in pages of 500, blocked first', async () => {
    // 1,900 scripts sent at once: more than the 250 ms command timeout allows on a busy machine.
    const [store] = replicas(1, { policy: { ...policy, maxFailedAttempts: 2 }, commandTimeoutMs: 20_000 });
    const address = (i: number) => `10.1.${i >> 8}.${i & 255}`;
    // 700 clients blocked (two failures) and 501 only tracked (one): two pages of each kind.
    const clients = Array.from({ length: 1201 }, (_, i) => address(i));
    await Promise.all(clients.map((client) => store?.recordFailure(client, T0)));
    await Promise.all(clients.slice(0, 700).map((client) => store?.recordFailure(client, T0)));
    // ioredis sends EVALSHA, and EVAL the first time a script is not cached yet.
    const scriptCalls = async () => {
      const stats = await inspector.info('commandstats');
      return [...stats.matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
    };
    // Once first, so that Redis holds the script: a call that loads it counts twice (EVALSHA, then EVAL).
    await store?.list(T0);
    const before = await scriptCalls();
    const listed = (await store?.list(T0)) ?? [];
    // One bounded script call per page (500 + 200 blocked, 500 + 1 tracked), never one over everything.
    expect((await scriptCalls()) - before).toBe(4);
    expect(listed).toHaveLength(1201);
    expect(listed.slice(0, 700).every((client) => client.blocked)).toBe(true);
    expect(listed.slice(700).some((client) => client.blocked)).toBe(false);
    expect(new Set(listed.map((client) => client.address))).toEqual(new Set(clients));
  });

  it('survives a script cache flush (a restarted Redis)', async () => {
    const [store] = replicas(1);
    await store?.recordFailure('192.0.2.6', T0);
    await inspector.script('FLUSH');
    expect(await store?.recordFailure('192.0.2.6', T0)).toEqual({ failures: 2 });
  });

  it('fails fast while Redis is down and reconnects when it returns', async () => {
    const [store] = replicas(1) as [RedisBruteForceStore];
    await store.recordFailure('192.0.2.7', T0);
    await redis.stop();
    try {
      await expect(store.check('192.0.2.7', T0)).rejects.toThrow();
      await expect(store.recordFailure('192.0.2.7', T0)).rejects.toThrow();
    } finally {
      await redis.restart();
      await inspector.connect().catch(() => undefined);
    }
    await waitUntilAnswers(store);
    // An empty Redis (nothing persisted): the store works again from scratch.
    expect(await store.recordFailure('192.0.2.7', T0)).toEqual({ failures: 1 });
  });

  it('gives up on a stalled Redis after its command timeout instead of waiting', async () => {
    const [store] = replicas(1, { commandTimeoutMs: 100 }) as [RedisBruteForceStore];
    await store.ping();
    redis.pause();
    try {
      await expect(store.check('192.0.2.8', T0)).rejects.toThrow(/timed out/i);
    } finally {
      redis.resume();
    }
    await waitUntilAnswers(store);
  });

  it('tells its observer each record a reply shows, with no extra command', async () => {
    const [store] = replicas(1) as [RedisBruteForceStore];
    const seen: Array<[string, unknown]> = [];
    store.observe({
      held: (clientKey, record) => seen.push([clientKey, record]),
      gone: (clientKey) => seen.push([clientKey, null]),
    });
    for (let i = 0; i < 5; i++) await store.attempt('192.0.2.9', T0, false);
    await store.attempt('192.0.2.9', T0 + 1, true);
    await store.attempt('192.0.2.10', T0, true);
    const blockedRecord = {
      failures: 5,
      lastFailureMs: T0,
      blockedUntilMs: T0 + 30_000,
      lastBlockSeconds: 30,
    };
    expect(seen).toEqual([
      ['192.0.2.9', { failures: 1, lastFailureMs: T0, blockedUntilMs: 0, lastBlockSeconds: 0 }],
      ['192.0.2.9', { failures: 2, lastFailureMs: T0, blockedUntilMs: 0, lastBlockSeconds: 0 }],
      ['192.0.2.9', { failures: 3, lastFailureMs: T0, blockedUntilMs: 0, lastBlockSeconds: 0 }],
      ['192.0.2.9', { failures: 4, lastFailureMs: T0, blockedUntilMs: 0, lastBlockSeconds: 0 }],
      ['192.0.2.9', blockedRecord],
      ['192.0.2.9', blockedRecord],
      ['192.0.2.10', null],
    ]);
    seen.length = 0;
    await store.unblock('192.0.2.9');
    expect(seen).toEqual([['192.0.2.9', null]]);
  });

  it('merges records field by field: a block is never shortened, a count never lowered', async () => {
    const [store, other] = replicas(2) as [RedisBruteForceStore, RedisBruteForceStore];
    // Redis holds a 60 s block of .11 and three failures of .12; the merged records hold four clients.
    for (let i = 0; i < 5; i++) await other.recordFailure('192.0.2.11', T0);
    await other.recordFailure('192.0.2.11', T0 + 30_000);
    for (let i = 0; i < 3; i++) await other.recordFailure('192.0.2.12', T0);
    const merged: Array<[string, unknown]> = [];
    store.observe({ held: (clientKey, record) => merged.push([clientKey, record]), gone: () => undefined });
    const now = T0 + 31_000;
    await store.merge(
      [
        [
          '192.0.2.11',
          { failures: 5, lastFailureMs: T0 + 31_000, blockedUntilMs: T0 + 61_000, lastBlockSeconds: 30 },
        ],
        [
          '192.0.2.12',
          { failures: 5, lastFailureMs: T0 + 31_000, blockedUntilMs: T0 + 61_000, lastBlockSeconds: 30 },
        ],
        ['192.0.2.13', { failures: 2, lastFailureMs: T0 + 31_000, blockedUntilMs: 0, lastBlockSeconds: 0 }],
        // Forgotten long ago: left out.
        [
          '192.0.2.14',
          { failures: 9, lastFailureMs: T0 - 3_600_000, blockedUntilMs: 0, lastBlockSeconds: 0 },
        ],
      ],
      now,
    );
    expect(merged.map(([clientKey]) => clientKey)).toEqual(['192.0.2.11', '192.0.2.12', '192.0.2.13']);
    expect(await other.check('192.0.2.11', now)).toEqual({ blocked: true, retryAfterSeconds: 59 });
    expect(await other.check('192.0.2.12', now)).toEqual({ blocked: true, retryAfterSeconds: 30 });
    expect(await other.attempt('192.0.2.13', now, false)).toEqual({ blocked: false, failures: 3 });
    expect(await other.check('192.0.2.14', now)).toEqual({ blocked: false, tracked: false });
    const listed = await other.list(now);
    expect(listed.find((client) => client.address === '192.0.2.11')).toMatchObject({ failures: 6 });
    expect(listed.find((client) => client.address === '192.0.2.12')).toMatchObject({ failures: 5 });
    // The merged blocks escalate as any: the next failure after .12's block blocks for 60 s.
    expect(await other.attempt('192.0.2.12', T0 + 62_000, false)).toEqual({
      blocked: false,
      failures: 6,
      blockedForSeconds: 60,
    });
  });

  it('hides credentials when it describes its URL', () => {
    expect(describeRedisUrl('redis://:s3cret@cache.internal:6380/2')).toBe(
      'redis://:****@cache.internal:6380/2',
    );
    expect(describeRedisUrl('rediss://user:s3cret@cache/0')).not.toContain('s3cret');
    expect(describeRedisUrl('redis://127.0.0.1:6379/0')).toBe('redis://127.0.0.1:6379/0');
  });
});
