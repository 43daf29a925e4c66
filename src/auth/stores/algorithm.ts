/**
 * The brute-force algorithm (README.md, "Brute-force protection") as pure functions over one client's
 * record. Every store applies exactly these rules (a Redis store mirrors them in its Lua script), so they
 * are written to translate line by line: no hidden state, times in epoch milliseconds, whole seconds for
 * block lengths.
 */
import type { BruteForcePolicy, CheckResult, FailureOutcome, FailureRecord, TrackedClient } from './types.js';

/**
 * A record is forgotten once the window has passed since the client's last activity: its last failure, or
 * the end of its last block if later. Anchoring on the block end keeps escalation going when a block is
 * longer than the window (960 s > 900 s with the defaults); otherwise the 3600 s cap could never be reached.
 */
export function isForgotten(record: FailureRecord, nowMs: number, policy: BruteForcePolicy): boolean {
  return nowMs - Math.max(record.lastFailureMs, record.blockedUntilMs) > policy.ttlSeconds * 1000;
}

export function isBlocked(record: FailureRecord, nowMs: number): boolean {
  return nowMs < record.blockedUntilMs;
}

/** Whole seconds until the block ends, at least 1 while blocked (rounded up, as `Retry-After` promises). */
export function secondsLeft(record: FailureRecord, nowMs: number): number {
  return isBlocked(record, nowMs) ? Math.max(1, Math.ceil((record.blockedUntilMs - nowMs) / 1000)) : 0;
}

export function checkRecord(
  record: FailureRecord | undefined,
  nowMs: number,
  policy: BruteForcePolicy,
): CheckResult {
  if (record === undefined || isForgotten(record, nowMs, policy)) return { blocked: false, tracked: false };
  if (isBlocked(record, nowMs)) return { blocked: true, retryAfterSeconds: secondsLeft(record, nowMs) };
  return { blocked: false, tracked: true };
}

/**
 * One failed attempt. The `maxFailedAttempts`-th failure in the window starts a block of
 * `initialBlockSeconds`; once a client has been blocked, its next failure after the block (still within the
 * window) blocks it again at once, for the previous length times `blockMultiplier`, capped at
 * `maxBlockSeconds`. A failure during a block (a request that passed the check just before the block began)
 * is counted but neither extends nor restarts the block.
 */
export function applyFailure(
  record: FailureRecord | undefined,
  nowMs: number,
  policy: BruteForcePolicy,
): { record: FailureRecord; outcome: FailureOutcome } {
  const current = record !== undefined && !isForgotten(record, nowMs, policy) ? record : undefined;
  const failures = (current?.failures ?? 0) + 1;
  const blockSeconds = Math.min(nextBlockSeconds(current, failures, nowMs, policy), policy.maxBlockSeconds);
  if (blockSeconds === 0) {
    const updated = {
      failures,
      lastFailureMs: nowMs,
      blockedUntilMs: current?.blockedUntilMs ?? 0,
      lastBlockSeconds: current?.lastBlockSeconds ?? 0,
    };
    return { record: updated, outcome: { failures } };
  }
  const blocked = {
    failures,
    lastFailureMs: nowMs,
    blockedUntilMs: nowMs + blockSeconds * 1000,
    lastBlockSeconds: blockSeconds,
  };
  return { record: blocked, outcome: { failures, blockedForSeconds: blockSeconds } };
}

/** Length of the block this failure starts (before the cap), 0 for none. */
function nextBlockSeconds(
  current: FailureRecord | undefined,
  failures: number,
  nowMs: number,
  policy: BruteForcePolicy,
): number {
  if (current !== undefined && isBlocked(current, nowMs)) return 0;
  if (current !== undefined && current.lastBlockSeconds > 0) {
    return Math.ceil(current.lastBlockSeconds * policy.blockMultiplier);
  }
  return failures >= policy.maxFailedAttempts ? policy.initialBlockSeconds : 0;
}

/**
 * The stricter of two records of one client, field by field: the most failures, the latest failure, the
 * latest block end and the longest last block. Used where two stores' views of a client meet (a replica's
 * outage counts written back to the shared store): neither view can shorten a block or lose a count the
 * other has. Both must be live (not forgotten).
 */
export function strictestOf(a: FailureRecord, b: FailureRecord): FailureRecord {
  return {
    failures: Math.max(a.failures, b.failures),
    lastFailureMs: Math.max(a.lastFailureMs, b.lastFailureMs),
    blockedUntilMs: Math.max(a.blockedUntilMs, b.blockedUntilMs),
    lastBlockSeconds: Math.max(a.lastBlockSeconds, b.lastBlockSeconds),
  };
}

export function sameRecord(a: FailureRecord, b: FailureRecord): boolean {
  return (
    a.failures === b.failures &&
    a.lastFailureMs === b.lastFailureMs &&
    a.blockedUntilMs === b.blockedUntilMs &&
    a.lastBlockSeconds === b.lastBlockSeconds
  );
}

export function describeRecord(address: string, record: FailureRecord, nowMs: number): TrackedClient {
  const left = secondsLeft(record, nowMs);
  return {
    address,
    failures: record.failures,
    blocked: left > 0,
    blockSecondsLeft: left,
    secondsSinceLastFailure: Math.max(0, Math.floor((nowMs - record.lastFailureMs) / 1000)),
  };
}
