import { Fallback, type FallbackLogger } from '../../state/fallback.js';
import { MemoryBruteForceStore } from './memory.js';
import type {
  AttemptResult,
  BruteForcePolicy,
  BruteForceStore,
  CheckResult,
  FailureOutcome,
  TrackedClient,
} from './types.js';

/** A store shared between replicas (Redis), which can be down. */
export interface SharedBruteForceStore extends BruteForceStore {
  /** Where it lives, without credentials, for logs and readiness. */
  readonly description: string;
  /** Resolves when the store answers, rejects otherwise (within its own timeout). */
  ping(): Promise<void>;
}

export type StoreLogger = FallbackLogger;

export interface FallbackStoreOptions {
  primary: SharedBruteForceStore;
  /** For the memory store used while the primary is down. */
  policy: BruteForcePolicy;
  log: StoreLogger;
  /** Called on every switch: true when falling back to memory, false when the primary is back. */
  onDegradedChange?: (degraded: boolean) => void;
  /** Clock for log throttling; defaults to Date.now. */
  now?: () => number;
  /** How often to check whether the primary is back (default 1000 ms). */
  probeIntervalMs?: number;
  /** At most one ERROR per this interval while degraded (default one a minute, README, "When Redis is down or slow"). */
  errorLogIntervalMs?: number;
}

/**
 * The brute-force store on the generic fallback (src/state/fallback.ts): while the shared store is down,
 * valid keys keep passing and invalid keys keep getting 401 — with per-replica counts only. Counts made in
 * memory during the outage are dropped when it returns; the shared store is the source of truth again.
 */
export class FallbackBruteForceStore implements BruteForceStore {
  private readonly fallback: Fallback<BruteForceStore>;

  constructor(private readonly options: FallbackStoreOptions) {
    const { primary } = options;
    this.fallback = new Fallback<BruteForceStore>({
      primary,
      ping: () => primary.ping(),
      createMemory: () => new MemoryBruteForceStore(options.policy),
      description: primary.description,
      name: 'Brute-force store',
      degradedNote: 'authentication keeps working; counts are per replica meanwhile',
      recoveredNote: 'counts and blocks are shared across replicas again',
      log: options.log,
      onDegradedChange: options.onDegradedChange,
      now: options.now,
      probeIntervalMs: options.probeIntervalMs,
      errorLogIntervalMs: options.errorLogIntervalMs,
    });
  }

  get degraded(): boolean {
    return this.fallback.degraded;
  }

  get description(): string {
    return this.options.primary.description;
  }

  /** Checks the primary once, so a proxy started while Redis is down starts degraded (and says so). */
  start(): Promise<void> {
    return this.fallback.start();
  }

  check(clientKey: string, nowMs: number): Promise<CheckResult> {
    return this.fallback.run((store) => store.check(clientKey, nowMs));
  }

  attempt(clientKey: string, nowMs: number, succeeded: boolean): Promise<AttemptResult> {
    return this.fallback.run((store) => store.attempt(clientKey, nowMs, succeeded));
  }

  recordFailure(clientKey: string, nowMs: number): Promise<FailureOutcome> {
    return this.fallback.run((store) => store.recordFailure(clientKey, nowMs));
  }

  recordSuccess(clientKey: string): Promise<void> {
    return this.fallback.run((store) => store.recordSuccess(clientKey));
  }

  list(nowMs: number): Promise<TrackedClient[]> {
    return this.fallback.run((store) => store.list(nowMs));
  }

  unblock(clientKey: string): Promise<boolean> {
    return this.fallback.run((store) => store.unblock(clientKey));
  }

  size(): Promise<number> {
    return this.fallback.run((store) => store.size());
  }

  /** See `Fallback.probe`. */
  probe(): Promise<boolean> {
    return this.fallback.probe();
  }

  async close(): Promise<void> {
    this.fallback.close();
    await this.options.primary.close?.();
  }
}
