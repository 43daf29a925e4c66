import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import type { Logger } from 'pino';
import { registerAuthAdminRoutes } from '../auth/admin-routes.js';
import { BruteForceGuard } from '../auth/brute-force.js';
import { BypassMatcher, DEFAULT_BYPASS_PATHS } from '../auth/bypass.js';
import { CidrMatcher, compileTrustProxy } from '../auth/client-address.js';
import { createAuthGate } from '../auth/gate.js';
import { KeySet, parseKeysFile, type KeyEntry } from '../auth/keys.js';
import { ConfigError } from '../config/errors.js';
import type { ProxyConfig } from '../config/schema.js';
import type { ProxyMetrics } from '../observability/metrics.js';

export interface AuthRuntime {
  hook: onRequestHookHandler | null;
  trustProxy: ((address: string, hop: number) => boolean) | false;
  registerRoutes(app: FastifyInstance): void;
  readiness(): Record<string, unknown>;
  /** For the banner: `on (2 keys)` / `OFF`. */
  describe(): string;
  bruteForceSummary(): Record<string, unknown> | 'off';
  /** Every configured plaintext proxy key, for the redactor. */
  secrets(): string[];
  close(): Promise<void>;
}

interface AuthSetupOptions {
  config: ProxyConfig;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  metrics: ProxyMetrics;
}

export const KEY_NOT_CONFIGURED =
  'API key not configured: authentication is enabled but no proxy key is set. Set LLM_INTERACTIVE_PROXY_API_KEY ' +
  '(e.g. export LLM_INTERACTIVE_PROXY_API_KEY="$(llm-interactive-proxy keygen | head -n 1)"), or API_KEYS, ' +
  'auth.api_keys / --api-keys-file; or pass --disable-auth for local development.';

function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '[::1]';
}

/**
 * Every proxy key from every source (SPEC §2.1), each with the name that logs and captures show in its
 * place. Plaintext keys in the YAML file are accepted but warned about once.
 */
export function collectKeyEntries(config: ProxyConfig, env: NodeJS.ProcessEnv, logger: Logger): KeyEntry[] {
  const entries: KeyEntry[] = [];
  const primary = env.LLM_INTERACTIVE_PROXY_API_KEY?.trim();
  if (primary) entries.push({ name: 'env', key: primary });
  (env.API_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean)
    .forEach((key, i) => entries.push({ name: `API_KEYS[${i}]`, key }));
  let plaintextInYaml = false;
  config.auth.api_keys.forEach((entry, i) => {
    if (typeof entry === 'string') {
      plaintextInYaml = true;
      entries.push({ name: `api_keys[${i}]`, key: entry });
    } else {
      if ('key' in entry) plaintextInYaml = true;
      entries.push(entry);
    }
  });
  if (plaintextInYaml) {
    logger.warn(
      'auth.api_keys holds a plaintext key: keys belong in the environment (LLM_INTERACTIVE_PROXY_API_KEY, API_KEYS); ' +
        'in YAML prefer {name, sha256} entries (see `llm-interactive-proxy keygen`)',
    );
  }
  const file = config.auth.api_keys_file;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(
        `api keys file ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    try {
      entries.push(...parseKeysFile(text));
    } catch (err) {
      throw new ConfigError(`api keys file ${file}: ${(err as Error).message}`);
    }
  }
  return entries;
}

function configError<T>(what: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    throw new ConfigError(`${what}: ${(err as Error).message}`);
  }
}

export async function setupAuth({ config, env, logger, metrics }: AuthSetupOptions): Promise<AuthRuntime> {
  const auth = config.auth;
  const trustProxy =
    auth.trusted_proxies.length > 0
      ? configError('auth.trusted_proxies', () => compileTrustProxy(auth.trusted_proxies))
      : false;
  const noSecrets = () => [];

  if (auth.disable_auth) {
    if (!isLoopbackHost(config.server.host) && !auth.allow_unauthenticated_remote) {
      throw new ConfigError(
        `refusing to listen on ${config.server.host} with authentication disabled: anyone who can reach it could use ` +
          'your provider keys. Enable auth, bind to 127.0.0.1, or pass --allow-unauthenticated-remote.',
      );
    }
    logger.warn(
      'Authentication is DISABLED (--disable-auth / DISABLE_AUTH / auth.disable_auth): every client is trusted',
    );
    return {
      hook: null,
      trustProxy,
      registerRoutes: (app) => registerAuthAdminRoutes(app, { guard: null }),
      readiness: () => ({ enabled: false }),
      describe: () => 'OFF',
      bruteForceSummary: () => 'off',
      secrets: noSecrets,
      close: async () => undefined,
    };
  }

  const entries = collectKeyEntries(config, env, logger);
  if (entries.length === 0) throw new ConfigError(KEY_NOT_CONFIGURED);
  const keys = configError('proxy keys', () => new KeySet(entries));
  const plaintext = entries.flatMap((e) => ('key' in e ? [e.key] : []));

  const bf = auth.brute_force_protection;
  if (bf.store !== 'memory') {
    throw new ConfigError(
      `auth.brute_force_protection.store: the Redis store is not available in this version; use "memory"`,
    );
  }
  const guard = bf.enabled
    ? configError(
        'auth.brute_force_protection',
        () =>
          new BruteForceGuard({
            policy: {
              maxFailedAttempts: bf.max_failed_attempts,
              ttlSeconds: bf.ttl_seconds,
              initialBlockSeconds: bf.initial_block_seconds,
              blockMultiplier: bf.block_multiplier,
              maxBlockSeconds: bf.max_block_seconds,
              maxTrackedClients: bf.max_tracked_clients,
            },
          }),
      )
    : null;
  if (guard) metrics.trackedClientsSource = () => guard.size();

  const hook = createAuthGate({
    getKeys: () => keys,
    guard,
    bypass: configError(
      'auth.bypass_paths',
      () => new BypassMatcher(auth.bypass_paths ?? DEFAULT_BYPASS_PATHS),
    ),
    trustedIps: configError('auth.trusted_ips', () => new CidrMatcher(auth.trusted_ips)),
    log: logger,
    events: {
      onFailure: (reason) => metrics.authFailures.inc({ reason }),
      onBlock: () => metrics.blocksStarted.inc(),
    },
  }) as onRequestHookHandler;

  return {
    hook,
    trustProxy,
    registerRoutes: (app) => registerAuthAdminRoutes(app, { guard }),
    readiness: () => ({
      enabled: true,
      keys: keys.size,
      brute_force: guard ? { enabled: true, store: 'memory', status: 'ok' } : { enabled: false },
    }),
    describe: () => `on (${keys.size} key${keys.size === 1 ? '' : 's'})`,
    bruteForceSummary: () =>
      guard
        ? {
            max_failed_attempts: bf.max_failed_attempts,
            ttl_seconds: bf.ttl_seconds,
            initial_block_seconds: bf.initial_block_seconds,
            block_multiplier: bf.block_multiplier,
            max_block_seconds: bf.max_block_seconds,
            store: bf.store,
          }
        : 'off',
    secrets: () => plaintext,
    close: async () => {
      await guard?.close();
    },
  };
}
