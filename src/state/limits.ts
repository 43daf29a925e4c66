/**
 * The atomic primitive behind per-key limits (README, "Shared state": limits): request and token windows,
 * concurrency slots and budget reservations, checked and taken all-or-nothing in one step — no await
 * between check and record in memory, one Lua script in Redis (limits-redis.ts) — so N replicas on one
 * Redis grant exactly what one would. Policies (which keys and labels get which limits) are not decided
 * here; a caller turns a key's policy into `LimitCheck`s.
 *
 * A concurrency slot or a budget reservation is an entry `(cost, expiry)` in its counter's ledger; it
 * expires after `leaseTtlMs`, a safety net for a replica that dies holding it — `release` is the normal way
 * out. A window (rpm, tpm) is exact in Redis (one entry per request, leaving the window 60 s after it came
 * in). In memory it is a ring of per-second buckets, so that its size is bounded however many requests a
 * minute brings (README, Teams: "exact"): a request is counted from the second it came in to the end of the
 * 60th whole second after it (60 to 61 s), so no 60 s span ever holds more than the limit.
 */

export type LimitCheck =
  /** At most `limit` cost in any `windowSeconds` (rpm: cost 1; tpm: cost the token estimate). */
  | { kind: 'window'; key: string; limit: number; windowSeconds: number; cost: number }
  /** At most `limit` leases at once (`max_concurrent`); the slot is held until `release`. */
  | { kind: 'concurrency'; key: string; limit: number }
  /**
   * Spend plus reservations never above `limit` in the period. `key` names the period (e.g.
   * `alice:2026-12`); spend is forgotten at `periodEndMs`. `cost` is reserved now, settled on `release`.
   */
  | { kind: 'budget'; key: string; limit: number; cost: number; periodEndMs: number };

/** What an acquisition holds, to be given back to `release` exactly once. */
export interface Lease {
  readonly id: string;
  readonly checks: readonly LimitCheck[];
  /** When it was acquired (epoch ms): where a memory window's bucket is settled. */
  readonly atMs?: number;
  /** Set by `release`: a second release does nothing. */
  released: boolean;
  /** Taken in Redis (limits-redis.ts): ended there, even when that waits for Redis to answer. */
  readonly shared?: true;
}

export type AcquireResult =
  | {
      granted: true;
      lease: Lease;
      /** Per check, what is left after this acquisition (for `x-ratelimit-remaining-*`). */
      remaining: number[];
    }
  | {
      granted: false;
      /** Index of the first check that refused. */
      check: number;
      limit: number;
      /** What is left of that limit now (less than the cost asked). */
      remaining: number;
      /** Whole seconds until it could be granted (window: entries leave; budget: period ends; slot: 1). */
      retryAfterSeconds: number;
    };

/**
 * Actual costs, by check index, known when the request ends: a window's entry is set to it (tpm: the real
 * tokens), a budget's reservation becomes spend of it. Checks without one keep (window) or spend (budget)
 * the amount acquired.
 */
export type Settlement = Readonly<Record<number, number>>;

export interface LimitStore {
  /** Checks every limit and, only if all allow it, takes all of them: one atomic step. */
  acquire(checks: readonly LimitCheck[], nowMs: number): Promise<AcquireResult>;
  /** Ends a lease: frees its slots, settles its reservations and windows. Idempotent per lease. */
  release(lease: Lease, nowMs: number, actual?: Settlement): Promise<void>;
  /**
   * Raises a budget counter's settled spend to at least `amount` (what the usage ledger holds for its scope
   * and period), until `periodEndMs`: a budget added by a reload counts what was spent before it existed.
   * Idempotent: replicas that all do it count the spend once.
   */
  floorSpent(key: string, amount: number, periodEndMs: number, nowMs: number): Promise<void>;
  /**
   * `acquire` decided at once, without a promise: present on a store that decides in this process (memory),
   * so that a request's limits cost it no await (docs/performance.md).
   */
  acquireNow?(checks: readonly LimitCheck[], nowMs: number): AcquireResult;
  /** `release` at once, without a promise: present with `acquireNow`. */
  releaseNow?(lease: Lease, nowMs: number, actual?: Settlement): void;
}

export interface LimitStoreOptions {
  /** How long a slot or reservation is held when never released (default 15 minutes). */
  leaseTtlMs?: number;
}

export const DEFAULT_LEASE_TTL_MS = 15 * 60_000;

/** How long a new entry of `check` lives in its ledger. */
export function horizonMs(check: LimitCheck, leaseTtlMs: number): number {
  return check.kind === 'window' ? check.windowSeconds * 1000 : leaseTtlMs;
}

/** The cost a check takes from its ledger now. */
export function costOf(check: LimitCheck): number {
  return check.kind === 'concurrency' ? 1 : check.cost;
}

interface Entry {
  lease: Lease;
  index: number;
  cost: number;
  expiresAt: number;
}

/** A concurrency or budget counter: its live leases' entries (few: those in flight) and their total. */
interface Ledger {
  entries: Entry[];
  total: number;
  /** No entry expires before this (a lower bound): the ledger is not scanned before then. */
  soonest: number;
}

/**
 * A memory window: `windowSeconds + 1` per-second buckets in a ring (slot `second % size`), each stamped with
 * its second, and their running total. Bounded: its size does not grow with the requests it counts.
 */
interface Window {
  readonly size: number;
  readonly stamps: Float64Array;
  readonly sums: Float64Array;
  total: number;
  /** The latest second seen; buckets up to `size - 1` seconds before it are live. */
  last: number;
}

let leaseCounter = 0;
/** A lease id unique in this process; Redis leases add a random part (limits-redis.ts). */
export function nextLeaseId(prefix = 'm'): string {
  leaseCounter = (leaseCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `${prefix}${leaseCounter.toString(36)}`;
}

/** One instance's limits: exact for this process, decided with no await between check and record. */
export class MemoryLimitStore implements LimitStore {
  private readonly ledgers = new Map<string, Ledger>();
  private readonly windows = new Map<string, Window>();
  private readonly spent = new Map<string, { amount: number; until: number }>();
  private readonly leaseTtlMs: number;

  constructor(options: LimitStoreOptions = {}) {
    this.leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  }

  acquire(checks: readonly LimitCheck[], nowMs: number): Promise<AcquireResult> {
    return Promise.resolve(this.acquireNow(checks, nowMs));
  }

  release(lease: Lease, nowMs: number, actual: Settlement = {}): Promise<void> {
    this.releaseNow(lease, nowMs, actual);
    return Promise.resolve();
  }

  /** How many counters this store holds (windows and ledgers): what its memory grows with. */
  get counters(): number {
    return this.windows.size + this.ledgers.size;
  }

  /**
   * `acquire` without a Promise: check and take in one synchronous step. `checks` is kept by the lease, not
   * copied: a caller passes an array it does not change afterwards.
   */
  acquireNow(checks: readonly LimitCheck[], nowMs: number): AcquireResult {
    const remaining: number[] = new Array<number>(checks.length);
    const second = Math.floor(nowMs / 1000);
    for (let index = 0; index < checks.length; index++) {
      const check = checks[index] as LimitCheck;
      const used = this.usedBy(check, nowMs, second);
      const left = check.limit - used;
      const cost = costOf(check);
      if (cost > left) {
        return {
          granted: false,
          check: index,
          limit: check.limit,
          remaining: Math.max(0, left),
          retryAfterSeconds: this.retryAfter(check, nowMs, second, used, cost),
        };
      }
      remaining[index] = left - cost;
    }
    const lease: Lease = { id: nextLeaseId(), checks, atMs: nowMs, released: false };
    for (let index = 0; index < checks.length; index++) {
      const check = checks[index] as LimitCheck;
      if (check.kind === 'window') {
        const window = this.windowOf(check, second);
        const slot = second % window.size;
        window.sums[slot] = (window.sums[slot] as number) + check.cost;
        window.total += check.cost;
        continue;
      }
      const ledger = this.ledgerOf(check.key);
      const cost = costOf(check);
      const expiresAt = nowMs + this.leaseTtlMs;
      ledger.entries.push({ lease, index, cost, expiresAt });
      ledger.total += cost;
      if (expiresAt < ledger.soonest) ledger.soonest = expiresAt;
    }
    return { granted: true, lease, remaining };
  }

  releaseNow(lease: Lease, nowMs: number, actual: Settlement = {}): void {
    if (lease.released) return;
    lease.released = true;
    const checks = lease.checks;
    for (let index = 0; index < checks.length; index++) {
      const check = checks[index] as LimitCheck;
      const settled = actual[index];
      if (check.kind === 'window') {
        // The bucket of the second it came in, while it is still in the window: nothing to scan.
        if (settled === undefined || lease.atMs === undefined) continue;
        const window = this.windows.get(check.key);
        if (window === undefined) continue;
        advance(window, Math.floor(nowMs / 1000));
        const second = Math.floor(lease.atMs / 1000);
        const slot = second % window.size;
        if (window.stamps[slot] !== second) continue;
        window.sums[slot] = (window.sums[slot] as number) + settled - check.cost;
        window.total += settled - check.cost;
        continue;
      }
      const ledger = this.ledgers.get(check.key);
      if (ledger) remove(ledger, lease, index);
      if (ledger && ledger.entries.length === 0) this.ledgers.delete(check.key);
      if (check.kind === 'budget' && nowMs < check.periodEndMs) {
        const spent = this.spentOn(check.key, nowMs);
        this.spent.set(check.key, { amount: spent + (settled ?? check.cost), until: check.periodEndMs });
      }
    }
  }

  floorSpent(key: string, amount: number, periodEndMs: number, nowMs: number): Promise<void> {
    if (nowMs < periodEndMs && this.spentOn(key, nowMs) < amount)
      this.spent.set(key, { amount, until: periodEndMs });
    return Promise.resolve();
  }

  private usedBy(check: LimitCheck, nowMs: number, second: number): number {
    if (check.kind === 'window') {
      const window = this.windows.get(check.key);
      if (window === undefined) return 0;
      advance(window, second);
      if (window.total <= 0) this.windows.delete(check.key);
      return window.total;
    }
    const ledger = this.ledgers.get(check.key);
    let held = 0;
    if (ledger) {
      trim(ledger, nowMs);
      if (ledger.entries.length === 0) this.ledgers.delete(check.key);
      held = ledger.total;
    }
    return check.kind === 'budget' ? held + this.spentOn(check.key, nowMs) : held;
  }

  private spentOn(key: string, nowMs: number): number {
    const spent = this.spent.get(key);
    if (spent === undefined) return 0;
    if (nowMs >= spent.until) {
      this.spent.delete(key);
      return 0;
    }
    return spent.amount;
  }

  private retryAfter(check: LimitCheck, nowMs: number, second: number, used: number, cost: number): number {
    if (check.kind === 'budget') return Math.max(1, Math.ceil((check.periodEndMs - nowMs) / 1000));
    if (check.kind === 'concurrency') return 1;
    const window = this.windows.get(check.key);
    if (cost > check.limit || window === undefined) return check.windowSeconds;
    // Oldest bucket first: the first second whose leaving makes room.
    let freed = 0;
    for (let s = second - window.size + 1; s <= second; s++) {
      const slot = s % window.size;
      if (window.stamps[slot] !== s) continue;
      freed += window.sums[slot] as number;
      if (used - freed + cost <= check.limit)
        return Math.max(1, Math.ceil(((s + window.size) * 1000 - nowMs) / 1000));
    }
    return check.windowSeconds;
  }

  /** The window of `check`, moved to `second`. */
  private windowOf(check: Extract<LimitCheck, { kind: 'window' }>, second: number): Window {
    let window = this.windows.get(check.key);
    if (window === undefined) {
      const size = check.windowSeconds + 1;
      window = {
        size,
        stamps: new Float64Array(size).fill(-1),
        sums: new Float64Array(size),
        total: 0,
        last: -1,
      };
      this.windows.set(check.key, window);
    }
    advance(window, second);
    return window;
  }

  private ledgerOf(key: string): Ledger {
    let ledger = this.ledgers.get(key);
    if (ledger === undefined) {
      ledger = { entries: [], total: 0, soonest: Number.POSITIVE_INFINITY };
      this.ledgers.set(key, ledger);
    }
    return ledger;
  }
}

/** Moves a window to `second`: the buckets that left it are emptied, and the current one stamped. */
function advance(window: Window, second: number): void {
  if (second <= window.last) return;
  const { size, stamps, sums } = window;
  if (second - window.last >= size) {
    stamps.fill(-1);
    sums.fill(0);
    window.total = 0;
  } else {
    // The slots of the seconds after `last` up to `second` held seconds that have now left.
    for (let s = window.last + 1; s <= second; s++) {
      const slot = s % size;
      if (stamps[slot] !== -1) window.total -= sums[slot] as number;
      stamps[slot] = -1;
      sums[slot] = 0;
    }
  }
  stamps[second % size] = second;
  window.last = second;
  // Floating sums of settled token counts: no drift below zero.
  if (window.total < 1e-9) window.total = Math.max(0, window.total);
}

/** Drops the entries whose lease time has passed (a replica that never released them). */
function trim(ledger: Ledger, nowMs: number): void {
  if (nowMs < ledger.soonest) return;
  const { entries } = ledger;
  let soonest = Number.POSITIVE_INFINITY;
  for (let at = entries.length - 1; at >= 0; at--) {
    const entry = entries[at] as Entry;
    if (entry.expiresAt > nowMs) {
      if (entry.expiresAt < soonest) soonest = entry.expiresAt;
      continue;
    }
    ledger.total -= entry.cost;
    entries.splice(at, 1);
  }
  ledger.soonest = soonest;
  if (entries.length === 0) ledger.total = 0;
}

function remove(ledger: Ledger, lease: Lease, index: number): void {
  const { entries } = ledger;
  for (let at = 0; at < entries.length; at++) {
    const entry = entries[at] as Entry;
    if (entry.lease !== lease || entry.index !== index) continue;
    ledger.total -= entry.cost;
    // Order does not matter: the last entry takes its place.
    const last = entries.pop() as Entry;
    if (at < entries.length) entries[at] = last;
    break;
  }
  if (entries.length === 0) ledger.total = 0;
}
