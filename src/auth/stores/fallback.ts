import { Fallback, type FallbackLogger } from '../../state/fallback.js';
import { MemoryBruteForceStore } from './memory.js';
import type {
  AttemptResult,
  BruteForcePolicy,
  BruteForceStore,
  CheckResult,
  FailureOutcome,
  FailureRecord,
  RecordObserver,
  TrackedClient,
} from './types.js';

/** A store shared between replicas (Redis), which can be down. */
export interface SharedBruteForceStore extends BruteForceStore {
  /** Where it lives, without credentials, for logs and readiness. */
  readonly description: string;
  /** Resolves when the store answers, rejects otherwise (within its own timeout). */
  ping(): Promise<void>;
  /** Tells `observer` what the store holds for a client whenever a reply shows it (no extra round trip). */
  observe(observer: RecordObserver): void;
  /**
   * Merges each record into the store's own for that client, field by field (algorithm.ts strictestOf);
   * the merged records go to the observer.
   */
  merge(records: ReadonlyArray<readonly [string, FailureRecord]>, nowMs: number): Promise<void>;
}

export type StoreLogger = FallbackLogger;

export interface FallbackStoreOptions {
  primary: SharedBruteForceStore;
  /** For the memory store used while the primary is down. */
  policy: BruteForcePolicy;
  log: StoreLogger;
  /** Called on every switch: true when falling back to memory, false when the primary is back. */
  onDegradedChange?: (degraded: boolean) => void;
  /** Clock for log throttling and for writing back outage counts; defaults to Date.now. */
  now?: () => number;
  /** How often to check whether the primary is back (default 1000 ms). */
  probeIntervalMs?: number;
  /** At most one ERROR per this interval while degraded (default one a minute, README, "When Redis is down or slow"). */
  errorLogIntervalMs?: number;
}

/** Clients written back per merge call when the primary returns (each call one round trip). */
const WRITE_BACK_BATCH = 1000;

/**
 * The brute-force store on the generic fallback (src/state/fallback.ts): while the shared store is down,
 * valid keys keep passing and invalid keys keep getting 401, and the limit keeps holding for what this
 * replica has seen (README, "When Redis is down or slow"):
 *
 * - The memory store is a shadow of the shared one: every record a shared-store reply shows (the attempt
 *   script returns the client's record with its verdict) is mirrored into it, bounded like any memory store.
 *   An outage thus starts from the last-known counts and blocks, not from nothing: a block the shared store
 *   holds stays in force, and a count goes on from where it was.
 * - Clients counted in memory during the outage are written back when the shared store answers again, merged
 *   field by field with what it holds, before this replica uses it again: a block is never shortened and a
 *   count never lost by a reconnect.
 */
export class FallbackBruteForceStore implements BruteForceStore {
  private readonly fallback: Fallback<BruteForceStore>;
  private readonly shadow: MemoryBruteForceStore;
  /**
   * Clients whose memory record changed while degraded: what must be written back. Kept to the memory
   * store's bound: keys it has since evicted are pruned when the set outgrows it.
   */
  private readonly changedInOutage = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly options: FallbackStoreOptions) {
    const { primary, policy } = options;
    this.now = options.now ?? Date.now;
    this.shadow = new MemoryBruteForceStore(policy);
    primary.observe({
      // An answer that arrives once this replica judges on its own (a reply sent before the outage) cannot
      // undo what memory counted meanwhile: merged, not replaced.
      held: (clientKey, record, nowMs) =>
        this.shadow.mirror(clientKey, record, nowMs, this.fallback.degraded ? 'stricter' : 'exact'),
      gone: (clientKey) => {
        if (!this.fallback.degraded) this.shadow.mirror(clientKey, undefined, 0, 'exact');
      },
    });
    const outage = this.outageView();
    this.fallback = new Fallback<BruteForceStore>({
      primary,
      ping: () => primary.ping(),
      createMemory: () => outage,
      freshMemoryOnRecover: false,
      writeBack: {
        pending: () => this.changedInOutage.size > 0,
        write: () => this.writeBackSome(),
      },
      description: primary.description,
      name: 'Brute-force store',
      degradedNote:
        'authentication keeps working from the last-known counts; counts are per replica meanwhile',
      recoveredNote: 'counts and blocks made meanwhile written back; shared across replicas again',
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

  /**
   * The shadow as the fallback's memory store: it judges synchronously, as the memory store always does (no
   * await between check and record), and notes each client it counts for the write-back in the same step.
   */
  private outageView(): BruteForceStore {
    const shadow = this.shadow;
    const changed = (clientKey: string) => {
      this.changedInOutage.add(clientKey);
      if (this.changedInOutage.size > this.options.policy.maxTrackedClients) this.pruneChanged();
    };
    return {
      check: (clientKey, nowMs) => shadow.check(clientKey, nowMs),
      attempt: async (clientKey, nowMs, succeeded) => {
        const result = shadow.attemptNow(clientKey, nowMs, succeeded);
        if (!result.blocked && !succeeded) changed(clientKey);
        return result;
      },
      recordFailure: async (clientKey, nowMs) => {
        const outcome = shadow.recordFailureNow(clientKey, nowMs);
        changed(clientKey);
        return outcome;
      },
      recordSuccess: (clientKey) => shadow.recordSuccess(clientKey),
      list: (nowMs) => shadow.list(nowMs),
      unblock: (clientKey) => shadow.unblock(clientKey),
      size: () => shadow.size(),
    };
  }

  private pruneChanged(): void {
    const nowMs = this.now();
    for (const clientKey of this.changedInOutage) {
      if (this.shadow.peek(clientKey, nowMs) === undefined) this.changedInOutage.delete(clientKey);
    }
  }

  /**
   * Writes one batch of the clients counted during the outage to the primary, merged with what it holds
   * (the merged records come back into the shadow through the observer). A batch that fails is kept for
   * the next probe.
   */
  private async writeBackSome(): Promise<void> {
    const nowMs = this.now();
    const batch: Array<[string, FailureRecord]> = [];
    for (const clientKey of this.changedInOutage) {
      this.changedInOutage.delete(clientKey);
      const record = this.shadow.peek(clientKey, nowMs);
      if (record !== undefined) batch.push([clientKey, record]);
      if (batch.length >= WRITE_BACK_BATCH) break;
    }
    if (batch.length === 0) return;
    try {
      await this.options.primary.merge(batch, nowMs);
    } catch (error) {
      for (const [clientKey] of batch) this.changedInOutage.add(clientKey);
      throw error;
    }
  }
}
