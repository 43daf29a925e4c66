import { LRUCache } from 'lru-cache';

/**
 * Stored Responses-API responses (README, "Responses API": `store`, `previous_response_id`). Each id belongs
 * to the key name that made it: for any other key name it does not exist. `value` is the JSON text the
 * Responses front-end keeps (the response and the input that led to it), or null for an id the proxy only
 * passed through, where the backend holds the response and the proxy records only its owner.
 *
 * This interface is what the Responses front-end uses; `MemoryStoredResponses` is one instance's store,
 * a Redis store (shared by replicas, encrypted at rest) implements the same interface.
 */
export interface StoredResponses {
  /** Keeps `value` under `id` for `owner` until the TTL runs out (or the store's bound evicts it). */
  put(id: string, owner: string, value: string | null): Promise<void>;
  /** The entry, or undefined when it is missing, expired or owned by another key name. */
  get(id: string, owner: string): Promise<{ value: string | null } | undefined>;
  /** True when an entry of this owner was removed. */
  delete(id: string, owner: string): Promise<boolean>;
}

export interface StoredResponsesLimits {
  /** Most entries kept; the least recently used goes first (`--responses-max-stored`). */
  maxStored: number;
  /** Seconds an entry lives after it was written (`--responses-ttl`). */
  ttlSeconds: number;
}

interface Entry {
  owner: string;
  value: string | null;
}

/** One instance's stored responses: bounded by count (LRU) and age. */
export class MemoryStoredResponses implements StoredResponses {
  readonly #entries: LRUCache<string, Entry>;

  constructor(limits: StoredResponsesLimits, now: () => number = performance.now.bind(performance)) {
    this.#entries = new LRUCache<string, Entry>({
      max: limits.maxStored,
      ttl: limits.ttlSeconds * 1000,
      perf: { now },
      // Read the clock on every look-up (the default caches it for 1 ms behind a timer).
      ttlResolution: 0,
    });
  }

  put(id: string, owner: string, value: string | null): Promise<void> {
    this.#entries.set(id, { owner, value });
    return Promise.resolve();
  }

  get(id: string, owner: string): Promise<{ value: string | null } | undefined> {
    const entry = this.#entries.get(id);
    return Promise.resolve(entry?.owner === owner ? { value: entry.value } : undefined);
  }

  delete(id: string, owner: string): Promise<boolean> {
    const entry = this.#entries.get(id);
    if (entry?.owner !== owner) return Promise.resolve(false);
    this.#entries.delete(id);
    return Promise.resolve(true);
  }

  /** Entries held now (expired ones may count until they are next touched). */
  get size(): number {
    return this.#entries.size;
  }
}
