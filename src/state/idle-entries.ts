import { LRUCache } from 'lru-cache';

/**
 * Small values kept while they are in use (README, "Shared state"): each entry lives `ttlSeconds` after it was
 * last read or written (an idle TTL), and at most `maxEntries` are kept, the least recently used going first.
 * Sessions keep their settings in one (src/sessions/store.ts). `MemoryIdleEntries` is one instance's;
 * `RedisIdleEntries` (idle-entries-redis.ts) is shared by replicas and sealed.
 */
export interface IdleEntries {
  /** The value under `id`, or undefined; a found entry's idle time starts again. */
  get(id: string): Promise<string | undefined>;
  /** Keeps `value` under `id`; null removes the entry. */
  set(id: string, value: string | null): Promise<void>;
  /** False only when no entry is kept, surely: a caller may then skip its reads altogether. */
  readonly any: boolean;
}

export interface IdleEntriesLimits {
  maxEntries: number;
  ttlSeconds: number;
}

export class MemoryIdleEntries implements IdleEntries {
  readonly #entries: LRUCache<string, string>;

  constructor(limits: IdleEntriesLimits, now: () => number = performance.now.bind(performance)) {
    this.#entries = new LRUCache<string, string>({
      max: limits.maxEntries,
      ttl: limits.ttlSeconds * 1000,
      updateAgeOnGet: true,
      perf: { now },
      ttlResolution: 0,
    });
  }

  get size(): number {
    return this.#entries.size;
  }

  get any(): boolean {
    return this.#entries.size > 0;
  }

  get(id: string): Promise<string | undefined> {
    return Promise.resolve(this.#entries.get(id));
  }

  set(id: string, value: string | null): Promise<void> {
    if (value === null) this.#entries.delete(id);
    else this.#entries.set(id, value);
    return Promise.resolve();
  }
}
