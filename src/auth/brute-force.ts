import { clientKeyFor, normalizeClientKey } from './client-address.js';
import { validatePolicy } from './stores/algorithm.js';
import { MemoryBruteForceStore } from './stores/memory.js';
import {
  DEFAULT_BRUTE_FORCE_POLICY,
  type BruteForcePolicy,
  type BruteForceStore,
  type CheckResult,
  type FailureOutcome,
  type TrackedClient,
} from './stores/types.js';

export { DEFAULT_BRUTE_FORCE_POLICY, type BruteForcePolicy, type CheckResult, type TrackedClient };

export interface BruteForceGuardOptions {
  policy?: Partial<BruteForcePolicy>;
  /** Defaults to a memory store built from the policy. */
  store?: BruteForceStore;
  /** Epoch milliseconds; injectable so tests control time. */
  now?: () => number;
}

/**
 * Per-client brute-force protection (SPEC §2.5): maps a peer address to its client key (IPv4 address or
 * IPv6 /64) and asks the store, which holds the algorithm, at the guard's clock.
 */
export class BruteForceGuard {
  readonly policy: Readonly<BruteForcePolicy>;
  readonly store: BruteForceStore;
  private readonly now: () => number;

  constructor(options: BruteForceGuardOptions = {}) {
    const policy = { ...DEFAULT_BRUTE_FORCE_POLICY, ...options.policy };
    validatePolicy(policy);
    this.policy = policy;
    this.store = options.store ?? new MemoryBruteForceStore(policy);
    this.now = options.now ?? Date.now;
  }

  /**
   * The same answer without a Promise, when the store can give it synchronously (the memory store);
   * undefined otherwise. Lets the auth hook finish a valid request without a microtask round trip.
   */
  checkSync(ip: string): CheckResult | undefined {
    return this.store instanceof MemoryBruteForceStore
      ? this.store.checkNow(clientKeyFor(ip), this.now())
      : undefined;
  }

  /** Whether the client at `ip` is blocked, and whether it has a record at all. */
  check(ip: string): Promise<CheckResult> {
    return this.store.check(clientKeyFor(ip), this.now());
  }

  async recordFailure(ip: string): Promise<FailureOutcome & { clientKey: string }> {
    const clientKey = clientKeyFor(ip);
    const outcome = await this.store.recordFailure(clientKey, this.now());
    return { ...outcome, clientKey };
  }

  recordSuccess(ip: string): Promise<void> {
    return this.store.recordSuccess(clientKeyFor(ip));
  }

  list(): Promise<TrackedClient[]> {
    return this.store.list(this.now());
  }

  /**
   * Forgets the record of `address` (an IPv4/IPv6 address or a `/64` key); false if it was not tracked or
   * is not an address.
   */
  async unblock(address: string): Promise<boolean> {
    const clientKey = normalizeClientKey(address);
    return clientKey === null ? false : this.store.unblock(clientKey);
  }

  size(): Promise<number> {
    return this.store.size();
  }

  async close(): Promise<void> {
    await this.store.close?.();
  }
}
