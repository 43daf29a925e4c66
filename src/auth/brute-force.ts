import { DEFAULT_BRUTE_FORCE_POLICY, bruteForcePolicy } from './brute-force-policy.js';
import { clientKeyFor, normalizeClientKey } from './client-address.js';
import { MemoryBruteForceStore } from './stores/memory.js';
import type {
  AttemptResult,
  BruteForcePolicy,
  BruteForceStore,
  CheckResult,
  FailureOutcome,
  TrackedClient,
} from './stores/types.js';

export {
  DEFAULT_BRUTE_FORCE_POLICY,
  bruteForcePolicy,
  type AttemptResult,
  type BruteForcePolicy,
  type CheckResult,
  type TrackedClient,
};

/** The guard's synchronous forms, by client address, when its store lives in this process. */
export interface LocalGuard {
  check(ip: string): CheckResult;
  /** One attempt checked and recorded with no await in between (see AttemptResult). */
  attempt(ip: string, succeeded: boolean): AttemptResult;
}

export interface BruteForceGuardOptions {
  /**
   * Trusted as given: from the loaded configuration (`bruteForcePolicyOf`) or, in code, `bruteForcePolicy()`,
   * which checks overrides against the config schema. Defaults to the schema's defaults.
   */
  policy?: BruteForcePolicy;
  /** Defaults to a memory store built from the policy. */
  store?: BruteForceStore;
  /** Epoch milliseconds; injectable so tests control time. */
  now?: () => number;
}

/**
 * Per-client brute-force protection (README.md, "Brute-force protection"): maps a peer address to its client key (IPv4 address or
 * IPv6 /64) and asks the store, which holds the algorithm, at the guard's clock.
 */
export class BruteForceGuard {
  readonly policy: Readonly<BruteForcePolicy>;
  readonly store: BruteForceStore;
  /**
   * Synchronous forms when the store keeps its records in this process (the memory store), else null: the
   * auth gate then decides a request without a microtask, and atomically by construction.
   */
  readonly local: LocalGuard | null;
  private readonly now: () => number;

  constructor(options: BruteForceGuardOptions = {}) {
    const policy = options.policy ?? DEFAULT_BRUTE_FORCE_POLICY;
    this.policy = policy;
    this.store = options.store ?? new MemoryBruteForceStore(policy);
    const now = options.now ?? Date.now;
    this.now = now;
    const local = this.store.local;
    this.local =
      local === undefined
        ? null
        : {
            check: (ip) => local.checkNow(clientKeyFor(ip), now()),
            attempt: (ip, succeeded) => local.attemptNow(clientKeyFor(ip), now(), succeeded),
          };
  }

  /** One attempt, checked and recorded atomically by the store (see AttemptResult). */
  attempt(ip: string, succeeded: boolean): Promise<AttemptResult> {
    return this.store.attempt(clientKeyFor(ip), this.now(), succeeded);
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
