import { Redis, type RedisOptions } from 'ioredis';
import { checkRecord, describeRecord, secondsLeft } from './algorithm.js';
import {
  ATTEMPT_SCRIPT,
  CHECK_SCRIPT,
  FAILURE_SCRIPT,
  FORGET_SCRIPT,
  LIST_PAGE_SCRIPT,
  SIZE_SCRIPT,
} from './redis-scripts.js';
import type {
  AttemptResult,
  BruteForcePolicy,
  BruteForceStore,
  CheckResult,
  FailureOutcome,
  FailureRecord,
  TrackedClient,
} from './types.js';

export interface RedisStoreOptions {
  /** `redis://[:password@]host:port/db` or `rediss://…`. */
  url: string;
  policy: BruteForcePolicy;
  /**
   * Prefix of every key the store writes. The default holds a hash tag so all keys share one slot; replicas
   * that should share counts must use the same prefix (and policy).
   */
  keyPrefix?: string;
  /** Longest wait for one command: a stalled Redis must not stall authentication (default 250 ms). */
  commandTimeoutMs?: number;
  /** Longest wait to (re)connect (default 1000 ms). */
  connectTimeoutMs?: number;
}

export const DEFAULT_REDIS_KEY_PREFIX = 'llm-interactive-proxy:{brute-force}:';
const DEFAULT_COMMAND_TIMEOUT_MS = 250;
const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
const MAX_RECONNECT_DELAY_MS = 2000;
/** Records per list script call: each call holds Redis for well under a millisecond. */
const LIST_PAGE_SIZE = 500;

type Reply = string | null;
interface ScriptCommands {
  bfCheck(k1: string, k2: string, k3: string, ...argv: string[]): Promise<Reply[] | null>;
  bfFailure(k1: string, k2: string, k3: string, k4: string, ...argv: string[]): Promise<[string, string]>;
  bfAttempt(k1: string, k2: string, k3: string, k4: string, ...argv: string[]): Promise<string[]>;
  bfForget(k1: string, k2: string, k3: string, ...argv: string[]): Promise<number>;
  bfList(k1: string, k2: string, k3: string, ...argv: string[]): Promise<string[]>;
  bfSize(k1: string, k2: string, k3: string, ...argv: string[]): Promise<number>;
}

/** The URL with any password replaced, for logs and `/internal/health`. */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '****';
    if (parsed.username && parsed.password === '') parsed.username = '****';
    return parsed.toString();
  } catch {
    return 'redis://(unparseable URL)';
  }
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
 * within `commandTimeoutMs` and can fall back (see `FallbackBruteForceStore`).
 */
export class RedisBruteForceStore implements BruteForceStore {
  readonly description: string;
  private readonly client: Redis & ScriptCommands;
  private readonly recordPrefix: string;
  private readonly indexKeys: [unblocked: string, blocked: string];
  private readonly seqKey: string;
  private readonly policyArgs: string[];
  /** Until the first connection attempt settles, commands wait for it instead of failing at once. */
  private firstConnection: Promise<boolean> | null;
  private lastConnectionError: string | null = null;

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
    this.description = describeRedisUrl(options.url);

    const redisOptions: RedisOptions = {
      commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
      connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      // Fail fast instead of queueing while disconnected, and never replay a command after a reconnect:
      // an authentication decision is only useful now.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    };
    const client = new Redis(options.url, redisOptions) as Redis & ScriptCommands;
    // Connection errors surface as rejected commands (see `connected`); the owner logs them, throttled.
    client.on('error', (err: Error) => {
      this.lastConnectionError = err.message;
    });
    client.on('ready', () => {
      this.lastConnectionError = null;
    });
    client.defineCommand('bfCheck', { numberOfKeys: 3, lua: CHECK_SCRIPT });
    client.defineCommand('bfFailure', { numberOfKeys: 4, lua: FAILURE_SCRIPT });
    client.defineCommand('bfForget', { numberOfKeys: 3, lua: FORGET_SCRIPT });
    client.defineCommand('bfAttempt', { numberOfKeys: 4, lua: ATTEMPT_SCRIPT });
    client.defineCommand('bfList', { numberOfKeys: 3, lua: LIST_PAGE_SCRIPT });
    client.defineCommand('bfSize', { numberOfKeys: 3, lua: SIZE_SCRIPT });
    this.client = client;
    this.firstConnection = this.waitUntilReady(redisOptions.connectTimeout as number, true).finally(() => {
      this.firstConnection = null;
    });
  }

  /** Resolves when Redis answers PING within the command timeout; rejects otherwise. */
  async ping(): Promise<void> {
    await this.connected();
    await this.client.ping();
  }

  /**
   * Waits for the connection to be ready, up to `timeoutMs`; false if it is not by then, or, with
   * `untilFirstError`, as soon as a connection attempt fails (a refused connection need not wait).
   */
  waitUntilReady(timeoutMs: number, untilFirstError = false): Promise<boolean> {
    if (this.client.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ready: boolean) => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        this.client.off('error', onError);
        resolve(ready);
      };
      const onReady = () => done(true);
      const onError = () => {
        if (untilFirstError) done(false);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      this.client.on('ready', onReady);
      this.client.on('error', onError);
    });
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
    return checkRecord(fields === null ? undefined : toRecord(fields), nowMs, this.options.policy);
  }

  async recordFailure(clientKey: string, nowMs: number): Promise<FailureOutcome> {
    await this.connected();
    const [failures, blockSeconds] = await this.client.bfFailure(...this.failureArgs(clientKey, nowMs));
    const outcome: FailureOutcome = { failures: Number(failures) };
    if (blockSeconds !== '') outcome.blockedForSeconds = Number(blockSeconds);
    return outcome;
  }

  async attempt(clientKey: string, nowMs: number, succeeded: boolean): Promise<AttemptResult> {
    await this.connected();
    const [state, a, b] = await this.client.bfAttempt(
      ...this.failureArgs(clientKey, nowMs),
      succeeded ? '1' : '0',
    );
    if (state === 'blocked') {
      const retryAfterSeconds = secondsLeft(
        { failures: 0, lastFailureMs: 0, blockedUntilMs: Number(a), lastBlockSeconds: 0 },
        nowMs,
      );
      return { blocked: true, retryAfterSeconds };
    }
    if (state === 'ok') return { blocked: false, failures: 0 };
    const result: AttemptResult = { blocked: false, failures: Number(a) };
    if (b !== '' && b !== undefined) result.blockedForSeconds = Number(b);
    return result;
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
    this.client.disconnect();
  }

  private async forget(clientKey: string): Promise<boolean> {
    await this.connected();
    const removed = await this.client.bfForget(
      this.recordKey(clientKey),
      ...this.indexKeys,
      this.recordPrefix,
      clientKey,
    );
    return removed === 1;
  }

  /** Fails at once, with the reason, while there is no connection (ioredis would only say "not writeable"). */
  private async connected(): Promise<void> {
    if (this.firstConnection !== null) await this.firstConnection;
    if (this.client.status !== 'ready') {
      const reason = this.lastConnectionError ?? this.client.status;
      throw new Error(`not connected to Redis (${reason})`);
    }
  }

  /** KEYS and ARGV of the scripts built on FAILURE_LOGIC (see redis-scripts.ts). */
  private failureArgs(clientKey: string, nowMs: number): [string, string, string, string, ...string[]] {
    const [unblocked, blocked] = this.indexKeys;
    return [
      this.recordKey(clientKey),
      unblocked,
      blocked,
      this.seqKey,
      this.recordPrefix,
      clientKey,
      String(nowMs),
      ...this.policyArgs,
    ];
  }

  private recordKey(clientKey: string): string {
    return `${this.recordPrefix}${clientKey}`;
  }
}
