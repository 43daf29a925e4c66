/**
 * Brute-force protection settings, as the algorithm names them. Built from the validated configuration by
 * `bruteForcePolicyOf` (src/auth/brute-force-policy.ts), which also holds the defaults; nothing downstream
 * re-checks the ranges.
 */
export interface BruteForcePolicy {
  /** Failures within the window that start the first block. */
  maxFailedAttempts: number;
  /** Counting window in seconds; it slides from the client's last failure (or the end of its last block). */
  ttlSeconds: number;
  initialBlockSeconds: number;
  /** Each further block lasts the previous one times this factor ... */
  blockMultiplier: number;
  /** ... but never longer than this. */
  maxBlockSeconds: number;
  /** Bound on the number of clients a memory store remembers. */
  maxTrackedClients: number;
}

/** What a store remembers about one client key. Times are epoch milliseconds. */
export interface FailureRecord {
  /** Failed attempts since the record was created (the window restarts the count when it lapses). */
  failures: number;
  lastFailureMs: number;
  /** End of the current or last block; 0 if the client was never blocked in this window. */
  blockedUntilMs: number;
  /** Length of the last block in seconds, the base of the next one; 0 if never blocked. */
  lastBlockSeconds: number;
}

export type CheckResult =
  /** `tracked` says whether the store holds a record, so a success only touches the store when needed. */
  { blocked: false; tracked: boolean } | { blocked: true; retryAfterSeconds: number };

/**
 * The outcome of one authentication attempt, decided and recorded as one atomic step: refused while the
 * address is blocked (the attempt is then not recorded), else the success clears the record or the failure
 * is counted. Nothing can happen to the address's record between the check and the record, so a burst of
 * attempts (pipelined on one connection or parallel over many, on any replica) is judged exactly as the
 * same attempts one at a time.
 */
export type AttemptResult =
  { blocked: true; retryAfterSeconds: number } | ({ blocked: false } & FailureOutcome);

export interface FailureOutcome {
  /** Failures counted for the client, this one included (0 after a success). */
  failures: number;
  /** Set when this failure started a block: its length in seconds. */
  blockedForSeconds?: number;
}

/** One tracked client, for `GET /admin/auth/blocks`. */
export interface TrackedClient {
  /** The client key: an IPv4 address or an IPv6 /64 prefix. */
  address: string;
  failures: number;
  blocked: boolean;
  /** Whole seconds until the block ends (0 when not blocked). */
  blockSecondsLeft: number;
  /** Seconds since the last failure (whole, rounded down). */
  secondsSinceLastFailure: number;
}

/**
 * Where failure counts and blocks live. Promise-based so a shared (Redis) store can implement the same
 * algorithm atomically in one round trip; the memory store resolves at once.
 */
export interface BruteForceStore {
  check(clientKey: string, nowMs: number): Promise<CheckResult>;
  /** One attempt, checked and recorded atomically (see {@link AttemptResult}). */
  attempt(clientKey: string, nowMs: number, succeeded: boolean): Promise<AttemptResult>;
  recordFailure(clientKey: string, nowMs: number): Promise<FailureOutcome>;
  /** Forgets the client's failures and blocks (a successful authentication). */
  recordSuccess(clientKey: string): Promise<void>;
  list(nowMs: number): Promise<TrackedClient[]>;
  /** Forgets the client's record; false if there was none. */
  unblock(clientKey: string): Promise<boolean>;
  size(): Promise<number>;
  close?(): Promise<void>;
  /**
   * The same operations without a Promise, when the records live in this process (the memory store): the
   * auth gate then decides with no await at all between the check and the record.
   */
  readonly local?: LocalBruteForceStore;
}

/** Told what a store holds for a client after each operation that shows it (see RedisBruteForceStore.observe). */
export interface RecordObserver {
  /** The store now holds `record` for the client, as of `nowMs`. */
  held(clientKey: string, record: FailureRecord, nowMs: number): void;
  /** The store now holds no record for the client. */
  gone(clientKey: string): void;
}

/** Synchronous forms of a store whose records live in this process. */
export interface LocalBruteForceStore {
  checkNow(clientKey: string, nowMs: number): CheckResult;
  attemptNow(clientKey: string, nowMs: number, succeeded: boolean): AttemptResult;
}
