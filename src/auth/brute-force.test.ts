import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.js';
import { BruteForceGuard, bruteForcePolicy, type BruteForcePolicy } from './brute-force.js';
import { MemoryBruteForceStore } from './stores/memory.js';
import { RedisBruteForceStore } from './stores/redis.js';
import type { BruteForceStore } from './stores/types.js';

const SECOND = 1000;

/** A store implementation the whole suite runs against: the algorithm must not depend on where it lives. */
interface StoreKind {
  name: string;
  setup(): Promise<void>;
  create(policy: BruteForcePolicy): BruteForceStore;
  teardown(): Promise<void>;
}

let redis: RedisServer | undefined;
const STORE_KINDS: StoreKind[] = [
  {
    name: 'memory store',
    setup: async () => undefined,
    create: (policy) => new MemoryBruteForceStore(policy),
    teardown: async () => undefined,
  },
  {
    name: 'Redis store (real redis-server)',
    setup: async () => {
      redis = await startRedisServer();
    },
    // A key prefix per guard keeps the tests of one server apart.
    create: (policy) =>
      new RedisBruteForceStore({
        url: (redis as RedisServer).url,
        policy,
        keyPrefix: `t:${randomUUID()}:{bf}:`,
      }),
    teardown: async () => {
      await redis?.stop();
    },
  },
];

async function failTimes(guard: BruteForceGuard, ip: string, times: number) {
  const outcomes = [];
  for (let i = 0; i < times; i++) outcomes.push(await guard.recordFailure(ip));
  return outcomes;
}

describe.each(STORE_KINDS)('BruteForceGuard on the $name', (kind) => {
  const guards: BruteForceGuard[] = [];
  beforeAll(() => kind.setup());
  afterEach(async () => {
    await Promise.all(guards.splice(0).map((guard) => guard.close()));
  });
  afterAll(() => kind.teardown());

  /** A guard on a manual clock (the documented defaults unless overridden). */
  function guardAt(overrides: Partial<BruteForcePolicy> = {}) {
    const clock = { ms: 1_700_000_000_000 };
    const policy = bruteForcePolicy(overrides);
    const guard = new BruteForceGuard({ policy, store: kind.create(policy), now: () => clock.ms });
    guards.push(guard);
    const advance = (seconds: number) => {
      clock.ms += seconds * SECOND;
    };
    return { guard, clock, advance };
  }

  describe('timeline (defaults)', () => {
    it('counts failures 1–4 without blocking; the 5th blocks for 30 s', async () => {
      const { guard } = guardAt();
      const outcomes = await failTimes(guard, '203.0.113.9', 5);
      expect(outcomes.map((o) => o.failures)).toEqual([1, 2, 3, 4, 5]);
      expect(outcomes.slice(0, 4).every((o) => o.blockedForSeconds === undefined)).toBe(true);
      expect(outcomes[4]).toEqual({ failures: 5, blockedForSeconds: 30, clientKey: '203.0.113.9' });
      expect(await guard.check('203.0.113.9')).toEqual({ blocked: true, retryAfterSeconds: 30 });
    });

    it('reports whether a record exists while not blocked', async () => {
      const { guard } = guardAt();
      expect(await guard.check('203.0.113.9')).toEqual({ blocked: false, tracked: false });
      await guard.recordFailure('203.0.113.9');
      expect(await guard.check('203.0.113.9')).toEqual({ blocked: false, tracked: true });
    });

    it('rounds Retry-After up and never below 1 while blocked', async () => {
      const { guard, clock } = guardAt();
      await failTimes(guard, '203.0.113.9', 5);
      clock.ms += 0.4 * SECOND;
      expect(await guard.check('203.0.113.9')).toEqual({ blocked: true, retryAfterSeconds: 30 });
      clock.ms += 29.5 * SECOND;
      expect(await guard.check('203.0.113.9')).toEqual({ blocked: true, retryAfterSeconds: 1 });
      clock.ms += 0.099 * SECOND;
      expect(await guard.check('203.0.113.9')).toEqual({ blocked: true, retryAfterSeconds: 1 });
      clock.ms += 0.001 * SECOND;
      expect(await guard.check('203.0.113.9')).toEqual({ blocked: false, tracked: true });
    });

    it('re-blocks at once after a block ends, doubling up to the cap', async () => {
      const { guard, advance } = guardAt();
      await failTimes(guard, '203.0.113.9', 5);
      const lengths = [30];
      for (let i = 0; i < 9; i++) {
        advance(lengths[lengths.length - 1] as number);
        const outcome = await guard.recordFailure('203.0.113.9');
        lengths.push(outcome.blockedForSeconds as number);
      }
      expect(lengths).toEqual([30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
      expect(await guard.check('203.0.113.9')).toEqual({ blocked: true, retryAfterSeconds: 3600 });
    });

    it('applies a custom multiplier and cap', async () => {
      const { guard, advance } = guardAt({
        maxFailedAttempts: 2,
        initialBlockSeconds: 10,
        blockMultiplier: 1.5,
        maxBlockSeconds: 30,
      });
      await failTimes(guard, '203.0.113.9', 2);
      const lengths = [];
      for (const wait of [10, 15, 23, 30]) {
        advance(wait);
        lengths.push((await guard.recordFailure('203.0.113.9')).blockedForSeconds);
      }
      expect(lengths).toEqual([15, 23, 30, 30]);
    });

    it('refuses a client while blocked even before its key is known, and does not extend the block on racing failures', async () => {
      const { guard, advance } = guardAt();
      await failTimes(guard, '203.0.113.9', 5);
      advance(10);
      // A request that passed the check just before the block began and failed afterwards.
      expect(await guard.recordFailure('203.0.113.9')).toEqual({ failures: 6, clientKey: '203.0.113.9' });
      expect(await guard.check('203.0.113.9')).toEqual({ blocked: true, retryAfterSeconds: 20 });
      advance(20);
      expect((await guard.recordFailure('203.0.113.9')).blockedForSeconds).toBe(60);
    });

    it('forgets failures once the window has passed since the last one', async () => {
      const { guard, advance } = guardAt();
      await failTimes(guard, '203.0.113.9', 4);
      advance(900);
      expect(await guard.check('203.0.113.9')).toEqual({ blocked: false, tracked: true });
      advance(0.001);
      expect(await guard.check('203.0.113.9')).toEqual({ blocked: false, tracked: false });
      expect(await guard.recordFailure('203.0.113.9')).toEqual({ failures: 1, clientKey: '203.0.113.9' });
    });

    it('slides the window from the last failure', async () => {
      const { guard, advance } = guardAt();
      for (let i = 0; i < 4; i++) {
        await guard.recordFailure('203.0.113.9');
        advance(800);
      }
      expect((await guard.recordFailure('203.0.113.9')).blockedForSeconds).toBe(30);
    });

    it('forgets a past block once the window has passed since it ended', async () => {
      const { guard, advance } = guardAt();
      await failTimes(guard, '203.0.113.9', 5);
      advance(30 + 900 + 1);
      expect(await guard.recordFailure('203.0.113.9')).toEqual({ failures: 1, clientKey: '203.0.113.9' });
    });

    it('keeps escalating when a block is longer than the window', async () => {
      const { guard, advance } = guardAt({ ttlSeconds: 60 });
      await failTimes(guard, '203.0.113.9', 5);
      advance(30);
      expect((await guard.recordFailure('203.0.113.9')).blockedForSeconds).toBe(60);
      advance(60 + 59);
      expect((await guard.recordFailure('203.0.113.9')).blockedForSeconds).toBe(120);
    });

    it('clears the record on success, including the escalation', async () => {
      const { guard, advance } = guardAt();
      await failTimes(guard, '203.0.113.9', 5);
      advance(30);
      await guard.recordSuccess('203.0.113.9');
      expect(await guard.check('203.0.113.9')).toEqual({ blocked: false, tracked: false });
      const outcomes = await failTimes(guard, '203.0.113.9', 5);
      expect(outcomes.map((o) => o.blockedForSeconds)).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
        30,
      ]);
    });

    it('tracks addresses independently', async () => {
      const { guard } = guardAt();
      await failTimes(guard, '203.0.113.9', 5);
      expect((await guard.check('203.0.113.10')).blocked).toBe(false);
    });

    it('groups IPv6 clients by /64 and IPv4-mapped addresses with IPv4', async () => {
      const { guard } = guardAt();
      for (let i = 1; i <= 5; i++) await guard.recordFailure(`2001:db8:1:2::${i}`);
      expect((await guard.check('2001:db8:1:2:ffff:ffff:ffff:ffff')).blocked).toBe(true);
      expect((await guard.check('2001:db8:1:3::1')).blocked).toBe(false);

      await failTimes(guard, '::ffff:198.51.100.4', 4);
      expect((await guard.recordFailure('198.51.100.4')).blockedForSeconds).toBe(30);
      expect((await guard.check('::ffff:198.51.100.4')).blocked).toBe(true);
    });

    it('lists tracked clients with counts and seconds left', async () => {
      const { guard, advance } = guardAt();
      await failTimes(guard, '203.0.113.9', 5);
      await failTimes(guard, '2001:db8::7', 2);
      advance(12.5);
      const clients = await guard.list();
      expect(clients).toEqual(
        expect.arrayContaining([
          {
            address: '203.0.113.9',
            failures: 5,
            blocked: true,
            blockSecondsLeft: 18,
            secondsSinceLastFailure: 12,
          },
          {
            address: '2001:db8::/64',
            failures: 2,
            blocked: false,
            blockSecondsLeft: 0,
            secondsSinceLastFailure: 12,
          },
        ]),
      );
      expect(clients).toHaveLength(2);
      expect(await guard.size()).toBe(2);
    });

    it('unblocks by address or /64 key', async () => {
      const { guard } = guardAt();
      await failTimes(guard, '203.0.113.9', 5);
      for (let i = 1; i <= 5; i++) await guard.recordFailure(`2001:db8:1:2::${i}`);
      expect(await guard.unblock('203.0.113.9')).toBe(true);
      expect(await guard.check('203.0.113.9')).toEqual({ blocked: false, tracked: false });
      expect(await guard.unblock('203.0.113.9')).toBe(false);
      expect(await guard.unblock('2001:db8:1:2::/64')).toBe(true);
      expect((await guard.check('2001:db8:1:2::1')).blocked).toBe(false);
      expect(await guard.unblock('not an address')).toBe(false);
    });
  });

  describe('memory bound', () => {
    const ipv4 = (n: number) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

    it('stays within the cap under a flood and keeps blocked clients over unblocked ones', async () => {
      const { guard } = guardAt({ maxTrackedClients: 1000 });
      const attackers = Array.from({ length: 10 }, (_, i) => `203.0.113.${i + 1}`);
      for (const ip of attackers) await failTimes(guard, ip, 5);

      for (let n = 0; n < 10_000; n++) {
        await guard.recordFailure(ipv4(n));
        if (n % 1000 === 0) expect(await guard.size()).toBeLessThanOrEqual(1000);
      }
      expect(await guard.size()).toBe(1000);
      for (const ip of attackers) expect((await guard.check(ip)).blocked).toBe(true);
      // The oldest unblocked records went first: the newest flood addresses are still counted.
      expect(await guard.check(ipv4(9_999))).toEqual({ blocked: false, tracked: true });
      expect(await guard.check(ipv4(0))).toEqual({ blocked: false, tracked: false });
    });

    it('stays within the cap when every client is blocked, evicting the oldest block', async () => {
      const { guard } = guardAt({ maxTrackedClients: 1000, maxFailedAttempts: 1 });
      for (let n = 0; n < 10_000; n++) await guard.recordFailure(ipv4(n));
      expect(await guard.size()).toBe(1000);
      expect((await guard.check(ipv4(9_999))).blocked).toBe(true);
      expect((await guard.check(ipv4(0))).blocked).toBe(false);
    });

    it('evicts a record whose block has ended before a more recent unblocked one', async () => {
      const { guard, advance } = guardAt({ maxTrackedClients: 2 });
      await failTimes(guard, '203.0.113.1', 5); // blocked until +30 s
      advance(31);
      await guard.recordFailure('203.0.113.2'); // unblocked, newer than the end of the block
      await guard.recordFailure('203.0.113.3'); // needs room
      expect(await guard.check('203.0.113.1')).toEqual({ blocked: false, tracked: false });
      expect(await guard.check('203.0.113.2')).toEqual({ blocked: false, tracked: true });
    });

    it('re-orders a client on each failure so active clients are evicted last', async () => {
      const { guard } = guardAt({ maxTrackedClients: 2 });
      await guard.recordFailure('203.0.113.1');
      await guard.recordFailure('203.0.113.2');
      await guard.recordFailure('203.0.113.1');
      await guard.recordFailure('203.0.113.3');
      expect((await guard.check('203.0.113.1')).blocked).toBe(false);
      expect(await guard.check('203.0.113.1')).toEqual({ blocked: false, tracked: true });
      expect(await guard.check('203.0.113.2')).toEqual({ blocked: false, tracked: false });
    });
  });
});
