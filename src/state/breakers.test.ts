import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.js';
import { createBreakerStore, MemoryBreakerStore, RedisBreakerStore } from './breakers.js';
import { RedisConnection } from './redis-connection.js';
import { openStateStore } from './store.js';

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

/** `count` stores on one server and one prefix, each on its own connection: replicas. */
function replicas(count: number): RedisBreakerStore[] {
  const keyPrefix = `t:${randomUUID()}:{breakers}:`;
  return Array.from({ length: count }, () => {
    const connection = new RedisConnection({ url: redis.url });
    connections.push(connection);
    return new RedisBreakerStore({ connection, keyPrefix });
  });
}

const E = 'openai:gpt-x';

describe('RedisBreakerStore (real redis-server)', () => {
  it("opens on one replica's failures for every replica; one probe after the cooldown; a success closes", async () => {
    const [a, b] = replicas(2) as [RedisBreakerStore, RedisBreakerStore];
    const limits = { failures: 2, cooldownMs: 300 };
    expect(await a.admit(E, limits)).toBe(true);
    await a.failed(E, limits);
    expect(await b.snapshot()).toEqual([{ element: E, phase: 'closed', failures: 1 }]);
    await a.failed(E, limits);
    expect(await b.admit(E, limits)).toBe(false);
    expect(await b.snapshot()).toEqual([{ element: E, phase: 'open', failures: 2 }]);
    // After the cooldown (Redis's clock), the first replica to ask gets the one probe; the other waits.
    const opened = Date.now();
    while (Date.now() - opened < 350) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await b.admit(E, limits)).toBe(true);
    expect(await a.admit(E, limits)).toBe(false);
    expect(await a.snapshot()).toEqual([{ element: E, phase: 'half_open', failures: 2 }]);
    await b.succeeded(E);
    expect(await a.snapshot()).toEqual([]);
    expect(await a.admit(E, limits)).toBe(true);
  });

  it('a failed probe opens it again at once', async () => {
    const [a] = replicas(1) as [RedisBreakerStore];
    const limits = { failures: 1, cooldownMs: 0 };
    await a.failed(E, limits);
    expect(await a.admit(E, limits)).toBe(true);
    await a.failed(E, { failures: 5, cooldownMs: 60_000 });
    expect(await a.admit(E, { failures: 5, cooldownMs: 60_000 })).toBe(false);
    expect(await a.snapshot()).toEqual([{ element: E, phase: 'open', failures: 2 }]);
  });
});

describe('createBreakerStore', () => {
  const settings = (store: string) => ({
    store,
    bruteForceStore: store,
    bruteForceInState: store !== 'memory',
    bruteForceStoreIgnored: false,
    secret: 'breakers-test-secret-0123456789abcdefghij',
  });
  const log = { error: () => undefined, info: () => undefined, warn: () => undefined };

  it('is a memory store with the memory state store', async () => {
    const state = await openStateStore({ settings: settings('memory'), log });
    expect(createBreakerStore(state)).toBeInstanceOf(MemoryBreakerStore);
    await state.close();
  });

  it('keeps deciding on memory (degraded) when Redis is killed', async () => {
    const local = await startRedisServer();
    const changes: Array<[string, boolean]> = [];
    const state = await openStateStore({
      settings: settings(local.url),
      log,
      onDegradedChange: (feature, degraded) => changes.push([feature, degraded]),
    });
    try {
      const store = createBreakerStore(state);
      const limits = { failures: 1, cooldownMs: 60_000 };
      await store.failed(E, limits, 0);
      expect(await store.admit(E, limits, 0)).toBe(false);
      await local.stop();
      // This replica's memory starts empty: the element is tried, and its failures count here.
      expect(await store.admit(E, limits, 0)).toBe(true);
      await store.failed(E, limits, 0);
      expect(await store.admit(E, limits, 1)).toBe(false);
      expect(changes).toEqual([['breakers', true]]);
      expect(state.health()).toMatchObject({ status: 'degraded', degraded: ['breakers'] });
    } finally {
      await state.close();
      await local.stop();
    }
  });
});

describe('an element named by a model a client made up, megabytes long', () => {
  const long = `openai:${'m'.repeat(1_000_000)}`;
  const other = `openai:${'m'.repeat(999_999)}n`;
  const limits = { failures: 1, cooldownMs: 60_000 };

  it.each([
    ['in memory', () => new MemoryBreakerStore()],
    ['in Redis', () => replicas(1)[0]!],
  ])('is kept by a bounded name %s, and still has a breaker of its own', async (_where, make) => {
    const store = make();
    await store.failed(long, limits, 0);
    expect(await store.admit(long, limits, 0)).toBe(false);
    expect(await store.admit(other, limits, 0)).toBe(true);
    const views = await store.snapshot();
    expect(views.map((v) => v.element.length)).toEqual([64 + 2 + 32]);
    expect(views[0]?.element.startsWith('openai:mmm')).toBe(true);
    // Its probe, then a success: closed.
    expect(await store.admit(long, { failures: 1, cooldownMs: 0 }, 1)).toBe(true);
    await store.succeeded(long);
    expect(await store.snapshot()).toEqual([]);
  });
});
