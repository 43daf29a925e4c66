import {
  applyFailure,
  checkRecord,
  describeRecord,
  isBlocked,
  isForgotten,
  sameRecord,
  strictestOf,
} from './algorithm.js';
import type {
  AttemptResult,
  BruteForcePolicy,
  BruteForceStore,
  CheckResult,
  FailureOutcome,
  FailureRecord,
  LocalBruteForceStore,
  TrackedClient,
} from './types.js';

const NOT_TRACKED: CheckResult = Object.freeze({ blocked: false, tracked: false });
const SUCCEEDED: AttemptResult = Object.freeze({ blocked: false, failures: 0 });

/**
 * Brute-force records in process memory, bounded at `maxTrackedClients` (README.md,
 * "Brute-force protection").
 *
 * Records live in two insertion-ordered Maps so eviction is O(1): `unblocked` is ordered by last failure
 * (a failure re-inserts the record at the end), `blocked` by block start. When full, the oldest record
 * that is not blocked goes first — the head of `unblocked`, or the head of `blocked` if that block has
 * already ended and is older — and a record still blocked goes only when every record is blocked. A flood
 * from many addresses thus churns through unblocked records and cannot free an attacker from its block.
 */
export class MemoryBruteForceStore implements BruteForceStore, LocalBruteForceStore {
  readonly local: LocalBruteForceStore = this;
  private readonly unblocked = new Map<string, FailureRecord>();
  private readonly blocked = new Map<string, FailureRecord>();

  /** `policy` is trusted: it comes from the validated configuration or `bruteForcePolicy()`. */
  constructor(private readonly policy: BruteForcePolicy) {}

  async check(clientKey: string, nowMs: number): Promise<CheckResult> {
    return this.checkNow(clientKey, nowMs);
  }

  async attempt(clientKey: string, nowMs: number, succeeded: boolean): Promise<AttemptResult> {
    return this.attemptNow(clientKey, nowMs, succeeded);
  }

  async recordFailure(clientKey: string, nowMs: number): Promise<FailureOutcome> {
    return this.recordFailureNow(clientKey, nowMs);
  }

  async recordSuccess(clientKey: string): Promise<void> {
    this.forget(clientKey);
  }

  async list(nowMs: number): Promise<TrackedClient[]> {
    const clients: TrackedClient[] = [];
    for (const map of [this.blocked, this.unblocked]) {
      for (const [key, record] of map) {
        if (isForgotten(record, nowMs, this.policy)) map.delete(key);
        else clients.push(describeRecord(key, record, nowMs));
      }
    }
    return clients;
  }

  async unblock(clientKey: string): Promise<boolean> {
    return this.forget(clientKey);
  }

  async size(): Promise<number> {
    return this.count();
  }

  /** Synchronous forms, for a shared store that falls back to memory while its backend is down. */
  checkNow(clientKey: string, nowMs: number): CheckResult {
    if (this.count() === 0) return NOT_TRACKED;
    const record = this.get(clientKey);
    if (record === undefined) return NOT_TRACKED;
    if (isForgotten(record, nowMs, this.policy)) {
      this.forget(clientKey);
      return NOT_TRACKED;
    }
    return checkRecord(record, nowMs, this.policy);
  }

  attemptNow(clientKey: string, nowMs: number, succeeded: boolean): AttemptResult {
    const state = this.checkNow(clientKey, nowMs);
    if (state.blocked) return state;
    if (succeeded) {
      if (state.tracked) this.forget(clientKey);
      return SUCCEEDED;
    }
    const outcome = this.recordFailureNow(clientKey, nowMs);
    return outcome.blockedForSeconds === undefined
      ? { blocked: false, failures: outcome.failures }
      : { blocked: false, failures: outcome.failures, blockedForSeconds: outcome.blockedForSeconds };
  }

  recordFailureNow(clientKey: string, nowMs: number): FailureOutcome {
    const previous = this.get(clientKey);
    const { record, outcome } = applyFailure(previous, nowMs, this.policy);
    this.put(clientKey, record, previous !== undefined, nowMs);
    return outcome;
  }

  /** The client's record while it is live (not forgotten), else undefined; changes nothing. */
  peek(clientKey: string, nowMs: number): FailureRecord | undefined {
    const record = this.count() === 0 ? undefined : this.get(clientKey);
    return record !== undefined && !isForgotten(record, nowMs, this.policy) ? record : undefined;
  }

  /**
   * Takes what a shared store said a client's record is after an operation (undefined: it holds none), so
   * that this store, kept as the shared store's shadow, starts an outage from the last-known state.
   * `exact`: the record replaces this store's (the shared store is the truth while it answers). `stricter`:
   * it is merged field by field (strictestOf), for an answer that arrives while this store judges on its
   * own, so it cannot undo a count or a block made meanwhile.
   */
  mirror(
    clientKey: string,
    record: FailureRecord | undefined,
    nowMs: number,
    how: 'exact' | 'stricter',
  ): void {
    const current = this.count() === 0 ? undefined : this.get(clientKey);
    if (record === undefined || isForgotten(record, nowMs, this.policy)) {
      if (how === 'exact' && current !== undefined) this.forget(clientKey);
      return;
    }
    const live = current !== undefined && !isForgotten(current, nowMs, this.policy) ? current : undefined;
    const next = how === 'stricter' && live !== undefined ? strictestOf(live, record) : record;
    // A repeated answer (429s to a blocked client) leaves the record, and its place in the eviction order, as is.
    if (current !== undefined && sameRecord(current, next)) return;
    this.put(clientKey, next, current !== undefined, nowMs);
  }

  count(): number {
    return this.unblocked.size + this.blocked.size;
  }

  private get(clientKey: string): FailureRecord | undefined {
    return this.blocked.get(clientKey) ?? this.unblocked.get(clientKey);
  }

  /** Stores `record` as the client's newest, in the Map its state orders it by, within the bound. */
  private put(clientKey: string, record: FailureRecord, known: boolean, nowMs: number): void {
    if (known) this.forget(clientKey);
    else this.makeRoom(nowMs);
    (isBlocked(record, nowMs) ? this.blocked : this.unblocked).set(clientKey, record);
  }

  private forget(clientKey: string): boolean {
    const wasBlocked = this.blocked.delete(clientKey);
    return this.unblocked.delete(clientKey) || wasBlocked;
  }

  private makeRoom(nowMs: number): void {
    while (this.count() >= this.policy.maxTrackedClients) this.evictOne(nowMs);
  }

  private evictOne(nowMs: number): void {
    const oldestUnblocked = first(this.unblocked);
    const oldestBlocked = first(this.blocked);
    if (oldestBlocked === undefined) {
      if (oldestUnblocked !== undefined) this.unblocked.delete(oldestUnblocked[0]);
      return;
    }
    const [blockedKey, blockedRecord] = oldestBlocked;
    const blockEnded = !isBlocked(blockedRecord, nowMs);
    const blockEndedFirst =
      blockEnded &&
      (oldestUnblocked === undefined || blockedRecord.blockedUntilMs <= oldestUnblocked[1].lastFailureMs);
    if (oldestUnblocked === undefined || blockEndedFirst) this.blocked.delete(blockedKey);
    else this.unblocked.delete(oldestUnblocked[0]);
  }
}

function first<K, V>(map: Map<K, V>): [K, V] | undefined {
  return map.entries().next().value;
}
