import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.js';
import {
  MemoryLimitStore,
  type AcquireResult,
  type Lease,
  type LimitCheck,
  type LimitStore,
} from './limits.js';
import { createLimitStore, RedisLimitStore, type SharedLimitStore } from './limits-redis.js';
import { RedisConnection } from './redis-connection.js';
import { openStateStore, stateKeyPrefix } from './store.js';

const T0 = 1_700_000_000_000;
const LEASE_TTL_MS = 600_000;

let redis: RedisServer;
const connections: RedisConnection[] = [];
beforeAll(async () => {
  redis = await startRedisServer();
});
afterEach(async () => {
  await Promise.all(connections.splice(0).map((connection) => connection.close()));
});
afterAll(async () => {
  await redis.stop();
});

/** `count` Redis limit stores on one server and one prefix, each on its own connection: replicas. */
function redisReplicas(count: number): RedisLimitStore[] {
  const keyPrefix = `t:${randomUUID()}:{limits}:`;
  return Array.from({ length: count }, () => {
    const connection = new RedisConnection({ url: redis.url });
    connections.push(connection);
    return new RedisLimitStore({ connection, keyPrefix, leaseTtlMs: LEASE_TTL_MS });
  });
}

/** `late`: how much later than 60 s after it came in a request may leave a window (memory: whole seconds). */
const KINDS: Array<{ name: string; late: number; create(): LimitStore }> = [
  { name: 'memory', late: 1000, create: () => new MemoryLimitStore({ leaseTtlMs: LEASE_TTL_MS }) },
  { name: 'Redis (real redis-server)', late: 0, create: () => redisReplicas(1)[0] as LimitStore },
];

const rpm = (limit: number, key = 'alice:rpm'): Extract<LimitCheck, { kind: 'window' }> => ({
  kind: 'window',
  key,
  limit,
  windowSeconds: 60,
  cost: 1,
});

function granted(result: AcquireResult) {
  if (!result.granted) throw new Error(`refused: ${JSON.stringify(result)}`);
  return result;
}

describe.each(KINDS)('LimitStore contract: $name', (kind) => {
  it('a request window grants `limit` in any window, then says when the oldest leaves it', async () => {
    const store = kind.create();
    const remaining = [];
    for (let i = 0; i < 3; i++)
      remaining.push(granted(await store.acquire([rpm(3)], T0 + i * 10_000)).remaining);
    expect(remaining).toEqual([[2], [1], [0]]);
    expect(await store.acquire([rpm(3)], T0 + 30_000)).toEqual({
      granted: false,
      check: 0,
      limit: 3,
      remaining: 0,
      retryAfterSeconds: 30 + kind.late / 1000,
    });
    // The window slides: the first request leaves it at T0 + 60 s (+ late), the second 10 s later.
    if (kind.late > 0)
      expect(await store.acquire([rpm(3)], T0 + 60_000)).toMatchObject({
        granted: false,
        retryAfterSeconds: 1,
      });
    expect(granted(await store.acquire([rpm(3)], T0 + 60_000 + kind.late)).remaining).toEqual([0]);
    expect(await store.acquire([rpm(3)], T0 + 60_500 + kind.late)).toMatchObject({
      granted: false,
      retryAfterSeconds: 10,
    });
    expect(granted(await store.acquire([rpm(3)], T0 + 70_000 + kind.late)).remaining).toEqual([0]);
  });

  it('a token window takes the estimate, then the actual count when the request is settled', async () => {
    const store = kind.create();
    const tpm = (cost: number): LimitCheck => ({
      kind: 'window',
      key: 'alice:tpm',
      limit: 100,
      windowSeconds: 60,
      cost,
    });
    const first = granted(await store.acquire([tpm(60)], T0));
    expect(await store.acquire([tpm(60)], T0 + 1)).toMatchObject({
      granted: false,
      remaining: 40,
      retryAfterSeconds: 60 + kind.late / 1000,
    });
    await store.release(first.lease, T0 + 2, { 0: 20 });
    expect(granted(await store.acquire([tpm(60)], T0 + 3)).remaining).toEqual([20]);
    // A cost larger than the whole limit can never be granted.
    expect(await store.acquire([tpm(101)], T0 + 4)).toMatchObject({ granted: false, check: 0 });
  });

  it('concurrency slots are held until released, once, or until the lease TTL', async () => {
    const store = kind.create();
    const slot: LimitCheck = { kind: 'concurrency', key: 'alice:concurrent', limit: 2 };
    const a = granted(await store.acquire([slot], T0));
    const b = granted(await store.acquire([slot], T0));
    expect(b.remaining).toEqual([0]);
    expect(await store.acquire([slot], T0)).toEqual({
      granted: false,
      check: 0,
      limit: 2,
      remaining: 0,
      retryAfterSeconds: 1,
    });
    await store.release(a.lease, T0 + 1);
    await store.release(a.lease, T0 + 1); // a second release (end and abort both seen) frees nothing more
    const c = granted(await store.acquire([slot], T0 + 2));
    expect(c.remaining).toEqual([0]);
    expect(await store.acquire([slot], T0 + 3)).toMatchObject({ granted: false });
    // b and c are never released (a replica died): their slots free themselves after the lease TTL.
    expect(granted(await store.acquire([slot], T0 + 2 + LEASE_TTL_MS)).remaining).toEqual([1]);
  });

  it('a budget reserves the largest cost, settles to the actual one, and forgets spend at the period end', async () => {
    const store = kind.create();
    const periodEndMs = T0 + 3_600_000;
    const budget = (cost: number): LimitCheck => ({
      kind: 'budget',
      key: 'team-a:2023-11',
      limit: 10,
      cost,
      periodEndMs,
    });
    const a = granted(await store.acquire([budget(4)], T0));
    const b = granted(await store.acquire([budget(4)], T0));
    expect(b.remaining).toEqual([2]);
    expect(await store.acquire([budget(4)], T0 + 1000)).toEqual({
      granted: false,
      check: 0,
      limit: 10,
      remaining: 2,
      retryAfterSeconds: 3599,
    });
    await store.release(a.lease, T0 + 2000, { 0: 1.25 }); // spent 1.25, b's 4 still reserved
    expect(granted(await store.acquire([budget(4)], T0 + 3000)).remaining).toEqual([0.75]);
    await store.release(b.lease, T0 + 4000); // no actual cost known: the reservation is spent
    expect(await store.acquire([budget(4)], T0 + 5000)).toMatchObject({ granted: false, remaining: 0.75 });
    expect(granted(await store.acquire([budget(4)], periodEndMs + LEASE_TTL_MS)).remaining).toEqual([6]);
  });

  it('takes all checks or none: a refusal by one leaves the others untouched', async () => {
    const store = kind.create();
    const slot: LimitCheck = { kind: 'concurrency', key: 'bob:concurrent', limit: 1 };
    granted(await store.acquire([rpm(5, 'bob:rpm'), slot], T0));
    expect(await store.acquire([rpm(5, 'bob:rpm'), slot], T0 + 1)).toMatchObject({
      granted: false,
      check: 1,
    });
    expect(await store.acquire([rpm(5, 'bob:rpm'), slot], T0 + 2)).toMatchObject({
      granted: false,
      check: 1,
    });
    // Only the granted request counted against the window: 4 left.
    expect(granted(await store.acquire([rpm(5, 'bob:rpm')], T0 + 3)).remaining).toEqual([3]);
  });
});

describe('RedisLimitStore across replicas', () => {
  it('three replicas, 30 per minute, 45 concurrent acquisitions: exactly 30 granted', async () => {
    const replicas = redisReplicas(3);
    const results = await Promise.all(
      Array.from({ length: 45 }, (_, i) =>
        (replicas[i % 3] as RedisLimitStore).acquire([rpm(30, 'k:rpm')], T0 + i),
      ),
    );
    expect(results.filter((r) => r.granted)).toHaveLength(30);
    expect(results.filter((r) => !r.granted)).toHaveLength(15);
    const remaining = results.flatMap((r) => (r.granted ? r.remaining : [])).sort((x, y) => x - y);
    expect(remaining).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('three replicas share concurrency slots exactly, and a release on one frees a slot for all', async () => {
    const replicas = redisReplicas(3);
    const slot: LimitCheck = { kind: 'concurrency', key: 'k:concurrent', limit: 4 };
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (replicas[i % 3] as RedisLimitStore).acquire([slot], T0)),
    );
    const held = results.filter((r) => r.granted);
    expect(held).toHaveLength(4);
    await (replicas[2] as RedisLimitStore).release(granted(held[0] as AcquireResult).lease, T0 + 1);
    expect(granted(await (replicas[1] as RedisLimitStore).acquire([slot], T0 + 2)).remaining).toEqual([0]);
  });
});

describe('createLimitStore', () => {
  const settings = (store: string) => ({
    store,
    bruteForceStore: store,
    bruteForceInState: store !== 'memory',
    bruteForceStoreIgnored: false,
    secret: 'limits-test-secret-0123456789abcdefghij',
  });
  const log = { error: () => undefined, info: () => undefined, warn: () => undefined };

  it('is one instance memory store with the memory state store', async () => {
    const state = await openStateStore({ settings: settings('memory'), log });
    expect(createLimitStore({ store: state })).toBeInstanceOf(MemoryLimitStore);
    await state.close();
  });

  it('shares limits through Redis, and keeps deciding on memory (degraded) when Redis is killed', async () => {
    const local = await startRedisServer();
    const changes: Array<[string, boolean]> = [];
    const state = await openStateStore({
      settings: settings(local.url),
      log,
      onDegradedChange: (feature, degraded) => changes.push([feature, degraded]),
    });
    try {
      const [a, b] = [createLimitStore({ store: state }), createLimitStore({ store: state })] as const;
      granted(await a.acquire([rpm(2, 'c:rpm')], T0));
      expect(granted(await b.acquire([rpm(2, 'c:rpm')], T0)).remaining).toEqual([0]);
      expect(await a.acquire([rpm(2, 'c:rpm')], T0)).toMatchObject({ granted: false });
      await local.stop();
      expect(granted(await a.acquire([rpm(2, 'c:rpm')], T0)).remaining).toEqual([1]);
      expect(changes).toEqual([['limits', true]]);
      expect(state.health()).toMatchObject({ status: 'degraded', degraded: ['limits'] });
    } finally {
      await state.close();
      await local.stop();
    }
  });
});

describe('createLimitStore: calls a paused Redis did not answer (SIGSTOP, real redis-server)', () => {
  const settings = (store: string) => ({
    store,
    bruteForceStore: store,
    bruteForceInState: true,
    bruteForceStoreIgnored: false,
    secret: 'limits-test-secret-0123456789abcdefghij',
  });
  const log = { error: () => undefined, info: () => undefined, warn: () => undefined };
  const prefix = stateKeyPrefix('limits');

  /** A limit store on a fresh redis-server, its scripts loaded (as on a proxy that served before), and a reader. */
  async function pausable() {
    const local = await startRedisServer();
    const state = await openStateStore({ settings: settings(local.url), log });
    const reader = new RedisConnection({ url: local.url });
    connections.push(reader);
    const store = createLimitStore({ store: state }) as SharedLimitStore;
    const warm = granted(await store.acquire([{ kind: 'concurrency', key: 'warm', limit: 1 }], T0));
    await store.release(warm.lease, T0);
    const close = async () => {
      local.resume();
      await state.close();
      await local.stop();
    };
    return { local, state, reader: reader.client, store, close };
  }

  it('gives back in Redis the slots of acquires that timed out there, ended during the pause or after it', async () => {
    const { local, state, reader, store, close } = await pausable();
    try {
      const slot: LimitCheck = { kind: 'concurrency', key: 'key:p:concurrent', limit: 3 };
      local.pause();
      // Each acquire times out and is granted by this replica's memory; Redis runs it when it wakes.
      const held = (await Promise.all([1, 2, 3].map(() => store.acquire([slot], T0)))).map(granted);
      expect(state.degradedFeatures()).toEqual(['limits']);
      await store.release((held[0] as { lease: Lease }).lease, T0 + 300);
      await store.release((held[1] as { lease: Lease }).lease, T0 + 300);
      local.resume();
      await store.probe();
      expect(state.degradedFeatures()).toEqual([]);
      // The third ends after Redis is back.
      await store.release((held[2] as { lease: Lease }).lease, T0 + 400);
      expect(await reader.zcard(`${prefix}l:key:p:concurrent`)).toBe(0);
      expect(await reader.exists(`${prefix}t:key:p:concurrent`)).toBe(0);
      const next = (await Promise.all([1, 2, 3].map(() => store.acquire([slot], T0 + 500)))).map(granted);
      expect(next.map((result) => result.remaining[0]).sort()).toEqual([0, 1, 2]);
    } finally {
      await close();
    }
  });

  it('settles in Redis the tpm and budget reservations of an acquire that timed out there', async () => {
    const { local, reader, store, close } = await pausable();
    try {
      const periodEndMs = T0 + 3_600_000;
      const checks: LimitCheck[] = [
        { kind: 'window', key: 'tpm:key:p', limit: 1000, windowSeconds: 60, cost: 100 },
        { kind: 'budget', key: 'budget:key:p', limit: 10, cost: 4, periodEndMs },
      ];
      local.pause();
      const reserved = granted(await store.acquire(checks, T0));
      await store.release(reserved.lease, T0 + 300, { 0: 30, 1: 1.5 });
      local.resume();
      await store.probe();
      // What it took, 30 tokens and 1.5 USD, not what it reserved (100, 4) still held.
      expect(granted(await store.acquire(checks, T0 + 400)).remaining).toEqual([870, 4.5]);
      expect(await reader.hget(`${prefix}s:budget:key:p`, 'a')).toBe('1.5');
      // Settled once: probing again changes nothing.
      await store.probe();
      expect(granted(await store.acquire(checks, T0 + 500)).remaining).toEqual([770, 0.5]);
    } finally {
      await close();
    }
  });
  it('settles a Redis lease whose release timed out once, though Redis runs that release when it wakes', async () => {
    const { local, store, close } = await pausable();
    try {
      const checks: LimitCheck[] = [
        { kind: 'concurrency', key: 'key:q:concurrent', limit: 1 },
        { kind: 'budget', key: 'budget:key:q', limit: 10, cost: 4, periodEndMs: T0 + 3_600_000 },
      ];
      const taken = granted(await store.acquire(checks, T0));
      local.pause();
      await store.release(taken.lease, T0 + 300, { 1: 1.5 });
      local.resume();
      await store.probe();
      expect(granted(await store.acquire(checks, T0 + 400)).remaining).toEqual([0, 4.5]);
    } finally {
      await close();
    }
  });
});

describe('createLimitStore: budgets while Redis is down', () => {
  const settings = (store: string) => ({
    store,
    bruteForceStore: store,
    bruteForceInState: true,
    bruteForceStoreIgnored: false,
    secret: 'limits-test-secret-0123456789abcdefghij',
  });
  const log = { error: () => undefined, info: () => undefined, warn: () => undefined };

  it('counts a budget in memory from the spend Redis last said, so a spent budget stays spent', async () => {
    const local = await startRedisServer();
    const state = await openStateStore({ settings: settings(local.url), log });
    try {
      const store = createLimitStore({ store: state });
      const periodEndMs = T0 + 3_600_000;
      const budget = (key: string): LimitCheck => ({
        kind: 'budget',
        key,
        limit: 1,
        cost: 0.25,
        periodEndMs,
      });
      /** One request of the budget `key` that spends what it reserved; whether it was let in. */
      const spend = async (key: string, at: number) => {
        const result = await store.acquire([budget(key)], at);
        if (result.granted) await store.release(result.lease, at);
        return result.granted;
      };
      // `spent` is spent through Redis and refused there; `half` has spent half of its budget.
      for (let i = 0; i < 4; i++) expect(await spend('spent', T0 + i)).toBe(true);
      expect(await spend('spent', T0 + 4)).toBe(false);
      for (let i = 0; i < 2; i++) expect(await spend('half', T0 + i)).toBe(true);
      await local.stop();
      // Per replica while Redis is down (README), from what this replica last knew.
      expect(await spend('spent', T0 + 10)).toBe(false);
      expect(state.degradedFeatures()).toEqual(['limits']);
      expect(await store.acquire([budget('half')], T0 + 11)).toMatchObject({
        granted: true,
        remaining: [0.25],
      });
      expect(await spend('half', T0 + 12)).toBe(true);
      expect(await spend('half', T0 + 13)).toBe(false);
      // A budget Redis never told of counts from 0 meanwhile.
      expect(await store.acquire([budget('unseen')], T0 + 14)).toMatchObject({
        granted: true,
        remaining: [0.75],
      });
    } finally {
      await state.close();
      await local.stop();
    }
  });
});

describe('MemoryLimitStore with a minute of requests in its window', () => {
  it('counts per-second buckets exactly, in bounded memory, and settles a lease in its own bucket', () => {
    const store = new MemoryLimitStore({ leaseTtlMs: LEASE_TTL_MS });
    const check = rpm(5000, 'busy:rpm');
    const times: number[] = [];
    let oldest = 0;
    // 6,000 requests, one every 20 ms: two minutes, the window always full of a minute of them.
    for (let i = 0; i < 6000; i++) {
      const now = T0 + 250 + i * 20;
      times.push(now);
      const second = Math.floor(now / 1000);
      // Counted: every request from the 60 whole seconds before this one's, and this one's.
      while (Math.floor((times[oldest] as number) / 1000) < second - 60) oldest++;
      const counted = times.length - oldest;
      expect(granted(store.acquireNow([check], now)).remaining).toEqual([5000 - counted]);
    }
    expect(store.counters).toBe(1);
    // A settled lease changes its own second's bucket, still in the window.
    const now = T0 + 250 + 6000 * 20;
    const last = granted(store.acquireNow([check], now));
    store.releaseNow(last.lease, now + 10, { 0: 3 });
    // Its 1 became 3, and this one takes 1.
    expect(granted(store.acquireNow([check], now + 10)).remaining).toEqual([
      (last.remaining[0] as number) - 3,
    ]);
    // All of it leaves once the last second is 61 s old.
    const later = (Math.floor(now / 1000) + 61) * 1000;
    expect(granted(store.acquireNow([check], later)).remaining).toEqual([4999]);
  });
});
