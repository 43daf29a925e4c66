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

export interface StoreLogger {
  error(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

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
  /** At most one ERROR per this interval while degraded (default one a minute, README, Deployment: when Redis is down or slow). */
  errorLogIntervalMs?: number;
}

const DEFAULT_PROBE_INTERVAL_MS = 1000;
const DEFAULT_ERROR_LOG_INTERVAL_MS = 60_000;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A shared store that never fails its caller: while the primary answers, every call goes to it; the first
 * call that fails (down, or slower than its timeout) switches this replica to a memory store, so valid keys
 * keep passing and invalid keys keep getting 401 — with per-replica counts only. While degraded, requests
 * never wait on the primary: a background probe pings it and switches back once it answers. Counts made in
 * memory during the outage are dropped then; the shared store is the source of truth again.
 */
export class FallbackBruteForceStore implements BruteForceStore {
  private readonly primary: SharedBruteForceStore;
  private memory: MemoryBruteForceStore;
  private isDegraded = false;
  private lastErrorLogMs = -Infinity;
  private probeTimer: NodeJS.Timeout | null = null;
  private probing: Promise<boolean> | null = null;
  private closed = false;
  private readonly now: () => number;
  private readonly probeIntervalMs: number;
  private readonly errorLogIntervalMs: number;

  constructor(private readonly options: FallbackStoreOptions) {
    this.primary = options.primary;
    this.memory = new MemoryBruteForceStore(options.policy);
    this.now = options.now ?? Date.now;
    this.probeIntervalMs = options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    this.errorLogIntervalMs = options.errorLogIntervalMs ?? DEFAULT_ERROR_LOG_INTERVAL_MS;
  }

  get degraded(): boolean {
    return this.isDegraded;
  }

  get description(): string {
    return this.primary.description;
  }

  /** Checks the primary once, so a proxy started while Redis is down starts degraded (and says so). */
  async start(): Promise<void> {
    try {
      await this.primary.ping();
    } catch (error) {
      this.degrade(error);
    }
  }

  check(clientKey: string, nowMs: number): Promise<CheckResult> {
    return this.run((store) => store.check(clientKey, nowMs));
  }

  attempt(clientKey: string, nowMs: number, succeeded: boolean): Promise<AttemptResult> {
    return this.run((store) => store.attempt(clientKey, nowMs, succeeded));
  }

  recordFailure(clientKey: string, nowMs: number): Promise<FailureOutcome> {
    return this.run((store) => store.recordFailure(clientKey, nowMs));
  }

  recordSuccess(clientKey: string): Promise<void> {
    return this.run((store) => store.recordSuccess(clientKey));
  }

  list(nowMs: number): Promise<TrackedClient[]> {
    return this.run((store) => store.list(nowMs));
  }

  unblock(clientKey: string): Promise<boolean> {
    return this.run((store) => store.unblock(clientKey));
  }

  size(): Promise<number> {
    return this.run((store) => store.size());
  }

  /**
   * Pings the primary; switches back to it if it answers. Returns whether the primary is in use. Runs on a
   * timer while degraded; exposed so tests need not wait for the timer.
   */
  probe(): Promise<boolean> {
    this.probing ??= this.primary
      .ping()
      .then(
        () => {
          if (this.isDegraded && !this.closed) this.recover();
          return true;
        },
        (error: unknown) => {
          if (this.isDegraded) this.logUnreachable(error, 'still unreachable');
          return false;
        },
      )
      .finally(() => {
        this.probing = null;
      });
    return this.probing;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopProbing();
    await this.primary.close?.();
  }

  private async run<T>(operation: (store: BruteForceStore) => Promise<T>): Promise<T> {
    if (!this.isDegraded) {
      try {
        return await operation(this.primary);
      } catch (error) {
        this.degrade(error);
      }
    }
    return operation(this.memory);
  }

  private degrade(error: unknown): void {
    if (this.isDegraded) return;
    this.isDegraded = true;
    this.logUnreachable(error, 'unreachable');
    this.options.onDegradedChange?.(true);
    if (!this.closed && this.probeTimer === null) {
      this.probeTimer = setInterval(() => void this.probe(), this.probeIntervalMs);
      this.probeTimer.unref();
    }
  }

  private recover(): void {
    this.isDegraded = false;
    this.stopProbing();
    this.memory = new MemoryBruteForceStore(this.options.policy);
    this.options.log.info(
      { store: this.primary.description },
      'Brute-force store reachable again: counts and blocks are shared across replicas again',
    );
    this.options.onDegradedChange?.(false);
  }

  /** Throttled across flaps too: a Redis going up and down every second still logs once a minute. */
  private logUnreachable(error: unknown, state: string): void {
    const at = this.now();
    if (at - this.lastErrorLogMs < this.errorLogIntervalMs) return;
    this.lastErrorLogMs = at;
    this.options.log.error(
      { store: this.primary.description, err: messageOf(error) },
      `Brute-force store ${state}: using this replica's memory store until it returns ` +
        '(authentication keeps working; counts are per replica meanwhile)',
    );
  }

  private stopProbing(): void {
    if (this.probeTimer !== null) clearInterval(this.probeTimer);
    this.probeTimer = null;
  }
}
