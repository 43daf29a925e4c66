/**
 * The atomic primitive behind per-key limits (README, "Shared state": limits): request and token windows,
 * concurrency slots and budget reservations, checked and taken all-or-nothing in one step — no await
 * between check and record in memory, one Lua script in Redis (limits-redis.ts) — so N replicas on one
 * Redis grant exactly what one would. Policies (which keys and labels get which limits) are not decided
 * here; a caller turns a key's policy into `LimitCheck`s.
 *
 * Every counter is a ledger: entries `(cost, expiry)` and their running total. A window entry expires when
 * it leaves the window (an exact sliding window); a concurrency slot or a budget reservation expires after
 * `leaseTtlMs`, a safety net for a replica that dies holding it — `release` is the normal way out.
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
  /** Set by `release`: a second release does nothing. */
  released: boolean;
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
  member: string;
  cost: number;
  expiresAt: number;
}

interface Ledger {
  /**
   * Sorted by `expiresAt`, oldest first, from `head` on: the entries before `head` have left (dropped in bulk
   * once they are half the array, so a window of a minute of requests costs O(1) per request, not O(n)).
   */
  entries: Entry[];
  head: number;
  total: number;
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

  /** `acquire` without a Promise: check and take in one synchronous step. */
  acquireNow(checks: readonly LimitCheck[], nowMs: number): AcquireResult {
    const remaining: number[] = [];
    for (const [index, check] of checks.entries()) {
      const used = this.usedBy(check, nowMs);
      const left = check.limit - used;
      const cost = costOf(check);
      if (cost > left) {
        return {
          granted: false,
          check: index,
          limit: check.limit,
          remaining: Math.max(0, left),
          retryAfterSeconds: this.retryAfter(check, nowMs, used, cost),
        };
      }
      remaining.push(left - cost);
    }
    const lease: Lease = { id: nextLeaseId(), checks: [...checks], released: false };
    for (const [index, check] of checks.entries()) {
      const ledger = this.ledgerOf(check.key);
      insert(ledger, {
        member: `${lease.id}#${index}`,
        cost: costOf(check),
        expiresAt: nowMs + horizonMs(check, this.leaseTtlMs),
      });
    }
    return { granted: true, lease, remaining };
  }

  releaseNow(lease: Lease, nowMs: number, actual: Settlement = {}): void {
    if (lease.released) return;
    lease.released = true;
    for (const [index, check] of lease.checks.entries()) {
      const ledger = this.ledgers.get(check.key);
      const member = `${lease.id}#${index}`;
      const settled = actual[index];
      if (check.kind === 'window') {
        // Nothing to settle: the entry stays as taken (no scan of a window that may hold a minute of requests).
        if (settled === undefined) continue;
        const entry = ledger ? find(ledger, member) : undefined;
        if (entry && ledger) {
          ledger.total += settled - entry.cost;
          entry.cost = settled;
        }
        continue;
      }
      if (ledger) remove(ledger, member);
      if (check.kind === 'budget' && nowMs < check.periodEndMs) {
        const spent = this.spentOn(check.key, nowMs);
        this.spent.set(check.key, { amount: spent + (settled ?? check.cost), until: check.periodEndMs });
      }
    }
  }

  private usedBy(check: LimitCheck, nowMs: number): number {
    const ledger = this.ledgers.get(check.key);
    const held = ledger ? trim(ledger, nowMs) : 0;
    if (ledger && ledger.entries.length === ledger.head) this.ledgers.delete(check.key);
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

  private retryAfter(check: LimitCheck, nowMs: number, used: number, cost: number): number {
    if (check.kind === 'budget') return Math.max(1, Math.ceil((check.periodEndMs - nowMs) / 1000));
    if (check.kind === 'concurrency' || cost > check.limit) {
      return check.kind === 'window' ? check.windowSeconds : 1;
    }
    const ledger = this.ledgers.get(check.key);
    const entries = ledger ? ledger.entries.slice(ledger.head) : [];
    let freed = 0;
    for (const entry of entries) {
      freed += entry.cost;
      if (used - freed + cost <= check.limit) return Math.max(1, Math.ceil((entry.expiresAt - nowMs) / 1000));
    }
    return check.windowSeconds;
  }

  private ledgerOf(key: string): Ledger {
    let ledger = this.ledgers.get(key);
    if (ledger === undefined) {
      ledger = { entries: [], head: 0, total: 0 };
      this.ledgers.set(key, ledger);
    }
    return ledger;
  }
}

/** Drops the entries that have expired; returns the total left. */
function trim(ledger: Ledger, nowMs: number): number {
  const { entries } = ledger;
  let head = ledger.head;
  while (head < entries.length && (entries[head] as Entry).expiresAt <= nowMs) {
    ledger.total -= (entries[head] as Entry).cost;
    head++;
  }
  if (head === entries.length) {
    entries.length = 0;
    head = 0;
    ledger.total = 0;
  } else if (head >= 1024 && head * 2 >= entries.length) {
    // Amortised: the array is shifted once for every `head` entries dropped.
    entries.splice(0, head);
    head = 0;
  }
  ledger.head = head;
  return ledger.total;
}

function insert(ledger: Ledger, entry: Entry): void {
  const { entries } = ledger;
  let at = entries.length;
  while (at > ledger.head && (entries[at - 1] as Entry).expiresAt > entry.expiresAt) at--;
  if (at === entries.length) entries.push(entry);
  else entries.splice(at, 0, entry);
  ledger.total += entry.cost;
}

function indexOf(ledger: Ledger, member: string): number {
  const { entries } = ledger;
  for (let at = ledger.head; at < entries.length; at++)
    if ((entries[at] as Entry).member === member) return at;
  return -1;
}

function find(ledger: Ledger, member: string): Entry | undefined {
  const at = indexOf(ledger, member);
  return at < 0 ? undefined : ledger.entries[at];
}

function remove(ledger: Ledger, member: string): void {
  const at = indexOf(ledger, member);
  if (at < 0) return;
  ledger.total -= (ledger.entries[at] as Entry).cost;
  ledger.entries.splice(at, 1);
  if (ledger.entries.length === ledger.head) {
    ledger.entries.length = 0;
    ledger.head = 0;
    ledger.total = 0;
  }
}
