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
 *
 * Which tags have an entry is mirrored in each replica, so that a read of an id without one — nearly every
 * request, when few sessions have settings — costs no round trip: the scripts that write and delete publish
 * `+<tag>` / `-<tag>` on `P changes` (in the same script, so the message leaves Redis with the writer's own
 * reply, before that replica can answer its client), and each replica subscribes, then reads the index once.
 * The mirror errs only towards asking: a tag that expired stays until a read finds it gone; while the
 * subscription is not in step (starting, reconnecting) every read asks Redis, as it did before the mirror.
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

/**
 * KEYS: entry, index. ARGV: entry prefix, tag, sealed value, now ms, TTL ms, idle-before ms, max, channel.
 * Published: the tag written, and each tag the bound drops.
 */
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
  for i = 1, #popped, 2 do
    redis.call('DEL', entryPrefix .. popped[i])
    redis.call('PUBLISH', ARGV[8], '-' .. popped[i])
  end
end
redis.call('PEXPIRE', index, ARGV[5])
redis.call('PUBLISH', ARGV[8], '+' .. tag)
return 1
`;

/** KEYS: entry, index. ARGV: tag, channel. */
const DELETE_SCRIPT = `
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], '-' .. ARGV[1])
return 1
`;

/** How long a write waits to hear its own change on the channel (then it returns regardless). */
const CHANGE_WAIT_MS = 250;

interface ScriptCommands {
  ieGet(entry: string, index: string, tag: string, now: string, ttl: string): Promise<string | null>;
  ieSet(entry: string, index: string, ...argv: string[]): Promise<number>;
  ieDelete(entry: string, index: string, tag: string, channel: string): Promise<number>;
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
  readonly #channel: string;
  readonly #ttlMs: string;
  readonly #ttl: number;
  readonly #max: string;
  readonly #mirrorBound: number;
  readonly #now: () => number;
  /** The subscription to the changes (null once closed). */
  #subscriber: Redis | null;
  /** The tags that have an entry, as far as this replica knows; null while the mirror is not in step. */
  #present: Set<string> | null = null;
  /** Changes heard while the index is being read, applied once it is. */
  #pending: string[] | null = null;
  /** Counts the changes heard (a read that found nothing forgets its tag only if none came meanwhile). */
  #heard = 0;
  /** Counts the times the mirror was (re)started: a read of the index that is no longer the latest is dropped. */
  #syncs = 0;
  #retry: NodeJS.Timeout | null = null;
  /** Writes of this replica waiting to hear their own change. */
  readonly #waiters = new Map<string, Array<() => void>>();

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
    this.#channel = `${keyPrefix}changes`;
    this.#ttl = Math.max(1, Math.round(limits.ttlSeconds * 1000));
    this.#ttlMs = String(this.#ttl);
    this.#max = String(limits.maxEntries);
    // Tags that expired unseen stay until a read finds them gone; past this, the mirror is read afresh.
    this.#mirrorBound = 2 * limits.maxEntries + 1024;
    this.#now = options.now ?? Date.now;
    this.#subscriber = this.#subscribe();
  }

  ping(): Promise<void> {
    return this.#connection.ping();
  }

  /** False only when no entry is there, as the mirror says (no round trip); true while it is not in step. */
  get any(): boolean {
    return this.#present === null || this.#present.size > 0;
  }

  /** Whether the mirror is in step with Redis (reads of ids without an entry then cost no round trip). */
  get mirrored(): boolean {
    return this.#present !== null;
  }

  async get(id: string): Promise<string | undefined> {
    const tag = this.#tag(id);
    if (this.#present !== null && !this.#present.has(tag)) {
      // Absent as far as the mirror knows. Changes Redis sent before this request arrived are heard first
      // (a turn of the event loop: the I/O already read), then the mirror is asked again.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.#present !== null && !this.#present.has(tag)) return undefined;
    }
    await this.#connection.connected();
    const present = this.#present;
    const heard = this.#heard;
    const sealed = await this.#client.ieGet(
      this.#entryPrefix + tag,
      this.#indexKey,
      tag,
      String(this.#now()),
      this.#ttlMs,
    );
    if (sealed === null) {
      // Gone (expired, or dropped unheard): forgotten, unless a change came meanwhile.
      if (present !== null && present === this.#present && heard === this.#heard) present.delete(tag);
      return undefined;
    }
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
      // Forgotten when the change is heard: a write by another replica may follow it.
      await this.#client.ieDelete(this.#entryPrefix + tag, this.#indexKey, tag, this.#channel);
      return;
    }
    // Known at once on this replica (its next read must not miss it); the others hear it.
    this.#hear(`+${tag}`);
    const now = this.#now();
    const heard = this.#subscriber !== null && this.#present !== null ? this.#awaitChange(`+${tag}`) : null;
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
      this.#channel,
    );
    // Returns once this replica's own subscription heard the change too: Redis sent it to every replica in
    // the same pass, so the others have it by the time this one answers its client (bounded wait).
    if (heard !== null) await heard;
  }

  /** Resolves when `change` comes on the channel, or after the command timeout at most. */
  #awaitChange(change: string): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, CHANGE_WAIT_MS);
      timer.unref();
      const waiters = this.#waiters.get(change);
      if (waiters === undefined) this.#waiters.set(change, [done]);
      else waiters.push(done);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  /** Entries in the shared bound now (entries Redis has expired may count until the next write). */
  async size(): Promise<number> {
    await this.#connection.connected();
    return this.#client.zcard(this.#indexKey);
  }

  /** Ends the subscription (the shared connection is its owner's to close). */
  close(): void {
    const subscriber = this.#subscriber;
    this.#subscriber = null;
    this.#outOfStep();
    subscriber?.disconnect();
  }

  /** The id as stored: an HMAC, so Redis never holds key names or client session ids. */
  #tag(id: string): string {
    return createHmac('sha256', this.#tagKey).update(id, 'utf8').digest('base64url').slice(0, 32);
  }

  /** A connection of its own for the changes: subscribed again, and the index read again, on every connect. */
  #subscribe(): Redis {
    const subscriber = this.#client.duplicate({ autoResubscribe: false });
    subscriber.on('error', () => undefined);
    subscriber.on('message', (_channel: string, message: string) => {
      this.#hear(message);
      const waiters = this.#waiters.get(message);
      if (waiters === undefined) return;
      this.#waiters.delete(message);
      for (const done of waiters) done();
    });
    subscriber.on('ready', () => void this.#sync(subscriber));
    subscriber.on('close', () => this.#outOfStep());
    return subscriber;
  }

  #outOfStep(): void {
    this.#syncs++;
    this.#present = null;
    this.#pending = null;
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#retry = null;
  }

  /** Subscribes, then reads the index; the changes heard meanwhile are applied on top, in order. */
  async #sync(subscriber: Redis): Promise<void> {
    this.#outOfStep();
    const sync = this.#syncs;
    this.#pending = [];
    try {
      await subscriber.subscribe(this.#channel);
      await this.#connection.connected();
      const tags = await this.#client.zrange(this.#indexKey, 0, -1);
      if (sync !== this.#syncs || this.#subscriber !== subscriber) return;
      const present = new Set(tags);
      for (const change of this.#pending) apply(present, change);
      this.#pending = null;
      this.#present = present;
    } catch {
      if (sync !== this.#syncs || this.#subscriber !== subscriber) return;
      // Not in step: reads ask Redis meanwhile; tried again shortly.
      this.#pending = null;
      this.#retry = setTimeout(() => void this.#sync(subscriber), 1000);
      this.#retry.unref();
    }
  }

  #hear(change: string): void {
    this.#heard++;
    if (this.#pending !== null) {
      this.#pending.push(change);
      return;
    }
    const present = this.#present;
    if (present === null) return;
    apply(present, change);
    if (present.size > this.#mirrorBound && this.#subscriber !== null) void this.#sync(this.#subscriber);
  }
}

function apply(present: Set<string>, change: string): void {
  if (change.startsWith('+')) present.add(change.slice(1));
  else if (change.startsWith('-')) present.delete(change.slice(1));
}

/** Idle entries in Redis that never fail their caller: this replica's memory while Redis is down. */
export class FallbackIdleEntries implements IdleEntries {
  readonly fallback: Fallback<IdleEntries>;
  readonly #primary: RedisIdleEntries;

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
    this.#primary = primary;
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

  get any(): boolean {
    return this.fallback.degraded ? this.fallback.memory.any : this.#primary.any;
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
    this.#primary.close();
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
