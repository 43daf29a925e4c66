import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Fallback } from './fallback.js';
import { MemoryIdleEntries, type IdleEntries, type IdleEntriesLimits } from './idle-entries.js';
import type { RedisConnection } from './redis-connection.js';
import { deriveKey, SealError, Sealer } from './seal.js';
import type { StateStore } from './store.js';

/**
 * Idle entries in Redis, shared by every replica on the same state store (README, "Shared state").
 *
 * Layout, under the feature's prefix `P` (one hash tag, one cluster slot):
 * - `P e:<tag>`: the sealed value, expiring `ttlSeconds` after its last read or write;
 * - `P idx`: sorted set of tags scored by last use (epoch ms), the shared bound: a write drops the tags idle
 *   past the TTL, adds its own and, past `maxEntries`, deletes the least recently used — in one Lua script.
 *
 * Nothing is in plaintext: the id (a session's key name and client id) is stored as an HMAC tag, and the value
 * is sealed with AES-256-GCM bound to that tag (seal.ts), so a value moved to another entry does not open. A
 * value that does not open reads as missing.
 */

/** KEYS: entry, index. ARGV: tag, now ms, TTL ms. The value, its idle time started again; nil if none. */
const GET_SCRIPT = `
local value = redis.call('GET', KEYS[1])
if not value then return false end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return value
`;

/** KEYS: entry, index. ARGV: entry prefix, tag, sealed value, now ms, TTL ms, idle-before ms, max. */
const SET_SCRIPT = `
local entry, index = KEYS[1], KEYS[2]
local entryPrefix, tag = ARGV[1], ARGV[2]
local max = tonumber(ARGV[7])
redis.call('SET', entry, ARGV[3], 'PX', ARGV[5])
redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. ARGV[6])
redis.call('ZADD', index, ARGV[4], tag)
local over = redis.call('ZCARD', index) - max
if over > 0 then
  local popped = redis.call('ZPOPMIN', index, over)
  for i = 1, #popped, 2 do redis.call('DEL', entryPrefix .. popped[i]) end
end
redis.call('PEXPIRE', index, ARGV[5])
return 1
`;

/** KEYS: entry, index. ARGV: tag. */
const DELETE_SCRIPT = `
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

interface ScriptCommands {
  ieGet(entry: string, index: string, tag: string, now: string, ttl: string): Promise<string | null>;
  ieSet(entry: string, index: string, ...argv: string[]): Promise<number>;
  ieDelete(entry: string, index: string, tag: string): Promise<number>;
}

export interface RedisIdleEntriesOptions {
  connection: RedisConnection;
  /** The feature's key prefix (`stateKeyPrefix('sessions')`). */
  keyPrefix: string;
  limits: IdleEntriesLimits;
  /** `PROXY_STATE_SECRET`: every replica must have the same. */
  secret: string;
  /** The feature's name, in the purposes of the keys derived from the secret. */
  feature: string;
  /** Epoch-ms clock for the bound's order; defaults to Date.now. */
  now?: () => number;
}

export class RedisIdleEntries implements IdleEntries {
  readonly description: string;
  readonly #client: Redis & ScriptCommands;
  readonly #connection: RedisConnection;
  readonly #sealer: Sealer;
  readonly #tagKey: Buffer;
  readonly #entryPrefix: string;
  readonly #indexKey: string;
  readonly #ttlMs: string;
  readonly #ttl: number;
  readonly #max: string;
  readonly #now: () => number;

  constructor(options: RedisIdleEntriesOptions) {
    const { connection, keyPrefix, limits, secret, feature } = options;
    this.description = connection.description;
    connection.defineScript('ieGet', 2, GET_SCRIPT);
    connection.defineScript('ieSet', 2, SET_SCRIPT);
    connection.defineScript('ieDelete', 2, DELETE_SCRIPT);
    this.#connection = connection;
    this.#client = connection.client as Redis & ScriptCommands;
    this.#sealer = Sealer.fromSecret(secret, `${feature} idle-entries seal v1`);
    this.#tagKey = deriveKey(secret, `${feature} idle-entries tag v1`);
    this.#entryPrefix = `${keyPrefix}e:`;
    this.#indexKey = `${keyPrefix}idx`;
    this.#ttl = Math.max(1, Math.round(limits.ttlSeconds * 1000));
    this.#ttlMs = String(this.#ttl);
    this.#max = String(limits.maxEntries);
    this.#now = options.now ?? Date.now;
  }

  ping(): Promise<void> {
    return this.#connection.ping();
  }

  async get(id: string): Promise<string | undefined> {
    await this.#connection.connected();
    const tag = this.#tag(id);
    const sealed = await this.#client.ieGet(
      this.#entryPrefix + tag,
      this.#indexKey,
      tag,
      String(this.#now()),
      this.#ttlMs,
    );
    if (sealed === null) return undefined;
    try {
      return this.#sealer.open(sealed, tag);
    } catch (error) {
      if (error instanceof SealError) return undefined;
      throw error;
    }
  }

  async set(id: string, value: string | null): Promise<void> {
    await this.#connection.connected();
    const tag = this.#tag(id);
    if (value === null) {
      await this.#client.ieDelete(this.#entryPrefix + tag, this.#indexKey, tag);
      return;
    }
    const now = this.#now();
    await this.#client.ieSet(
      this.#entryPrefix + tag,
      this.#indexKey,
      this.#entryPrefix,
      tag,
      this.#sealer.seal(value, tag),
      String(now),
      this.#ttlMs,
      String(now - this.#ttl),
      this.#max,
    );
  }

  /** Entries in the shared bound now (entries Redis has expired may count until the next write). */
  async size(): Promise<number> {
    await this.#connection.connected();
    return this.#client.zcard(this.#indexKey);
  }

  /** The id as stored: an HMAC, so Redis never holds key names or client session ids. */
  #tag(id: string): string {
    return createHmac('sha256', this.#tagKey).update(id, 'utf8').digest('base64url').slice(0, 32);
  }
}

/** Idle entries in Redis that never fail their caller: this replica's memory while Redis is down. */
export class FallbackIdleEntries implements IdleEntries {
  readonly fallback: Fallback<IdleEntries>;

  constructor(options: {
    primary: RedisIdleEntries;
    limits: IdleEntriesLimits;
    name: string;
    degradedNote: string;
    recoveredNote: string;
    log: ConstructorParameters<typeof Fallback>[0]['log'];
    onDegradedChange?: ((degraded: boolean) => void) | undefined;
    probeIntervalMs?: number | undefined;
  }) {
    const { primary } = options;
    this.fallback = new Fallback<IdleEntries>({
      primary,
      ping: () => primary.ping(),
      createMemory: () => new MemoryIdleEntries(options.limits),
      description: primary.description,
      name: options.name,
      degradedNote: options.degradedNote,
      recoveredNote: options.recoveredNote,
      log: options.log,
      onDegradedChange: options.onDegradedChange,
      probeIntervalMs: options.probeIntervalMs,
    });
  }

  get degraded(): boolean {
    return this.fallback.degraded;
  }

  start(): Promise<void> {
    return this.fallback.start();
  }

  get(id: string): Promise<string | undefined> {
    return this.fallback.run((store) => store.get(id));
  }

  set(id: string, value: string | null): Promise<void> {
    return this.fallback.run((store) => store.set(id, value));
  }

  probe(): Promise<boolean> {
    return this.fallback.probe();
  }

  close(): void {
    this.fallback.close();
  }
}

/** The sessions feature's name in key prefixes, health and the degraded gauge. */
export const SESSIONS_FEATURE = 'sessions';

/**
 * The shared idle entries of a feature: null with the memory state store (the feature keeps its own memory
 * store); with Redis, entries shared by replicas and sealed, falling back to memory while Redis is down
 * (logged, and the state store's degraded gauge set for the feature). Closed with the state store.
 */
export function createSharedIdleEntries(options: {
  store: StateStore;
  feature: string;
  limits: IdleEntriesLimits;
  /** The store's name in log lines, e.g. `Session store`. */
  name: string;
  degradedNote: string;
  recoveredNote: string;
}): FallbackIdleEntries | null {
  const { store, feature, limits } = options;
  const target = store.redisTarget(feature);
  if (target === null) return null;
  const secret = store.secret;
  if (secret === undefined)
    throw new Error('createSharedIdleEntries: a Redis state store needs the state secret');
  const entries = new FallbackIdleEntries({
    primary: new RedisIdleEntries({ ...target, limits, secret, feature }),
    limits,
    name: options.name,
    degradedNote: options.degradedNote,
    recoveredNote: options.recoveredNote,
    log: store.log,
    onDegradedChange: (degraded) => store.reportDegraded(feature, degraded),
  });
  store.onClose(() => entries.close());
  return entries;
}
