import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../../test/helpers/redis-server.js';
import { FallbackBruteForceStore, type SharedBruteForceStore } from './fallback.js';
import { MemoryBruteForceStore } from './memory.js';
import { RedisBruteForceStore } from './redis.js';
import { DEFAULT_BRUTE_FORCE_POLICY } from '../brute-force-policy.js';
import type { FailureRecord, RecordObserver } from './types.js';

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
  /** Set: the next merge waits for it (a write-back in progress). */
  mergeGate: Promise<void> | null = null;
  private observer: RecordObserver | null = null;

  constructor() {
    super(policy);
  }

  async ping(): Promise<void> {
    this.guard();
  }

  observe(observer: RecordObserver): void {
    this.observer = observer;
  }

  override async check(clientKey: string, nowMs: number) {
    this.guard();
    const result = await super.check(clientKey, nowMs);
    this.tell(clientKey, nowMs);
    return result;
  }

  override async attempt(clientKey: string, nowMs: number, succeeded: boolean) {
    this.guard();
    const result = await super.attempt(clientKey, nowMs, succeeded);
    this.tell(clientKey, nowMs);
    return result;
  }

  override async recordFailure(clientKey: string, nowMs: number) {
    this.guard();
    const outcome = await super.recordFailure(clientKey, nowMs);
    this.tell(clientKey, nowMs);
    return outcome;
  }

  /** As the Redis store's merge script: field by field, the larger wins. */
  async merge(records: ReadonlyArray<readonly [string, FailureRecord]>, nowMs: number): Promise<void> {
    this.guard();
    if (this.mergeGate) await this.mergeGate;
    for (const [clientKey, record] of records) {
      this.mirror(clientKey, record, nowMs, 'stricter');
      this.tell(clientKey, nowMs);
    }
  }

  private tell(clientKey: string, nowMs: number): void {
    const record = this.peek(clientKey, nowMs);
    if (record === undefined) this.observer?.gone(clientKey);
    else this.observer?.held(clientKey, record, nowMs);
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

  it('goes back to the shared store once a probe succeeds, with the memory counts written back', async () => {
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
    expect(primary.peek('a', T0)).toEqual({
      failures: 1,
      lastFailureMs: T0,
      blockedUntilMs: 0,
      lastBlockSeconds: 0,
    });
  });

  it('keeps a block the shared store showed in force while it is down, for valid keys too', async () => {
    const { primary, store } = setup();
    opened.push(store);
    for (let i = 0; i < 5; i++) await store.attempt('a', T0, false);
    expect(await store.attempt('a', T0 + 1_000, false)).toEqual({ blocked: true, retryAfterSeconds: 29 });
    primary.down = true;
    expect(await store.attempt('a', T0 + 2_000, false)).toEqual({ blocked: true, retryAfterSeconds: 28 });
    expect(await store.attempt('a', T0 + 2_000, true)).toEqual({ blocked: true, retryAfterSeconds: 28 });
    expect(await store.check('a', T0 + 2_000)).toEqual({ blocked: true, retryAfterSeconds: 28 });
    expect(store.degraded).toBe(true);
  });

  it("counts on from the shared store's count while it is down: five failures in all block", async () => {
    const { primary, store } = setup();
    opened.push(store);
    for (let i = 1; i <= 3; i++)
      expect(await store.attempt('a', T0, false)).toEqual({ blocked: false, failures: i });
    primary.down = true;
    expect(await store.attempt('a', T0, false)).toEqual({ blocked: false, failures: 4 });
    expect(await store.attempt('a', T0, false)).toEqual({
      blocked: false,
      failures: 5,
      blockedForSeconds: 30,
    });
    expect(await store.attempt('a', T0, false)).toEqual({ blocked: true, retryAfterSeconds: 30 });
  });

  it('mirrors a success and an unblock: the shadow forgets what the shared store forgot', async () => {
    const { primary, store } = setup();
    opened.push(store);
    for (let i = 0; i < 4; i++) await store.attempt('a', T0, false);
    await store.attempt('a', T0, true);
    for (let i = 0; i < 5; i++) await store.attempt('b', T0, false);
    await primary.unblock('b');
    await store.check('b', T0);
    primary.down = true;
    expect(await store.attempt('a', T0, false)).toEqual({ blocked: false, failures: 1 });
    expect(await store.attempt('b', T0, true)).toEqual({ blocked: false, failures: 0 });
  });

  it('writes an outage block back before using the shared store again, never shortening its own', async () => {
    const { primary, store, clock } = setup();
    opened.push(store);
    // Another replica's block of 'b' (60 s, the second) that this replica never saw.
    await primary.recordFailure('b', T0);
    primary.mirror(
      'b',
      { failures: 6, lastFailureMs: T0, blockedUntilMs: T0 + 60_000, lastBlockSeconds: 60 },
      T0,
      'exact',
    );
    primary.down = true;
    for (let i = 0; i < 5; i++) await store.attempt('a', T0, false);
    for (let i = 0; i < 5; i++) await store.attempt('b', T0, false);
    primary.down = false;
    clock.ms = T0 + 10_000;
    expect(await store.probe()).toBe(true);
    expect(await store.attempt('a', T0 + 10_000, true)).toEqual({ blocked: true, retryAfterSeconds: 20 });
    expect(primary.peek('b', T0 + 10_000)).toEqual({
      failures: 6,
      lastFailureMs: T0,
      blockedUntilMs: T0 + 60_000,
      lastBlockSeconds: 60,
    });
    expect(await store.attempt('b', T0 + 10_000, true)).toEqual({ blocked: true, retryAfterSeconds: 50 });
  });

  it('writes back a failure counted while the write-back runs, before switching', async () => {
    const { primary, store } = setup();
    opened.push(store);
    primary.down = true;
    await store.attempt('a', T0, false);
    primary.down = false;
    let open!: () => void;
    primary.mergeGate = new Promise((resolve) => (open = resolve));
    const probing = store.probe();
    await new Promise((resolve) => setImmediate(resolve));
    // Still degraded while the first batch is written: this failure is counted in memory.
    for (let i = 0; i < 4; i++) await store.attempt('c', T0, false);
    expect(store.degraded).toBe(true);
    primary.mergeGate = null;
    open();
    expect(await probing).toBe(true);
    expect(store.degraded).toBe(false);
    expect(await store.attempt('c', T0, false)).toEqual({
      blocked: false,
      failures: 5,
      blockedForSeconds: 30,
    });
  });

  it('stays on memory, keeping what it must write back, when the write-back fails', async () => {
    const { primary, store } = setup();
    opened.push(store);
    primary.down = true;
    for (let i = 0; i < 5; i++) await store.attempt('a', T0, false);
    primary.down = false;
    const realMerge = primary.merge.bind(primary);
    primary.merge = async () => {
      throw new Error('Command timed out');
    };
    expect(await store.probe()).toBe(false);
    expect(store.degraded).toBe(true);
    primary.merge = realMerge;
    expect(await store.probe()).toBe(true);
    expect(await primary.check('a', T0)).toEqual({ blocked: true, retryAfterSeconds: 30 });
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

    it("holds a block through a stall and writes outage counts back, merged with Redis's", async () => {
      redis = await startRedisServer();
      const keyPrefix = `t:${randomUUID()}:{bf}:`;
      const primary = new RedisBruteForceStore({ url: redis.url, policy, keyPrefix });
      const other = new RedisBruteForceStore({ url: redis.url, policy, keyPrefix });
      const store = new FallbackBruteForceStore({
        primary,
        policy,
        log: { error: () => undefined, info: () => undefined },
        now: () => T0 + 5_000,
        probeIntervalMs: 3_600_000,
      });
      opened.push(store);
      try {
        await store.start();
        for (let i = 0; i < 5; i++) await store.attempt('203.0.113.6', T0, false);
        for (let i = 0; i < 2; i++) await store.attempt('203.0.113.7', T0, false);
        redis.pause();
        try {
          expect(await store.attempt('203.0.113.6', T0 + 1_000, true)).toEqual({
            blocked: true,
            retryAfterSeconds: 29,
          });
          expect(store.degraded).toBe(true);
          for (let i = 3; i <= 4; i++) {
            expect(await store.attempt('203.0.113.7', T0 + 1_000, false)).toEqual({
              blocked: false,
              failures: i,
            });
          }
          expect(await store.attempt('203.0.113.7', T0 + 1_000, false)).toEqual({
            blocked: false,
            failures: 5,
            blockedForSeconds: 30,
          });
        } finally {
          redis.resume();
        }
        await waitFor(async () => {
          if (!(await store.probe())) throw new Error('not back');
        });
        expect(await other.check('203.0.113.6', T0 + 5_000)).toEqual({
          blocked: true,
          retryAfterSeconds: 25,
        });
        expect(await other.check('203.0.113.7', T0 + 5_000)).toEqual({
          blocked: true,
          retryAfterSeconds: 26,
        });
        const listed = await other.list(T0 + 5_000);
        expect(listed.find((client) => client.address === '203.0.113.7')?.failures).toBe(5);
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
