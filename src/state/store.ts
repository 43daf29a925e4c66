import type { FallbackLogger } from './fallback.js';
import type { RedisConnection } from './redis-connection.js';
import { isRedisUrl, type StateSettings } from './settings.js';

/**
 * The shared state store (README, "Shared state"): one Redis connection and one key prefix for everything
 * replicas must agree on, or nothing at all with the memory store. Features build their stores on it
 * (`createStoredResponses`, responses-factory.ts; the brute-force store, src/auth/setup.ts) and report their
 * memory fallback here, so `/internal/health` shows one state.
 */

/** Every key the proxy writes starts with this; each feature adds `{feature}:` (one hash tag, one slot). */
export const STATE_KEY_PREFIX = 'llm-interactive-proxy:';

export interface StateStoreOptions {
  settings: StateSettings;
  log: FallbackLogger & { warn(obj: object, msg: string): void };
  /** Told when a feature's store switches to its memory fallback (true) or back (false): the gauge. */
  onDegradedChange?: (feature: string, degraded: boolean) => void;
}

/** Where a Redis-backed feature store writes: the shared connection and the feature's key prefix. */
export interface RedisTarget {
  connection: RedisConnection;
  keyPrefix: string;
}

export interface StateStore {
  /** `memory` or `redis`. */
  readonly kind: 'memory' | 'redis';
  /** The shared connection; null with the memory store. */
  readonly redis: RedisConnection | null;
  /** `PROXY_STATE_SECRET` (required with Redis; may be set with memory too). */
  readonly secret: string | undefined;
  readonly settings: StateSettings;
  readonly log: StateStoreOptions['log'];
  /** The prefix of a feature's keys: `llm-interactive-proxy:{<feature>}:`. */
  keyPrefix(feature: string): string;
  /** The shared connection and the feature's prefix; null with the memory store. */
  redisTarget(feature: string): RedisTarget | null;
  /** Records a feature's switch to (true) or from (false) its memory fallback. */
  reportDegraded(feature: string, degraded: boolean): void;
  /** Features on their memory fallback now. */
  degradedFeatures(): string[];
  /** For `/internal/health`: names and states, never a password. */
  health(): Record<string, unknown>;
  /** Runs `closer` when the store closes (a feature's probe timers, say), before the connection closes. */
  onClose(closer: () => Promise<void> | void): void;
  close(): Promise<void>;
}

export function stateKeyPrefix(feature: string): string {
  return `${STATE_KEY_PREFIX}{${feature}}:`;
}

/**
 * Opens the state store the settings name. With Redis, ioredis is loaded only now (it costs memory a
 * memory-store proxy never needs); the connection is made in the background, and a Redis that is down is
 * not a startup error: each feature falls back to memory and says so.
 */
export async function openStateStore(options: StateStoreOptions): Promise<StateStore> {
  const { settings, log } = options;
  let redis: RedisConnection | null = null;
  if (isRedisUrl(settings.store)) {
    const { RedisConnection } = await import('./redis-connection.js');
    redis = new RedisConnection({ url: settings.store });
  }
  if (settings.bruteForceStoreIgnored) {
    log.warn(
      {},
      '--brute-force-store (BRUTE_FORCE_STORE, auth.brute_force_protection.store) is ignored: ' +
        '--state-store is given and holds the brute-force records too',
    );
  }
  const degraded = new Set<string>();
  const closers: Array<() => Promise<void> | void> = [];
  const connection = redis;
  return {
    kind: connection ? 'redis' : 'memory',
    redis: connection,
    secret: settings.secret,
    settings,
    log,
    keyPrefix: stateKeyPrefix,
    redisTarget: (feature) => (connection ? { connection, keyPrefix: stateKeyPrefix(feature) } : null),
    reportDegraded: (feature, isDegraded) => {
      if (isDegraded) degraded.add(feature);
      else degraded.delete(feature);
      options.onDegradedChange?.(feature, isDegraded);
    },
    degradedFeatures: () => [...degraded],
    health: () =>
      connection
        ? {
            store: 'redis',
            url: connection.description,
            status: degraded.size > 0 ? 'degraded' : 'ok',
            ...(degraded.size > 0 ? { degraded: [...degraded] } : {}),
          }
        : { store: 'memory', status: 'ok' },
    onClose: (closer) => closers.push(closer),
    close: async () => {
      for (const closer of closers.splice(0)) await closer();
      await connection?.close();
    },
  };
}
