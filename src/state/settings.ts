import { ConfigError } from '../config/config-error.js';
import type { ProxyConfig } from '../config/schema.js';

/** Shortest `PROXY_STATE_SECRET` accepted: `llm-interactive-proxy keygen` prints 43 characters. */
export const MIN_STATE_SECRET_LENGTH = 32;

export const STATE_SECRET_MISSING =
  'PROXY_STATE_SECRET is not set: a Redis state store (--state-store / STATE_STORE / state.store) encrypts ' +
  'what it keeps with it. Set it to the same random value on every replica, e.g. ' +
  'export PROXY_STATE_SECRET="$(llm-interactive-proxy keygen | head -n 1)"';

export const STATE_SECRET_TOO_SHORT =
  `PROXY_STATE_SECRET is too short: expected at least ${MIN_STATE_SECRET_LENGTH} characters ` +
  '(e.g. the first line of `llm-interactive-proxy keygen`)';

/** Where each kind of shared state lives, once the settings that name it are reconciled. */
export interface StateSettings {
  /** `memory`, or the Redis URL that holds everything replicas share. */
  store: string;
  /**
   * Where brute-force records live: the state store when `--state-store` is given, else `--brute-force-store`
   * (which puts them alone in Redis, as before the state store existed).
   */
  bruteForceStore: string;
  /** True when brute-force records live in the state store's Redis (one connection, one key prefix). */
  bruteForceInState: boolean;
  /** Set when `--brute-force-store` was given a URL that `--state-store` overrides: for a startup warning. */
  bruteForceStoreIgnored: boolean;
  /** `PROXY_STATE_SECRET`, trimmed; undefined when unset. */
  secret: string | undefined;
}

export function isRedisUrl(store: string): boolean {
  return store !== 'memory';
}

/**
 * Reconciles `state.store` with `auth.brute_force_protection.store` (README, "Shared state"): the state store,
 * when given, wins for everything; without it the brute-force store keeps its meaning. A Redis state store
 * needs the secret; `--brute-force-store` alone does not (it stores nothing secret). Errors name the variable
 * and never show a value.
 */
export function resolveStateSettings(config: ProxyConfig, rawSecret: string | undefined): StateSettings {
  const secret = rawSecret?.trim() || undefined;
  const given = config.state.store;
  const bruteForceFlag = config.auth.brute_force_protection.store;
  const store = given ?? 'memory';
  if (isRedisUrl(store)) {
    if (secret === undefined) throw new ConfigError(STATE_SECRET_MISSING);
    if (secret.length < MIN_STATE_SECRET_LENGTH) throw new ConfigError(STATE_SECRET_TOO_SHORT);
  }
  const bruteForceStore = given ?? bruteForceFlag;
  return {
    store,
    bruteForceStore,
    bruteForceInState: given !== undefined && isRedisUrl(given),
    bruteForceStoreIgnored: given !== undefined && isRedisUrl(bruteForceFlag) && bruteForceFlag !== given,
    secret,
  };
}
