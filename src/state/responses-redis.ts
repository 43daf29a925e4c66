import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisConnection } from './redis-connection.js';
import type { StoredEntry, StoredResponses, StoredResponsesLimits } from './responses.js';
import { deriveKey, SealError, Sealer } from './seal.js';

/**
 * Stored responses in Redis, shared by every replica on the same state store (README, "Shared state").
 *
 * Layout, under the feature's prefix `P` (one hash tag, so each script touches one cluster slot):
 * - `P e:<id>`: hash {o: owner tag, v: sealed value}, expiring `ttlSeconds` after it was written;
 * - `P idx`: sorted set of ids scored by write time (epoch ms), the shared bound: each write drops the ids
 *   older than the TTL, adds its own, and, past `maxStored`, deletes the oldest-written entries — all in one
 *   Lua script, so replicas writing at once never leave more than `maxStored` entries.
 *
 * Nothing is in plaintext: the owner (a key name) is an HMAC tag, and the value — the JSON text, or the marker
 * of an owner-only entry — is sealed with AES-256-GCM (seal.ts) bound to the id and owner tag, so a value
 * moved to another id or owner does not open. A value that does not open (tampered with, or sealed under
 * another secret) reads as missing.
 */

export interface RedisStoredResponsesOptions {
  connection: RedisConnection;
  /** The feature's key prefix (`stateKeyPrefix('responses')`); replicas that share entries share it. */
  keyPrefix: string;
  limits: StoredResponsesLimits;
  /** `PROXY_STATE_SECRET`: every replica must have the same. */
  secret: string;
  /** Write-time clock (epoch ms) for the bound's order; defaults to Date.now. */
  now?: () => number;
}

/** KEYS: entry, index. ARGV: entry prefix, id, owner tag, sealed value, now ms, TTL ms, expired-before ms, max. */
const PUT_SCRIPT = `
local entry, index = KEYS[1], KEYS[2]
local entryPrefix, id = ARGV[1], ARGV[2]
local ttl, max = tonumber(ARGV[6]), tonumber(ARGV[8])
redis.call('DEL', entry)
redis.call('HSET', entry, 'o', ARGV[3], 'v', ARGV[4])
redis.call('PEXPIRE', entry, ttl)
redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. ARGV[7])
redis.call('ZADD', index, ARGV[5], id)
local over = redis.call('ZCARD', index) - max
if over > 0 then
  local popped = redis.call('ZPOPMIN', index, over)
  for i = 1, #popped, 2 do redis.call('DEL', entryPrefix .. popped[i]) end
end
redis.call('PEXPIRE', index, ttl)
return 1
`;

/** KEYS: entry, index. ARGV: id, owner tag. 1 when the owner's entry was removed. */
const DELETE_SCRIPT = `
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`;

interface ScriptCommands {
  rsPut(entry: string, index: string, ...argv: string[]): Promise<number>;
  rsDelete(entry: string, index: string, id: string, owner: string): Promise<number>;
}

/** Purposes of the keys derived from the secret: one for sealing, one for owner tags. */
const SEAL_PURPOSE = 'stored-responses seal v1';
const OWNER_PURPOSE = 'stored-responses owner v1';
/** Sealed-value markers: a stored JSON text, or a passed-through id (followed by its backend's name). */
const TEXT = 's';
const OWNER_ONLY = 'n';

export class RedisStoredResponses implements StoredResponses {
  readonly description: string;
  private readonly client: Redis & ScriptCommands;
  private readonly sealer: Sealer;
  private readonly ownerKey: Buffer;
  private readonly entryPrefix: string;
  private readonly indexKey: string;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(private readonly options: RedisStoredResponsesOptions) {
    const { connection, keyPrefix, limits, secret } = options;
    this.description = connection.description;
    connection.defineScript('rsPut', 2, PUT_SCRIPT);
    connection.defineScript('rsDelete', 2, DELETE_SCRIPT);
    this.client = connection.client as Redis & ScriptCommands;
    this.sealer = Sealer.fromSecret(secret, SEAL_PURPOSE);
    this.ownerKey = deriveKey(secret, OWNER_PURPOSE);
    this.entryPrefix = `${keyPrefix}e:`;
    this.indexKey = `${keyPrefix}idx`;
    this.ttlMs = Math.max(1, Math.round(limits.ttlSeconds * 1000));
    this.now = options.now ?? Date.now;
  }

  /** Resolves when Redis answers; rejects otherwise. */
  ping(): Promise<void> {
    return this.options.connection.ping();
  }

  async put(id: string, owner: string, value: string | null, backend?: string): Promise<void> {
    await this.options.connection.connected();
    const tag = this.ownerTag(owner);
    const plain = value === null ? OWNER_ONLY + (backend ?? '') : TEXT + value;
    const sealed = this.sealer.seal(plain, this.aad(id, tag));
    const now = this.now();
    await this.client.rsPut(
      this.entryPrefix + id,
      this.indexKey,
      this.entryPrefix,
      id,
      tag,
      sealed,
      String(now),
      String(this.ttlMs),
      String(now - this.ttlMs),
      String(this.options.limits.maxStored),
    );
  }

  async get(id: string, owner: string): Promise<StoredEntry | undefined> {
    await this.options.connection.connected();
    const [storedTag, sealed] = await this.client.hmget(this.entryPrefix + id, 'o', 'v');
    const tag = this.ownerTag(owner);
    if (storedTag !== tag || sealed === null || sealed === undefined) return undefined;
    let opened: string;
    try {
      opened = this.sealer.open(sealed, this.aad(id, tag));
    } catch (error) {
      if (error instanceof SealError) return undefined;
      throw error;
    }
    if (opened.startsWith(OWNER_ONLY)) {
      const backend = opened.slice(OWNER_ONLY.length);
      return backend === '' ? { value: null } : { value: null, backend };
    }
    return opened.startsWith(TEXT) ? { value: opened.slice(TEXT.length) } : undefined;
  }

  async delete(id: string, owner: string): Promise<boolean> {
    await this.options.connection.connected();
    const removed = await this.client.rsDelete(
      this.entryPrefix + id,
      this.indexKey,
      id,
      this.ownerTag(owner),
    );
    return removed === 1;
  }

  /** Entries in the shared bound now (entries Redis has expired may count until the next write). */
  async size(): Promise<number> {
    await this.options.connection.connected();
    return this.client.zcard(this.indexKey);
  }

  /** The owner as stored: an HMAC of the key name, so Redis never holds key names. */
  private ownerTag(owner: string): string {
    return createHmac('sha256', this.ownerKey).update(owner, 'utf8').digest('base64url').slice(0, 32);
  }

  private aad(id: string, tag: string): string {
    return `${id}\n${tag}`;
  }
}
