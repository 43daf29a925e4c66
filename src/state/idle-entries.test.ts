import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { redisCommandsDuring } from '../../test/helpers/redis-monitor.js';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.js';
import { MemoryIdleEntries, type IdleEntries, type IdleEntriesLimits } from './idle-entries.js';
import { FallbackIdleEntries, RedisIdleEntries } from './idle-entries-redis.js';
import { RedisConnection } from './redis-connection.js';

const SECRET = 'idle-entries-test-secret-0123456789abcdef';
const LIMITS: IdleEntriesLimits = { maxEntries: 3, ttlSeconds: 60 };

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

/** A manual epoch clock shared by replicas: the bound's order follows use, not spelling. */
function clock() {
  const state = { ms: 1_700_000_000_000 };
  return { now: () => (state.ms += 1000), state };
}

function redisReplicas(
  count: number,
  limits = LIMITS,
  keyPrefix = `t:${randomUUID()}:{sessions}:`,
  secret = SECRET,
): RedisIdleEntries[] {
  const { now } = clock();
  return Array.from({ length: count }, () => {
    const connection = new RedisConnection({ url: redis.url });
    connections.push(connection);
    return new RedisIdleEntries({ connection, keyPrefix, limits, secret, feature: 'sessions', now });
  });
}

const KINDS: Array<{ name: string; create(limits: IdleEntriesLimits): IdleEntries }> = [
  { name: 'memory', create: (limits) => new MemoryIdleEntries(limits) },
  { name: 'Redis (real redis-server)', create: (limits) => redisReplicas(1, limits)[0]! },
];

describe.each(KINDS)('IdleEntries contract: $name', (kind) => {
  it('keeps, replaces and removes a value', async () => {
    const store = kind.create(LIMITS);
    expect(await store.get('a')).toBeUndefined();
    await store.set('a', '{"model":"x"}');
    expect(await store.get('a')).toBe('{"model":"x"}');
    await store.set('a', '{"model":"y"}');
    expect(await store.get('a')).toBe('{"model":"y"}');
    await store.set('a', null);
    expect(await store.get('a')).toBeUndefined();
  });

  it('is bounded: the least recently used goes first', async () => {
    const store = kind.create(LIMITS);
    for (const id of ['a', 'b', 'c']) await store.set(id, id);
    expect(await store.get('a')).toBe('a');
    await store.set('d', 'd');
    expect(await store.get('b')).toBeUndefined();
    expect([await store.get('a'), await store.get('c'), await store.get('d')]).toEqual(['a', 'c', 'd']);
  });
});

describe('RedisIdleEntries', () => {
  it('is shared by replicas, and holds neither ids nor values in plaintext', async () => {
    const prefix = `t:${randomUUID()}:{sessions}:`;
    const [a, b] = redisReplicas(2, LIMITS, prefix);
    await a!.set('alice\u0000session-1', '{"model":"openai:gpt-canary"}');
    expect(await b!.get('alice\u0000session-1')).toBe('{"model":"openai:gpt-canary"}');
    const keys = await inspector.keys(`${prefix}*`);
    expect(keys.sort()).toEqual([expect.stringMatching(/e:[A-Za-z0-9_-]{32}$/), `${prefix}idx`].sort());
    const raw = String(await inspector.get(keys.find((k) => k.includes('e:'))!));
    expect(raw.startsWith('v1:')).toBe(true);
    expect(raw).not.toContain('gpt-canary');
    expect(keys.join(' ')).not.toContain('alice');
    // Deleted through one replica, gone for the other.
    await b!.set('alice\u0000session-1', null);
    expect(await a!.get('alice\u0000session-1')).toBeUndefined();
  });

  it('reads a value sealed under another secret as missing', async () => {
    const prefix = `t:${randomUUID()}:{sessions}:`;
    const [ours] = redisReplicas(1, LIMITS, prefix);
    const [theirs] = redisReplicas(1, LIMITS, prefix, 'another-secret-0123456789abcdefghijklmnop');
    await theirs!.set('k', 'v');
    expect(await ours!.get('k')).toBeUndefined();
  });

  it('gives each entry an idle TTL that a read starts again', async () => {
    const prefix = `t:${randomUUID()}:{sessions}:`;
    const [store] = redisReplicas(1, { maxEntries: 10, ttlSeconds: 60 }, prefix);
    await store!.set('k', 'v');
    const [entry] = await inspector.keys(`${prefix}e:*`);
    expect(await inspector.pttl(entry!)).toBeGreaterThan(59_000);
    await inspector.pexpire(entry!, 30_000);
    expect(await store!.get('k')).toBe('v');
    expect(await inspector.pttl(entry!)).toBeGreaterThan(59_000);
  });
});

/** The commands clients send to Redis while `run` runs (MONITOR; what scripts run inside is left out). */
const commandsDuring = (run: () => Promise<void>): Promise<string[][]> =>
  redisCommandsDuring(redis.port, run);

describe('RedisIdleEntries: the mirror of which entries exist', () => {
  it('reads an id without an entry with no round trip, and one with an entry with one', async () => {
    const prefix = `t:${randomUUID()}:{sessions}:`;
    const [a, b] = redisReplicas(2, LIMITS, prefix);
    await vi.waitFor(() => expect([a!.mirrored, b!.mirrored]).toEqual([true, true]));
    expect([a!.any, b!.any]).toEqual([false, false]);
    const idle = await commandsDuring(async () => {
      for (let i = 0; i < 5; i++) expect(await b!.get(`nobody-${i}`)).toBeUndefined();
    });
    expect(idle).toEqual([]);
    // Written through one replica: the other reads it at once, and says there is something now.
    await a!.set('alice\u0000s1', 'v1');
    const reads = await commandsDuring(async () => {
      expect(await b!.get('alice\u0000s1')).toBe('v1');
      expect(await b!.get('alice\u0000s2')).toBeUndefined();
    });
    // One script call (EVAL the first time this connection runs it, EVALSHA after), for the entry there.
    expect(reads).toHaveLength(1);
    expect(['eval', 'evalsha']).toContain(reads[0]![0]!.toLowerCase());
    expect(b!.any).toBe(true);
    // Removed through the other: heard by the first, which then reads it with no round trip again.
    await b!.set('alice\u0000s1', null);
    await vi.waitFor(() => expect(a!.any).toBe(false));
    expect(await commandsDuring(async () => expect(await a!.get('alice\u0000s1')).toBeUndefined())).toEqual(
      [],
    );
  });

  it('forgets an entry that went unheard (expired) once a read finds it gone', async () => {
    const prefix = `t:${randomUUID()}:{sessions}:`;
    const [store] = redisReplicas(1, LIMITS, prefix);
    await vi.waitFor(() => expect(store!.mirrored).toBe(true));
    await store!.set('k', 'v');
    const [entry] = await inspector.keys(`${prefix}e:*`);
    await inspector.del(entry!);
    expect(await store!.get('k')).toBeUndefined();
    expect(store!.any).toBe(false);
    expect(await commandsDuring(async () => expect(await store!.get('k')).toBeUndefined())).toEqual([]);
  });

  it('starts from the entries already there, and hears the ones the bound drops', async () => {
    const prefix = `t:${randomUUID()}:{sessions}:`;
    const [first] = redisReplicas(1, LIMITS, prefix);
    await first!.set('a', 'a');
    const [late] = redisReplicas(1, LIMITS, prefix);
    await vi.waitFor(() => expect(late!.mirrored).toBe(true));
    expect(await late!.get('a')).toBe('a');
    for (const id of ['b', 'c', 'd']) await first!.set(id, id);
    // `a`, least recently used, went when `d` came: heard, so read without a round trip.
    await vi.waitFor(async () =>
      expect(await commandsDuring(async () => expect(await late!.get('a')).toBeUndefined())).toEqual([]),
    );
  });
});

describe('FallbackIdleEntries', () => {
  it('falls back to memory while Redis does not answer, and says so once', async () => {
    const [primary] = redisReplicas(1);
    const errors: string[] = [];
    const changes: boolean[] = [];
    const store = new FallbackIdleEntries({
      primary: primary!,
      limits: LIMITS,
      name: 'Session store',
      degradedNote: 'kept on this replica',
      recoveredNote: 'shared again',
      log: { error: (_o, msg) => errors.push(msg), info: () => undefined },
      onDegradedChange: (degraded) => changes.push(degraded),
      probeIntervalMs: 60_000,
    });
    try {
      redis.pause();
      await store.set('k', 'v');
      expect(store.degraded).toBe(true);
      expect(await store.get('k')).toBe('v');
      expect(errors).toEqual([
        "Session store unreachable: using this replica's memory store until it returns (kept on this replica)",
      ]);
      redis.resume();
      expect(await connections[0]!.waitUntilReady(10_000)).toBe(true);
      expect(await store.probe()).toBe(true);
      expect(changes).toEqual([true, false]);
    } finally {
      store.close();
    }
  });
});
