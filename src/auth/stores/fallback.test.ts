import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../../test/helpers/redis-server.js';
import { FallbackBruteForceStore, type SharedBruteForceStore } from './fallback.js';
import { MemoryBruteForceStore } from './memory.js';
import { RedisBruteForceStore } from './redis.js';
import { DEFAULT_BRUTE_FORCE_POLICY } from '../brute-force-policy.js';

const policy = DEFAULT_BRUTE_FORCE_POLICY;
const T0 = 1_700_000_000_000;
const MINUTE = 60_000;

/**
 * A shared store that can be switched off, for the switching logic alone (the Redis behaviour itself is
 * tested against a real redis-server below and in test/redis.e2e.test.ts).
 */
class SwitchableStore extends MemoryBruteForceStore implements SharedBruteForceStore {
  readonly description = 'switchable://test';
  down = false;
  calls = 0;

  constructor() {
    super(policy);
  }

  async ping(): Promise<void> {
    this.guard();
  }

  override async check(...args: Parameters<MemoryBruteForceStore['check']>) {
    this.guard();
    return super.check(...args);
  }

  override async recordFailure(...args: Parameters<MemoryBruteForceStore['recordFailure']>) {
    this.guard();
    return super.recordFailure(...args);
  }

  private guard(): void {
    this.calls++;
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:1');
  }
}

function setup() {
  const primary = new SwitchableStore();
  const clock = { ms: T0 };
  const errors: Array<{ obj: object; msg: string }> = [];
  const infos: string[] = [];
  const changes: boolean[] = [];
  const store = new FallbackBruteForceStore({
    primary,
    policy,
    log: { error: (obj, msg) => errors.push({ obj, msg }), info: (_obj, msg) => infos.push(msg) },
    onDegradedChange: (degraded) => changes.push(degraded),
    now: () => clock.ms,
    probeIntervalMs: 3_600_000, // tests call probe() themselves
  });
  return { primary, store, clock, errors, infos, changes };
}

const opened: FallbackBruteForceStore[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()));
});

describe('FallbackBruteForceStore', () => {
  it('uses the shared store while it answers', async () => {
    const { primary, store } = setup();
    opened.push(store);
    await store.recordFailure('a', T0);
    expect(await primary.check('a', T0)).toEqual({ blocked: false, tracked: true });
    expect(store.degraded).toBe(false);
  });

  it('answers from memory when the shared store fails, and stops asking it', async () => {
    const { primary, store, errors, changes } = setup();
    opened.push(store);
    primary.down = true;
    for (let i = 0; i < 4; i++) expect(await store.recordFailure('a', T0)).toEqual({ failures: i + 1 });
    expect(await store.recordFailure('a', T0)).toEqual({ failures: 5, blockedForSeconds: 30 });
    expect(await store.check('a', T0)).toEqual({ blocked: true, retryAfterSeconds: 30 });
    expect(store.degraded).toBe(true);
    expect(changes).toEqual([true]);
    expect(primary.calls).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.obj).toEqual({ store: 'switchable://test', err: 'connect ECONNREFUSED 127.0.0.1:1' });
    expect(errors[0]?.msg).toMatch(/unreachable/);
  });

  it('logs at most one ERROR a minute while the shared store stays down', async () => {
    const { primary, store, clock, errors } = setup();
    opened.push(store);
    primary.down = true;
    await store.check('a', T0);
    for (let i = 0; i < 5; i++) {
      clock.ms += 10_000;
      expect(await store.probe()).toBe(false);
    }
    expect(errors).toHaveLength(1);
    clock.ms += MINUTE;
    await store.probe();
    expect(errors).toHaveLength(2);
    expect(errors[1]?.msg).toMatch(/still unreachable/);
  });

  it('goes back to the shared store once a probe succeeds, dropping the memory counts', async () => {
    const { primary, store, infos, changes } = setup();
    opened.push(store);
    primary.down = true;
    await store.recordFailure('a', T0);
    primary.down = false;
    expect(store.degraded).toBe(true);
    expect(await store.probe()).toBe(true);
    expect(store.degraded).toBe(false);
    expect(changes).toEqual([true, false]);
    expect(infos.some((msg) => /reachable again/.test(msg))).toBe(true);
    await store.recordFailure('b', T0);
    expect(await primary.check('b', T0)).toEqual({ blocked: false, tracked: true });
    expect(await store.check('a', T0)).toEqual({ blocked: false, tracked: false });
  });

  it('starts degraded when the shared store is down at start', async () => {
    const { primary, store, errors } = setup();
    opened.push(store);
    primary.down = true;
    await store.start();
    expect(store.degraded).toBe(true);
    expect(errors).toHaveLength(1);
  });

  describe('over a real redis-server', () => {
    let redis: RedisServer | undefined;
    afterEach(async () => {
      await redis?.stop();
      redis = undefined;
    });

    it('falls back while Redis is stopped and shares counts again once it is back', async () => {
      redis = await startRedisServer();
      const keyPrefix = `t:${randomUUID()}:{bf}:`;
      const primary = new RedisBruteForceStore({ url: redis.url, policy, keyPrefix });
      const other = new RedisBruteForceStore({ url: redis.url, policy, keyPrefix });
      const errors: string[] = [];
      const store = new FallbackBruteForceStore({
        primary,
        policy,
        log: { error: (_obj, msg) => errors.push(msg), info: () => undefined },
        probeIntervalMs: 3_600_000,
      });
      opened.push(store);
      try {
        await store.start();
        expect(store.degraded).toBe(false);

        await redis.stop();
        expect(await store.recordFailure('203.0.113.5', T0)).toEqual({ failures: 1 });
        expect(store.degraded).toBe(true);
        expect(errors).toHaveLength(1);

        await redis.restart();
        let back = false;
        for (let attempt = 0; attempt < 200 && !back; attempt++) {
          back = await store.probe();
          if (!back) await new Promise((resolve) => setTimeout(resolve, 25));
        }
        expect(back).toBe(true);
        await other.ping().catch(() => undefined);
        for (let i = 0; i < 4; i++) await store.recordFailure('203.0.113.5', T0);
        await waitFor(() => other.ping());
        expect(await other.recordFailure('203.0.113.5', T0)).toEqual({ failures: 5, blockedForSeconds: 30 });
      } finally {
        await other.close();
      }
    });
  });
});

async function waitFor(attempt: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      await attempt();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  throw new Error('gave up waiting');
}
