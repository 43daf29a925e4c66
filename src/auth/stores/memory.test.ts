import { describe, expect, it } from 'vitest';
import { applyFailure, checkRecord, isForgotten } from './algorithm.js';
import { MemoryBruteForceStore } from './memory.js';
import { DEFAULT_BRUTE_FORCE_POLICY } from '../brute-force-policy.js';
import type { FailureRecord } from './types.js';

const policy = DEFAULT_BRUTE_FORCE_POLICY;
const T0 = 1_000_000;

describe('brute-force algorithm (pure functions a shared store mirrors)', () => {
  it('starts a record on the first failure', () => {
    expect(applyFailure(undefined, T0, policy)).toEqual({
      record: { failures: 1, lastFailureMs: T0, blockedUntilMs: 0, lastBlockSeconds: 0 },
      outcome: { failures: 1 },
    });
  });

  it('blocks on the max-th failure and escalates after the block', () => {
    const fourth: FailureRecord = { failures: 4, lastFailureMs: T0, blockedUntilMs: 0, lastBlockSeconds: 0 };
    const fifth = applyFailure(fourth, T0 + 1, policy);
    expect(fifth.record).toEqual({
      failures: 5,
      lastFailureMs: T0 + 1,
      blockedUntilMs: T0 + 1 + 30_000,
      lastBlockSeconds: 30,
    });
    expect(checkRecord(fifth.record, T0 + 1, policy)).toEqual({ blocked: true, retryAfterSeconds: 30 });
    const sixth = applyFailure(fifth.record, T0 + 1 + 30_000, policy);
    expect(sixth.outcome).toEqual({ failures: 6, blockedForSeconds: 60 });
  });

  it('does not mutate its input', () => {
    const record: FailureRecord = { failures: 4, lastFailureMs: T0, blockedUntilMs: 0, lastBlockSeconds: 0 };
    applyFailure(record, T0 + 5, policy);
    expect(record).toEqual({ failures: 4, lastFailureMs: T0, blockedUntilMs: 0, lastBlockSeconds: 0 });
  });

  it('forgets a record a window after its last activity', () => {
    const record: FailureRecord = {
      failures: 5,
      lastFailureMs: T0,
      blockedUntilMs: T0 + 30_000,
      lastBlockSeconds: 30,
    };
    expect(isForgotten(record, T0 + 930_000, policy)).toBe(false);
    expect(isForgotten(record, T0 + 930_001, policy)).toBe(true);
    expect(checkRecord(record, T0 + 930_001, policy)).toEqual({ blocked: false, tracked: false });
  });
});

describe('MemoryBruteForceStore', () => {
  it('implements the store interface at the caller’s time', async () => {
    const store = new MemoryBruteForceStore(policy);
    for (let i = 0; i < 4; i++) await store.recordFailure('a', T0);
    expect(await store.recordFailure('a', T0)).toEqual({ failures: 5, blockedForSeconds: 30 });
    expect(await store.check('a', T0 + 10_000)).toEqual({ blocked: true, retryAfterSeconds: 20 });
    expect(await store.size()).toBe(1);
    expect(await store.list(T0 + 10_000)).toEqual([
      { address: 'a', failures: 5, blocked: true, blockSecondsLeft: 20, secondsSinceLastFailure: 10 },
    ]);
    await store.recordSuccess('a');
    expect(await store.size()).toBe(0);
    expect(await store.unblock('a')).toBe(false);
  });

  it('drops forgotten records lazily on check and list', async () => {
    const store = new MemoryBruteForceStore(policy);
    await store.recordFailure('a', T0);
    await store.recordFailure('b', T0);
    expect(await store.check('a', T0 + 900_001)).toEqual({ blocked: false, tracked: false });
    expect(await store.size()).toBe(1);
    expect(await store.list(T0 + 900_001)).toEqual([]);
    expect(await store.size()).toBe(0);
  });

  it('mirrors a shared store’s record: exactly while it answers, the stricter once judging alone', () => {
    const store = new MemoryBruteForceStore({ ...policy, maxTrackedClients: 2 });
    const blocked: FailureRecord = {
      failures: 5,
      lastFailureMs: T0,
      blockedUntilMs: T0 + 30_000,
      lastBlockSeconds: 30,
    };
    const three: FailureRecord = {
      failures: 3,
      lastFailureMs: T0 + 1,
      blockedUntilMs: 0,
      lastBlockSeconds: 0,
    };
    store.mirror('a', blocked, T0, 'exact');
    expect(store.checkNow('a', T0 + 1)).toEqual({ blocked: true, retryAfterSeconds: 30 });
    store.mirror('a', three, T0 + 1, 'stricter');
    expect(store.peek('a', T0 + 1)).toEqual({ ...blocked, lastFailureMs: T0 + 1 });
    store.mirror('a', undefined, T0 + 1, 'stricter');
    expect(store.checkNow('a', T0 + 1)).toEqual({ blocked: true, retryAfterSeconds: 30 });
    store.mirror('a', three, T0 + 1, 'exact');
    expect(store.peek('a', T0 + 1)).toEqual(three);
    store.mirror('a', undefined, T0 + 1, 'exact');
    expect(store.peek('a', T0 + 1)).toBeUndefined();
    // Bounded like any record: a third client evicts the oldest unblocked one, never the blocked one.
    store.mirror('b', blocked, T0, 'exact');
    store.mirror('c', three, T0 + 1, 'exact');
    store.mirror('d', three, T0 + 1, 'exact');
    expect(store.count()).toBe(2);
    expect(store.peek('b', T0 + 1)).toEqual(blocked);
    expect(store.peek('c', T0 + 1)).toBeUndefined();
  });
});
