import type { Redis } from 'ioredis';
import { checkRecord, describeRecord, secondsLeft } from './algorithm.js';
import {
  ATTEMPT_SCRIPT,
  CHECK_SCRIPT,
  FAILURE_SCRIPT,
  FORGET_SCRIPT,
  LIST_PAGE_SCRIPT,
  MERGE_SCRIPT,
  SIZE_SCRIPT,
} from './redis-scripts.js';
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
import { RedisConnection, describeRedisUrl } from '../../state/redis-connection.js';

export { describeRedisUrl };

export interface RedisStoreOptions {
  /** `redis://[:password@]host:port/db` or `rediss://…`: the store opens (and closes) its own connection. */
  url?: string;
  /**
   * A connection shared with other stores (the state store, src/state/store.ts): used instead of `url`, and
   * left open by `close()` — its owner closes it.
   */
  connection?: RedisConnection;
  policy: BruteForcePolicy;
  /**
   * Prefix of every key the store writes. The default holds a hash tag so all keys share one slot; replicas
   * that should share counts must use the same prefix (and policy).
   */
  keyPrefix?: string;
  /** Longest wait for one command, with `url`: a stalled Redis must not stall authentication (default 250 ms). */
  commandTimeoutMs?: number;
  /** Longest wait to (re)connect, with `url` (default 1000 ms). */
  connectTimeoutMs?: number;
}

export const DEFAULT_REDIS_KEY_PREFIX = 'llm-interactive-proxy:{brute-force}:';
/** Records per list script call: each call holds Redis for well under a millisecond. */
const LIST_PAGE_SIZE = 500;
/** Records per merge script call (writing back a replica's outage), for the same reason. */
const MERGE_PAGE_SIZE = 200;

type Reply = string | null;
interface ScriptCommands {
  bfCheck(k1: string, k2: string, k3: string, ...argv: string[]): Promise<Reply[] | null>;
  bfFailure(k1: string, k2: string, k3: string, k4: string, ...argv: string[]): Promise<string[]>;
  bfAttempt(k1: string, k2: string, k3: string, k4: string, ...argv: string[]): Promise<string[]>;
  bfMerge(k1: string, k2: string, k3: string, k4: string, ...argv: string[]): Promise<string[]>;
  bfForget(k1: string, k2: string, k3: string, ...argv: string[]): Promise<number>;
  bfList(k1: string, k2: string, k3: string, ...argv: string[]): Promise<string[]>;
  bfSize(k1: string, k2: string, k3: string, ...argv: string[]): Promise<number>;
}

function toRecord(fields: readonly Reply[], offset = 0): FailureRecord {
  return {
    failures: Number(fields[offset]),
    lastFailureMs: Number(fields[offset + 1]),
    blockedUntilMs: Number(fields[offset + 2]),
    lastBlockSeconds: Number(fields[offset + 3]),
  };
}

/**
 * Brute-force records in Redis, shared by every replica pointed at the same server (README.md, "The Redis
 * store"). Each operation is one Lua script — one atomic round trip — running the same algorithm as the
 * memory store, bound included. Commands fail fast rather than queue: while Redis is down or slow, callers get an error
 * within `commandTimeoutMs` and can fall back (see `FallbackBruteForceStore`). Every reply that says what a
 * client's record now is goes to the observer (`observe`), so a fallback can keep a shadow of it at no
 * extra round trip.
 */
export class RedisBruteForceStore implements BruteForceStore {
  readonly description: string;
  private readonly connection: RedisConnection;
  /** Whether `close()` closes the connection (it opened it from `url`). */
  private readonly ownsConnection: boolean;
  private readonly client: Redis & ScriptCommands;
  private readonly recordPrefix: string;
  private readonly indexKeys: [unblocked: string, blocked: string];
  private readonly seqKey: string;
  private readonly policyArgs: string[];
  private observer: RecordObserver | null = null;

  constructor(private readonly options: RedisStoreOptions) {
    const prefix = options.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX;
    this.recordPrefix = `${prefix}c:`;
    this.indexKeys = [`${prefix}unblocked`, `${prefix}blocked`];
    this.seqKey = `${prefix}seq`;
    const { policy } = options;
    this.policyArgs = [
      policy.maxFailedAttempts,
      policy.ttlSeconds,
      policy.initialBlockSeconds,
      policy.blockMultiplier,
      policy.maxBlockSeconds,
      policy.maxTrackedClients,
    ].map(String);
    if (options.connection) {
      this.connection = options.connection;
      this.ownsConnection = false;
    } else {
      if (options.url === undefined) throw new Error('RedisBruteForceStore: give a url or a connection');
      this.connection = new RedisConnection({
        url: options.url,
        ...(options.commandTimeoutMs !== undefined ? { commandTimeoutMs: options.commandTimeoutMs } : {}),
        ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      });
      this.ownsConnection = true;
    }
    this.description = this.connection.description;
    const connection = this.connection;
    connection.defineScript('bfCheck', 3, CHECK_SCRIPT);
    connection.defineScript('bfFailure', 4, FAILURE_SCRIPT);
    connection.defineScript('bfForget', 3, FORGET_SCRIPT);
    connection.defineScript('bfAttempt', 4, ATTEMPT_SCRIPT);
    connection.defineScript('bfList', 3, LIST_PAGE_SCRIPT);
    connection.defineScript('bfSize', 3, SIZE_SCRIPT);
    connection.defineScript('bfMerge', 4, MERGE_SCRIPT);
    this.client = connection.client as Redis & ScriptCommands;
  }

  /** Resolves when Redis answers PING within the command timeout; rejects otherwise. */
  ping(): Promise<void> {
    return this.connection.ping();
  }

  /** See `RedisConnection.waitUntilReady`. */
  waitUntilReady(timeoutMs: number, untilFirstError = false): Promise<boolean> {
    return this.connection.waitUntilReady(timeoutMs, untilFirstError);
  }

  /**
   * Tells `observer` a client's record whenever a reply says what it now is, after the operation and before
   * its caller hears of it. One observer; a later call replaces it.
   */
  observe(observer: RecordObserver): void {
    this.observer = observer;
  }

  async check(clientKey: string, nowMs: number): Promise<CheckResult> {
    await this.connected();
    const fields = await this.client.bfCheck(
      this.recordKey(clientKey),
      ...this.indexKeys,
      this.recordPrefix,
      clientKey,
      String(nowMs),
      String(this.options.policy.ttlSeconds),
    );
    const record = fields === null ? undefined : toRecord(fields);
    if (record === undefined) this.observer?.gone(clientKey);
    else this.observer?.held(clientKey, record, nowMs);
    return checkRecord(record, nowMs, this.options.policy);
  }

  async recordFailure(clientKey: string, nowMs: number): Promise<FailureOutcome> {
    await this.connected();
    const reply = await this.client.bfFailure(...this.failureArgs(clientKey, nowMs));
    this.observer?.held(clientKey, toRecord(reply, 2), nowMs);
    const [failures, blockSeconds] = reply;
    const outcome: FailureOutcome = { failures: Number(failures) };
    if (blockSeconds !== '') outcome.blockedForSeconds = Number(blockSeconds);
    return outcome;
  }

  async attempt(clientKey: string, nowMs: number, succeeded: boolean): Promise<AttemptResult> {
    await this.connected();
    const reply = await this.client.bfAttempt(...this.failureArgs(clientKey, nowMs), succeeded ? '1' : '0');
    const [state, blockSeconds] = reply;
    if (state === 'ok') {
      this.observer?.gone(clientKey);
      return { blocked: false, failures: 0 };
    }
    const record = toRecord(reply, 2);
    this.observer?.held(clientKey, record, nowMs);
    if (state === 'blocked') return { blocked: true, retryAfterSeconds: secondsLeft(record, nowMs) };
    const result: AttemptResult = { blocked: false, failures: record.failures };
    if (blockSeconds !== '' && blockSeconds !== undefined) result.blockedForSeconds = Number(blockSeconds);
    return result;
  }

  /**
   * Merges each record into the one Redis holds for its client, field by field (MERGE_SCRIPT), in pages;
   * the merged records go to the observer. For a replica's outage counts when Redis returns.
   */
  async merge(records: ReadonlyArray<readonly [string, FailureRecord]>, nowMs: number): Promise<void> {
    await this.connected();
    for (let start = 0; start < records.length; start += MERGE_PAGE_SIZE) {
      const page = records
        .slice(start, start + MERGE_PAGE_SIZE)
        .flatMap(([clientKey, r]) => [
          clientKey,
          ...[r.failures, r.lastFailureMs, r.blockedUntilMs, r.lastBlockSeconds].map(String),
        ]);
      const [unblocked, blocked] = this.indexKeys;
      const merged = await this.client.bfMerge(
        unblocked,
        unblocked,
        blocked,
        this.seqKey,
        ...this.failureArgv('', nowMs),
        ...page,
      );
      for (let i = 0; i + 4 < merged.length; i += 5) {
        this.observer?.held(merged[i] as string, toRecord(merged, i + 1), nowMs);
      }
    }
  }

  async recordSuccess(clientKey: string): Promise<void> {
    await this.forget(clientKey);
  }

  async unblock(clientKey: string): Promise<boolean> {
    return this.forget(clientKey);
  }

  /** Every tracked client, blocked first, read in pages (see LIST_PAGE_SCRIPT). */
  async list(nowMs: number): Promise<TrackedClient[]> {
    await this.connected();
    const clients: TrackedClient[] = [];
    for (const set of ['b', 'u']) {
      let after = '-inf';
      do {
        const [last, ...flat] = await this.client.bfList(
          this.indexKeys[0],
          ...this.indexKeys,
          this.recordPrefix,
          String(nowMs),
          String(this.options.policy.ttlSeconds),
          set,
          after,
          String(LIST_PAGE_SIZE),
        );
        for (let i = 0; i + 4 < flat.length; i += 5) {
          clients.push(describeRecord(flat[i] as string, toRecord(flat, i + 1), nowMs));
        }
        after = last ?? '';
      } while (after !== '');
    }
    return clients;
  }

  async size(): Promise<number> {
    await this.connected();
    return this.client.bfSize(this.indexKeys[0], ...this.indexKeys, this.recordPrefix);
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.connection.close();
  }

  private async forget(clientKey: string): Promise<boolean> {
    await this.connected();
    const removed = await this.client.bfForget(
      this.recordKey(clientKey),
      ...this.indexKeys,
      this.recordPrefix,
      clientKey,
    );
    this.observer?.gone(clientKey);
    return removed === 1;
  }

  private connected(): Promise<void> {
    return this.connection.connected();
  }

  /** KEYS and ARGV of the scripts built on FAILURE_LOGIC (see redis-scripts.ts). */
  private failureArgs(clientKey: string, nowMs: number): [string, string, string, string, ...string[]] {
    const [unblocked, blocked] = this.indexKeys;
    return [
      this.recordKey(clientKey),
      unblocked,
      blocked,
      this.seqKey,
      ...this.failureArgv(clientKey, nowMs),
    ];
  }

  private failureArgv(clientKey: string, nowMs: number): string[] {
    return [this.recordPrefix, clientKey, String(nowMs), ...this.policyArgs];
  }

  private recordKey(clientKey: string): string {
    return `${this.recordPrefix}${clientKey}`;
  }
}
