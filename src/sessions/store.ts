import { LRUCache } from 'lru-cache';
import type { SessionSettings } from './commands.js';

/**
 * Where sessions keep their settings: bounded (least recently used first) and forgotten after
 * `--session-ttl` seconds without a request. Async so that a shared store (Redis) can implement it.
 */
export interface SessionStore {
  get(key: string): Promise<SessionSettings | undefined>;
  /** Empty settings remove the session. */
  set(key: string, settings: SessionSettings): Promise<void>;
  /** False when no session has settings: the pipeline then skips the look-up altogether. */
  readonly any: boolean;
}

export interface SessionLimits {
  maxSessions: number;
  ttlSeconds: number;
}

export function isEmpty(settings: SessionSettings): boolean {
  return (
    settings.model === undefined &&
    settings.temperature === undefined &&
    settings.reasoning === undefined &&
    settings.oneoff === undefined
  );
}

export class MemorySessionStore implements SessionStore {
  readonly #sessions: LRUCache<string, SessionSettings>;

  constructor(limits: SessionLimits, now: () => number = performance.now.bind(performance)) {
    this.#sessions = new LRUCache<string, SessionSettings>({
      max: limits.maxSessions,
      ttl: limits.ttlSeconds * 1000,
      // Idle TTL: each request of the session keeps it alive.
      updateAgeOnGet: true,
      perf: { now },
      ttlResolution: 0,
    });
  }

  get any(): boolean {
    return this.#sessions.size > 0;
  }

  get(key: string): Promise<SessionSettings | undefined> {
    return Promise.resolve(this.#sessions.get(key));
  }

  set(key: string, settings: SessionSettings): Promise<void> {
    if (isEmpty(settings)) this.#sessions.delete(key);
    else this.#sessions.set(key, settings);
    return Promise.resolve();
  }
}
