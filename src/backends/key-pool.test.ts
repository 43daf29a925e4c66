import { describe, expect, it } from 'vitest';
import { KeyPool, poolEnvNames, type PoolKeyLeave } from './key-pool.js';

const keys = ['A', 'B', 'C'].map((name) => ({ name, value: `value-${name}` }));

describe('KeyPool', () => {
  it('rotates, takes a 401/403 key out, rests a 429 key for its Retry-After', () => {
    let now = 0;
    const pool = new KeyPool(keys, () => now);
    expect([pool.take(), pool.take(), pool.take(), pool.take()]).toEqual([0, 1, 2, 0]);
    pool.report(1, 401, null);
    pool.report(2, 429, 5);
    expect([pool.take(), pool.take()]).toEqual([0, 0]);
    expect(pool.view()).toEqual([
      { key: 'A', state: 'ready' },
      { key: 'B', state: 'out' },
      { key: 'C', state: 'resting' },
    ]);
    now = 5000;
    expect([pool.take(), pool.take()]).toEqual([2, 0]);
  });

  it('with every key resting, the one whose rest ends first; a 429 without Retry-After rests a second', () => {
    const now = 0;
    const pool = new KeyPool(keys.slice(0, 2), () => now);
    pool.report(0, 429, 9);
    pool.report(1, 429, null);
    expect(pool.take()).toBe(1);
  });

  it('says how long until a key is back when every usable key rests, else null', () => {
    let now = 0;
    const pool = new KeyPool(keys, () => now);
    expect(pool.restingFor()).toBeNull();
    pool.report(0, 401, null);
    pool.report(1, 429, 5);
    expect(pool.restingFor()).toBeNull();
    pool.report(2, 429, 3);
    expect(pool.restingFor()).toBe(3000);
    now = 2500;
    expect(pool.restingFor()).toBe(500);
    now = 3000;
    expect(pool.restingFor()).toBeNull();
    // Every key out: no rest to wait for (the provider's 401 reaches the client).
    const refused = new KeyPool(keys.slice(0, 1), () => now);
    refused.report(0, 403, null);
    expect(refused.restingFor()).toBeNull();
  });

  it('has a ready key while one is neither out nor resting', () => {
    let now = 0;
    const pool = new KeyPool(keys.slice(0, 2), () => now);
    expect(pool.hasReady()).toBe(true);
    pool.report(0, 401, null);
    expect(pool.hasReady()).toBe(true);
    pool.report(1, 429, 2);
    expect(pool.hasReady()).toBe(false);
    now = 2000;
    expect(pool.hasReady()).toBe(true);
  });

  it('tells each leave once, by name and place: out once, resting once per rest; and counts them', () => {
    let now = 0;
    const told: PoolKeyLeave[] = [];
    const pool = new KeyPool(
      keys,
      () => now,
      (leave) => told.push(leave),
    );
    pool.report(1, 403, null);
    pool.report(1, 401, null);
    pool.report(2, 429, 5);
    pool.report(2, 429, 5);
    pool.report(0, 200, null);
    pool.report(0, 500, null);
    now = 6000;
    pool.report(2, 429, null);
    expect(told).toEqual([
      { key: 'B', position: 2, state: 'out', status: 403 },
      { key: 'C', position: 3, state: 'resting', status: 429, restS: 5 },
      { key: 'C', position: 3, state: 'resting', status: 429, restS: 1 },
    ]);
    expect(JSON.stringify(told)).not.toContain('value-');
    expect(pool.leaves()).toEqual([
      { key: 'A', out: 0, resting: 0 },
      { key: 'B', out: 1, resting: 0 },
      { key: 'C', out: 0, resting: 2 },
    ]);
  });

  it('reads NAME, NAME_1 … NAME_N while set', () => {
    expect(poolEnvNames({ K: 'a', K_1: 'b', K_2: 'c', K_4: 'x' }, 'K')).toEqual(['K', 'K_1', 'K_2']);
    expect(poolEnvNames({ K_1: 'b' }, 'K')).toEqual(['K_1']);
    expect(poolEnvNames({}, 'K')).toEqual([]);
  });
});
