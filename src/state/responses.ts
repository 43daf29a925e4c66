import { LRUCache } from 'lru-cache';

/**
 * Stored Responses-API responses (README, "Responses API": `store`, `previous_response_id`). Each id belongs
 * to the key name that made it: for any other key name it does not exist. `value` is the JSON text the
 * Responses front-end keeps (the response and the input that led to it), or null for an id the proxy only
 * passed through, where the backend holds the response and the proxy records its owner and the backend that
 * made it (where `GET`, `DELETE` and `input_items` of that id go).
 *
 * This interface is what the Responses front-end uses; `MemoryStoredResponses` is one instance's store,
 * a Redis store (shared by replicas, encrypted at rest) implements the same interface.
 */
export interface StoredResponses {
  /**
   * Keeps `value` under `id` for `owner` until the TTL runs out (or the store's bound evicts it); `backend`
   * names the backend that holds a passed-through response (value null). Undefined when it is kept already
   * (one instance's memory): an answer then waits for nothing; a promise while it is being written.
   */
  put(id: string, owner: string, value: string | null, backend?: string): Promise<void> | undefined;
  /** The entry, or undefined when it is missing, expired or owned by another key name. */
  get(id: string, owner: string): Promise<StoredEntry | undefined>;
  /** True when an entry of this owner was removed. */
  delete(id: string, owner: string): Promise<boolean>;
}

/** One stored entry as its owner reads it. */
export interface StoredEntry {
  /** The JSON text kept for a translated response; null for a passed-through id. */
  value: string | null;
  /** Passed through: the backend that made the response (absent in entries written before it was kept). */
  backend?: string | undefined;
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
  backend: string | undefined;
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

  put(id: string, owner: string, value: string | null, backend?: string): undefined {
    this.#entries.set(id, { owner, value, backend });
    return undefined;
  }

  get(id: string, owner: string): Promise<StoredEntry | undefined> {
    const entry = this.#entries.get(id);
    if (entry?.owner !== owner) return Promise.resolve(undefined);
    return Promise.resolve(
      entry.backend === undefined ? { value: entry.value } : { value: entry.value, backend: entry.backend },
    );
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
