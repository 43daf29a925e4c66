import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.js';
import { RedisConnection } from './redis-connection.js';
import { createStoredResponses, FallbackStoredResponses } from './responses-factory.js';
import { RedisStoredResponses } from './responses-redis.js';
import { MemoryStoredResponses, type StoredResponses, type StoredResponsesLimits } from './responses.js';
import { openStateStore } from './store.js';

const SECRET = 'responses-test-secret-0123456789abcdefghij';
const LIMITS: StoredResponsesLimits = { maxStored: 100, ttlSeconds: 60 };

let redis: RedisServer;
let inspector: Redis;
const connections: RedisConnection[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  inspector = new Redis(redis.url);
});
afterEach(async () => {
  redis.resume();
  await Promise.all(connections.splice(0).map((connection) => connection.close()));
});
afterAll(async () => {
  inspector.disconnect();
  await redis.stop();
});

/** A manual write-time clock: eviction order must follow write order, not the ids' spelling. */
function clock() {
  const state = { ms: 1_700_000_000_000 };
  return { now: () => (state.ms += 1000), state };
}

/** `count` Redis stores on one server and one prefix, each with its own connection: replicas. */
function redisReplicas(
  count: number,
  limits: StoredResponsesLimits = LIMITS,
  keyPrefix = `t:${randomUUID()}:{responses}:`,
  secret = SECRET,
): RedisStoredResponses[] {
  const { now } = clock();
  return Array.from({ length: count }, () => {
    const connection = new RedisConnection({ url: redis.url });
    connections.push(connection);
    return new RedisStoredResponses({ connection, keyPrefix, limits, secret, now });
  });
}

const KINDS: Array<{ name: string; create(limits: StoredResponsesLimits): StoredResponses }> = [
  { name: 'memory', create: (limits) => new MemoryStoredResponses(limits) },
  { name: 'Redis (real redis-server)', create: (limits) => redisReplicas(1, limits)[0] as StoredResponses },
];

describe.each(KINDS)('StoredResponses contract: $name', (kind) => {
  it('gives an entry back to its owner only', async () => {
    const store = kind.create(LIMITS);
    await store.put('resp_1', 'alice', '{"a":1}');
    expect(await store.get('resp_1', 'alice')).toEqual({ value: '{"a":1}' });
    expect(await store.get('resp_1', 'bob')).toBeUndefined();
    expect(await store.get('resp_2', 'alice')).toBeUndefined();
  });

  it('keeps owner-only entries as null, and empty values as empty', async () => {
    const store = kind.create(LIMITS);
    await store.put('resp_up', 'alice', null);
    await store.put('resp_empty', 'alice', '');
    expect(await store.get('resp_up', 'alice')).toEqual({ value: null });
    expect(await store.get('resp_up', 'bob')).toBeUndefined();
    expect(await store.get('resp_empty', 'alice')).toEqual({ value: '' });
  });

  it('keeps the backend of a passed-through id with its owner', async () => {
    const store = kind.create(LIMITS);
    await store.put('resp_up', 'alice', null, 'compat');
    expect(await store.get('resp_up', 'alice')).toStrictEqual({ value: null, backend: 'compat' });
    expect(await store.get('resp_up', 'bob')).toBeUndefined();
    await store.put('resp_old', 'alice', null);
    expect(await store.get('resp_old', 'alice')).toStrictEqual({ value: null });
  });

  it('deletes for the owner only', async () => {
    const store = kind.create(LIMITS);
    await store.put('resp_1', 'alice', 'x');
    expect(await store.delete('resp_1', 'bob')).toBe(false);
    expect(await store.get('resp_1', 'alice')).toEqual({ value: 'x' });
    expect(await store.delete('resp_1', 'alice')).toBe(true);
    expect(await store.get('resp_1', 'alice')).toBeUndefined();
    expect(await store.delete('resp_1', 'alice')).toBe(false);
    expect(await store.delete('resp_never', 'alice')).toBe(false);
  });

  it('replaces an entry written again under the same id', async () => {
    const store = kind.create(LIMITS);
    await store.put('resp_1', 'alice', 'first');
    await store.put('resp_1', 'alice', 'second');
    expect(await store.get('resp_1', 'alice')).toEqual({ value: 'second' });
    await store.put('resp_1', 'bob', null);
    expect(await store.get('resp_1', 'alice')).toBeUndefined();
    expect(await store.get('resp_1', 'bob')).toEqual({ value: null });
  });

  it('keeps at most maxStored entries, dropping the oldest written first', async () => {
    const store = kind.create({ maxStored: 2, ttlSeconds: 60 });
    await store.put('resp_c', 'k', '1');
    await store.put('resp_b', 'k', '2');
    await store.put('resp_a', 'k', '3');
    expect(await store.get('resp_c', 'k')).toBeUndefined();
    expect(await store.get('resp_b', 'k')).toEqual({ value: '2' });
    expect(await store.get('resp_a', 'k')).toEqual({ value: '3' });
  });

  it('keeps large values whole', async () => {
    const store = kind.create(LIMITS);
    const big = JSON.stringify({ input: 'x'.repeat(300_000), note: 'ünïcödé ✓' });
    await store.put('resp_big', 'alice', big);
    expect(await store.get('resp_big', 'alice')).toEqual({ value: big });
  });
});

/** Every key under `match` with its raw contents as Redis holds them (strings, hashes, sorted sets). */
async function rawDump(match: string): Promise<string> {
  const parts: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await inspector.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await inspector.type(key);
      parts.push(key, type);
      if (type === 'string') parts.push(String(await inspector.get(key)));
      else if (type === 'hash') parts.push(JSON.stringify(await inspector.hgetall(key)));
      else if (type === 'zset') parts.push(JSON.stringify(await inspector.zrange(key, 0, -1, 'WITHSCORES')));
      else parts.push(`(unread type ${type})`);
    }
  } while (cursor !== '0');
  return parts.join('\n');
}

describe('RedisStoredResponses', () => {
  it('shares entries between two replicas', async () => {
    const [a, b] = redisReplicas(2) as [RedisStoredResponses, RedisStoredResponses];
    await a.put('resp_shared', 'alice', '{"from":"a"}');
    expect(await b.get('resp_shared', 'alice')).toEqual({ value: '{"from":"a"}' });
    expect(await b.get('resp_shared', 'bob')).toBeUndefined();
    expect(await b.delete('resp_shared', 'alice')).toBe(true);
    expect(await a.get('resp_shared', 'alice')).toBeUndefined();
  });

  it('holds the bound across replicas writing at once: exactly maxStored entries stay', async () => {
    const prefix = `t:${randomUUID()}:{responses}:`;
    const replicas = redisReplicas(3, { maxStored: 20, ttlSeconds: 60 }, prefix);
    await Promise.all(
      replicas.flatMap((store, r) =>
        Array.from({ length: 30 }, (_, i) => store.put(`resp_${r}_${i}`, 'alice', `v${r}.${i}`)),
      ),
    );
    expect(await replicas[0]?.size()).toBe(20);
    const entries = await inspector.keys(`${prefix}e:*`);
    expect(entries).toHaveLength(20);
    const readable = await Promise.all(
      replicas.flatMap((_, r) =>
        Array.from({ length: 30 }, (_, i) => replicas[1]?.get(`resp_${r}_${i}`, 'alice')),
      ),
    );
    expect(readable.filter((entry) => entry !== undefined)).toHaveLength(20);
  });

  it('gives every entry the TTL, and Redis forgets it when it runs out', async () => {
    const prefix = `t:${randomUUID()}:{responses}:`;
    const [store] = redisReplicas(1, { maxStored: 10, ttlSeconds: 1 }, prefix) as [RedisStoredResponses];
    await store.put('resp_short', 'alice', 'x');
    const ttl = await inspector.pttl(`${prefix}e:resp_short`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1000);
    await expect
      .poll(() => store.get('resp_short', 'alice'), { timeout: 5000, interval: 50 })
      .toBeUndefined();
    const [long] = redisReplicas(1, { maxStored: 10, ttlSeconds: 3600 }, prefix) as [RedisStoredResponses];
    await long.put('resp_long', 'alice', 'x');
    expect(await inspector.pttl(`${prefix}e:resp_long`)).toBeGreaterThan(3_590_000);
  });

  it('writes no plaintext to Redis: no value, no owner name (SCAN of every key and value)', async () => {
    const prefix = `t:${randomUUID()}:{responses}:`;
    const [store] = redisReplicas(1, LIMITS, prefix) as [RedisStoredResponses];
    const canary = 'CanaryWordZebra42';
    await store.put('resp_1', `owner-${canary}`, JSON.stringify({ input: `the ${canary} says hi` }));
    await store.put('resp_2', 'alice', `${canary}`);
    await store.put('resp_3', `owner-${canary}`, null, `backend-${canary}`);
    const dump = await rawDump(`${prefix}*`);
    expect(dump).toContain(`${prefix}e:resp_1`); // the search did read the entries
    expect(dump).toContain('"v":"v1:');
    expect(dump).not.toContain(canary);
    expect(dump.toLowerCase()).not.toContain(canary.toLowerCase());
    expect(dump).not.toContain('alice');
    expect(dump).not.toContain(Buffer.from(canary).toString('base64').slice(0, 12));
    expect(await store.get('resp_1', `owner-${canary}`)).toEqual({
      value: JSON.stringify({ input: `the ${canary} says hi` }),
    });
  });

  it('reads a tampered, moved or foreign-secret value as missing', async () => {
    const prefix = `t:${randomUUID()}:{responses}:`;
    const [store] = redisReplicas(1, LIMITS, prefix) as [RedisStoredResponses];
    await store.put('resp_1', 'alice', 'one');
    await store.put('resp_2', 'alice', 'two');
    const sealed = (await inspector.hget(`${prefix}e:resp_1`, 'v')) as string;
    const bytes = Buffer.from(sealed.slice(3), 'base64');
    bytes[20] = (bytes[20] as number) ^ 0xff;
    await inspector.hset(`${prefix}e:resp_1`, 'v', `v1:${bytes.toString('base64')}`);
    expect(await store.get('resp_1', 'alice')).toBeUndefined();
    // resp_1's sealed value copied onto resp_2 does not open there: the id is bound to the value.
    await inspector.hset(`${prefix}e:resp_2`, 'v', sealed);
    expect(await store.get('resp_2', 'alice')).toBeUndefined();

    await store.put('resp_3', 'alice', 'three');
    const [other] = redisReplicas(1, LIMITS, prefix, `${SECRET}-rotated`) as [RedisStoredResponses];
    expect(await other.get('resp_3', 'alice')).toBeUndefined();
    expect(await other.delete('resp_3', 'alice')).toBe(false);
    expect(await store.get('resp_3', 'alice')).toEqual({ value: 'three' });
  });
});

describe('FallbackStoredResponses', () => {
  it('keeps working on memory when Redis is killed mid-run, sets the gauge, and returns to Redis', async () => {
    const local = await startRedisServer();
    try {
      const connection = new RedisConnection({ url: local.url });
      connections.push(connection);
      const primary = new RedisStoredResponses({
        connection,
        keyPrefix: `t:${randomUUID()}:{responses}:`,
        limits: LIMITS,
        secret: SECRET,
      });
      const gauge: boolean[] = [];
      const errors: string[] = [];
      const store = new FallbackStoredResponses({
        primary,
        limits: LIMITS,
        log: { error: (_obj, msg) => errors.push(msg), info: () => undefined },
        onDegradedChange: (degraded) => gauge.push(degraded),
        probeIntervalMs: 3_600_000, // the test probes itself
      });
      await store.put('resp_before', 'alice', 'in redis');
      expect(store.degraded).toBe(false);

      await local.stop();
      await expect(store.put('resp_during', 'alice', 'in memory')).resolves.toBeUndefined();
      expect(store.degraded).toBe(true);
      expect(gauge).toEqual([true]);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/Stored-responses store unreachable/);
      expect(await store.get('resp_during', 'alice')).toEqual({ value: 'in memory' });
      expect(await store.get('resp_during', 'bob')).toBeUndefined();
      expect(await store.get('resp_before', 'alice')).toBeUndefined();
      expect(await store.probe()).toBe(false);

      await local.restart();
      expect(await connection.waitUntilReady(10_000)).toBe(true);
      expect(await store.probe()).toBe(true);
      expect(store.degraded).toBe(false);
      expect(gauge).toEqual([true, false]);
      await store.put('resp_after', 'alice', 'in redis again');
      expect(await primary.get('resp_after', 'alice')).toEqual({ value: 'in redis again' });
      // Written during the outage: still readable on this replica, and deletable.
      expect(await store.get('resp_during', 'alice')).toEqual({ value: 'in memory' });
      expect(await store.delete('resp_during', 'alice')).toBe(true);
      expect(await store.get('resp_during', 'alice')).toBeUndefined();
      store.close();
    } finally {
      await local.stop();
    }
  });
});

describe('createStoredResponses', () => {
  const settings = (store: string) => ({
    store,
    bruteForceStore: store,
    bruteForceInState: store !== 'memory',
    bruteForceStoreIgnored: false,
    secret: store === 'memory' ? undefined : SECRET,
  });
  const log = { error: () => undefined, info: () => undefined, warn: () => undefined };

  it('is one instance memory store with the memory state store', async () => {
    const state = await openStateStore({ settings: settings('memory'), log });
    expect(createStoredResponses({ store: state, limits: LIMITS })).toBeInstanceOf(MemoryStoredResponses);
    expect(state.health()).toEqual({ store: 'memory', status: 'ok' });
    await state.close();
  });

  it('puts entries under the shared prefix, sealed, and reports its fallback to the state store', async () => {
    const local = await startRedisServer();
    const localInspector = new Redis(local.url);
    const changes: Array<[string, boolean]> = [];
    const state = await openStateStore({
      settings: settings(local.url),
      log,
      onDegradedChange: (feature, degraded) => changes.push([feature, degraded]),
    });
    try {
      const [a, b] = [
        createStoredResponses({ store: state, limits: LIMITS }),
        createStoredResponses({ store: state, limits: LIMITS }),
      ];
      await a.put('resp_f', 'alice', 'shared value');
      expect(await b.get('resp_f', 'alice')).toEqual({ value: 'shared value' });
      expect((await localInspector.keys('*')).sort()).toEqual([
        'llm-interactive-proxy:{responses}:e:resp_f',
        'llm-interactive-proxy:{responses}:idx',
      ]);
      expect(state.health()).toEqual({ store: 'redis', url: local.url, status: 'ok' });
      localInspector.disconnect();
      await local.stop();
      await expect(a.put('resp_g', 'alice', 'x')).resolves.toBeUndefined();
      expect(changes).toEqual([['responses', true]]);
      expect(state.health()).toMatchObject({ status: 'degraded', degraded: ['responses'] });
    } finally {
      localInspector.disconnect();
      await state.close();
      await local.stop();
    }
  });
});
