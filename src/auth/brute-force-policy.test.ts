import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.js';
import { DEFAULT_BRUTE_FORCE_POLICY, bruteForcePolicy, bruteForcePolicyOf } from './brute-force-policy.js';

describe('brute-force policy', () => {
  it('defaults to the values README.md documents', () => {
    expect(DEFAULT_BRUTE_FORCE_POLICY).toEqual({
      maxFailedAttempts: 5,
      ttlSeconds: 900,
      initialBlockSeconds: 30,
      blockMultiplier: 2,
      maxBlockSeconds: 3600,
      maxTrackedClients: 100_000,
    });
  });

  it('takes every field from its configuration setting', () => {
    const { config } = loadConfig({
      env: {
        BRUTE_FORCE_MAX_FAILED_ATTEMPTS: '3',
        BRUTE_FORCE_TTL_SECONDS: '60',
        BRUTE_FORCE_INITIAL_BLOCK_SECONDS: '7',
        BRUTE_FORCE_BLOCK_MULTIPLIER: '1.5',
        BRUTE_FORCE_MAX_BLOCK_SECONDS: '90',
        BRUTE_FORCE_MAX_TRACKED: '11',
      },
      cli: new Map(),
    });
    expect(bruteForcePolicyOf(config.auth.brute_force_protection)).toEqual({
      maxFailedAttempts: 3,
      ttlSeconds: 60,
      initialBlockSeconds: 7,
      blockMultiplier: 1.5,
      maxBlockSeconds: 90,
      maxTrackedClients: 11,
    });
  });

  it('is the default policy for a configuration that sets nothing', () => {
    const { config } = loadConfig({ env: {}, cli: new Map() });
    expect(bruteForcePolicyOf(config.auth.brute_force_protection)).toEqual(DEFAULT_BRUTE_FORCE_POLICY);
  });

  it('builds a policy in code from the defaults and overrides', () => {
    expect(bruteForcePolicy({ maxFailedAttempts: 2, blockMultiplier: 3 })).toEqual({
      ...DEFAULT_BRUTE_FORCE_POLICY,
      maxFailedAttempts: 2,
      blockMultiplier: 3,
    });
  });

  it.each([
    [{ maxFailedAttempts: 0 }, 'brute-force policy maxFailedAttempts: expected integer >= 1'],
    [{ ttlSeconds: 0 }, 'brute-force policy ttlSeconds: expected integer >= 1'],
    [{ ttlSeconds: Number.NaN }, 'brute-force policy ttlSeconds: expected integer'],
    [{ blockMultiplier: 0.5 }, 'brute-force policy blockMultiplier: expected number >= 1'],
    [{ maxBlockSeconds: Number.POSITIVE_INFINITY }, 'brute-force policy maxBlockSeconds: expected integer'],
    [{ maxTrackedClients: 1.5 }, 'brute-force policy maxTrackedClients: expected integer'],
  ])('rejects %o in code with the config schema’s range', (overrides, message) => {
    expect(() => bruteForcePolicy(overrides)).toThrow(new RangeError(message));
  });
});
