import { LRUCache } from 'lru-cache';
import type { IdleEntries } from '../state/idle-entries.js';
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

const SETTING_NAMES = ['model', 'temperature', 'reasoning', 'oneoff'] as const;
const REASONING: ReadonlySet<unknown> = new Set(['off', 'low', 'medium', 'high']);

/** Settings read back from a shared store: only known names of the right type (anything else is dropped). */
function settingsOf(text: string): SessionSettings | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const raw = parsed as Record<string, unknown>;
  const settings: SessionSettings = {};
  for (const name of SETTING_NAMES) {
    const value = raw[name];
    if (name === 'temperature') {
      if (typeof value === 'number' && Number.isFinite(value)) settings.temperature = value;
    } else if (name === 'reasoning') {
      if (REASONING.has(value)) settings.reasoning = value as SessionSettings['reasoning'];
    } else if (typeof value === 'string') {
      settings[name] = value;
    }
  }
  return isEmpty(settings) ? undefined : settings;
}

/**
 * Sessions shared by every replica through the state store (README, "Shared state"): a session with settings
 * costs one round trip to Redis per request; one without costs none while the store's mirror of which
 * sessions have settings is in step (src/state/idle-entries-redis.ts), and `any` is false while no session
 * has any (docs/performance.md).
 */
export class SharedSessionStore implements SessionStore {
  readonly #entries: IdleEntries;

  constructor(entries: IdleEntries) {
    this.#entries = entries;
  }

  get any(): boolean {
    return this.#entries.any;
  }

  async get(key: string): Promise<SessionSettings | undefined> {
    const text = await this.#entries.get(key);
    return text === undefined ? undefined : settingsOf(text);
  }

  set(key: string, settings: SessionSettings): Promise<void> {
    return this.#entries.set(key, isEmpty(settings) ? null : JSON.stringify(settings));
  }
}
