/**
 * The brute-force algorithm of SPEC §2.5 as pure functions over one client's record. Every store applies
 * exactly these rules (a Redis store mirrors them in its Lua script), so they are written to translate
 * line by line: no hidden state, times in epoch milliseconds, whole seconds for block lengths.
 */
import type { BruteForcePolicy, CheckResult, FailureOutcome, FailureRecord, TrackedClient } from './types.js';

const POLICY_RULES: ReadonlyArray<[keyof BruteForcePolicy, (value: number) => boolean, string]> = [
  ['maxFailedAttempts', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
  ['ttlSeconds', (v) => Number.isFinite(v) && v > 0, 'a number > 0'],
  ['initialBlockSeconds', (v) => Number.isFinite(v) && v > 0, 'a number > 0'],
  ['blockMultiplier', (v) => Number.isFinite(v) && v >= 1, 'a number >= 1'],
  ['maxBlockSeconds', (v) => Number.isFinite(v) && v > 0, 'a number > 0'],
  ['maxTrackedClients', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
];

/** Throws a RangeError naming the first setting out of range. */
export function validatePolicy(policy: BruteForcePolicy): void {
  for (const [name, isValid, expected] of POLICY_RULES) {
    if (!isValid(policy[name])) throw new RangeError(`brute-force policy ${name}: expected ${expected}`);
  }
}

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

/** Whole seconds until the block ends, at least 1 while blocked (SPEC §2.5.1: rounded up). */
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
