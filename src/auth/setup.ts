import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { BruteForceGuard } from './brute-force.js';
import { BypassMatcher, DEFAULT_BYPASS_PATHS } from './bypass.js';
import { CidrMatcher, compileTrustProxy, type TrustedProxies } from './client-address.js';
import { createAuthCheck, type AuthCheck, type AuthLogger } from './gate.js';
import { KeyReloader } from './key-reloader.js';
import { parseExpiresAt } from '../config/key-attributes.js';
import { parseKeysFile, type KeyEntry } from './keys.js';
import { FallbackBruteForceStore } from './stores/fallback.js';
import { bruteForcePolicyOf } from './brute-force-policy.js';
import { ConfigError } from '../config/config-error.js';
import { describeIssue, readYamlFile, schemaIssues, yamlTreeIssue } from '../config/load.js';
import { ConfigSchema, type ApiKeyEntry, type PolicyLimits, type ProxyConfig } from '../config/schema.js';
import type { ProxyMetrics } from '../observability/metrics.js';
import type { StateStore } from '../state/store.js';
import type { Redact } from '../redaction/excerpt.js';

export interface AuthRuntime {
  /** The gate's check (the server wraps it for Fastify and for the chat lane); null when auth is off. */
  check: AuthCheck | null;
  /** The reverse proxies whose forwarding headers are believed (`--trusted-proxy`); false for none. */
  trustProxy: TrustedProxies | false;
  /** What the operator endpoints act on (src/server/admin-routes.ts): null when auth or protection is off. */
  guard: BruteForceGuard | null;
  reloader: KeyReloader | null;
  readiness(): Record<string, unknown>;
  /** For the banner: `on (2 keys)` / `OFF`. */
  describe(): string;
  bruteForceSummary(): Record<string, unknown> | 'off';
  /**
   * Every plaintext proxy key in use now (they change on reload), and every key configured by its digest
   * that a client has presented: the redactor's proxy keys.
   */
  secrets(): string[];
  /** Called whenever `secrets()` changes (a reload, a digest-configured key presented): rebuild the redactor. */
  onSecretsChanged(listener: () => void): void;
  /** Called after every successful key reload, e.g. to rebuild the redactor from `secrets()`. */
  onKeysChanged(listener: () => void): void;
  /**
   * What the teams policies are built from (src/teams/policies.ts), as of the last successful (re)load: every
   * key with its attributes and own limits, and `auth.policies` by label. Empty with auth disabled.
   */
  policySources(): PolicySources;
  /** Whether any key in use has the admin role (README, Admin keys). */
  hasAdminKey(): boolean;
  close(): Promise<void>;
}

/** Label policies from YAML `auth.policies`, by label. */
export type LabelPolicies = Readonly<Record<string, PolicyLimits>>;

export interface PolicySources {
  keys: readonly KeyEntry[];
  labels: LabelPolicies;
}

export interface AuthSetupOptions {
  config: ProxyConfig;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  metrics: ProxyMetrics;
  /**
   * The YAML file the config came from (`--config` / `CONFIG_FILE`), re-read on reload for `auth.api_keys`.
   * Defaults to `env.CONFIG_FILE`.
   */
  configFile?: string | undefined;
  /**
   * The shared state store (src/state/store.ts). When it is Redis (`--state-store`), brute-force records live
   * there, on its connection and under its prefix, whatever `--brute-force-store` says; without it (or with
   * the memory state store), `--brute-force-store` decides as it always did.
   */
  state?: StateStore | undefined;
  /** The logger's writer for finished warn-level lines (ProxyLogger.writeWarnLine); absent: through `logger`. */
  writeWarnLine?: ((line: string) => void) | null;
  /** The current redactor's: for client text a warning quotes cut short (a path, a forwarding header). */
  redact: Redact;
}

/** The state store's feature name for brute-force records (key prefix, health, gauge). */
export const BRUTE_FORCE_FEATURE = 'brute-force';

export const KEY_NOT_CONFIGURED =
  'API key not configured: authentication is enabled but no proxy key is set. Set LLM_INTERACTIVE_PROXY_API_KEY ' +
  '(e.g. export LLM_INTERACTIVE_PROXY_API_KEY="$(llm-interactive-proxy keygen | head -n 1)"), or API_KEYS, ' +
  'auth.api_keys / --api-keys-file; or pass --disable-auth for local development.';

const PLAINTEXT_YAML_WARNING =
  'auth.api_keys holds a plaintext key: keys belong in the environment (LLM_INTERACTIVE_PROXY_API_KEY, API_KEYS); ' +
  'in YAML prefer {name, sha256} entries (see `llm-interactive-proxy keygen`)';

function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '[::1]';
}

/** The name the admin key from the environment goes by in logs and captures. */
export const ENV_ADMIN_KEY_NAME = 'env-admin';

export interface KeySources {
  env: NodeJS.ProcessEnv;
  /** The YAML `auth.api_keys`, validated. */
  apiKeys: readonly ApiKeyEntry[];
  keysFile?: string | undefined;
}

/**
 * Every proxy key from every source (README, Authentication: Keys), each with the name that logs and captures show in its
 * place. Errors name the file and line, never a key. `onPlaintextInYaml` is told when the YAML holds a key
 * in plaintext, so the caller can warn (once).
 */
export function collectKeyEntries(
  sources: KeySources,
  onPlaintextInYaml: () => void = () => undefined,
): KeyEntry[] {
  const { env, apiKeys, keysFile } = sources;
  const entries: KeyEntry[] = [];
  // Where each name was first given: a name is a key's identity (policies, limits, usage, sessions, stored
  // responses), so two keys may not share one, whatever their sources.
  const givenIn = new Map<string, string>();
  const add = (entry: KeyEntry, source: string): void => {
    const earlier = givenIn.get(entry.name);
    if (earlier !== undefined) {
      throw new ConfigError(
        `proxy key name "${entry.name}" is given twice (${earlier}, then ${source}): a name identifies ` +
          'one key (its policies, limits, usage and stored responses); give each key its own',
      );
    }
    givenIn.set(entry.name, source);
    entries.push(entry);
  };
  const primary = env.LLM_INTERACTIVE_PROXY_API_KEY?.trim();
  if (primary) add({ name: 'env', key: primary }, 'LLM_INTERACTIVE_PROXY_API_KEY');
  const admin = env.LLM_INTERACTIVE_PROXY_ADMIN_KEY?.trim();
  if (admin) {
    add({ name: ENV_ADMIN_KEY_NAME, key: admin, role: 'admin' }, 'LLM_INTERACTIVE_PROXY_ADMIN_KEY');
  }
  (env.API_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean)
    .forEach((key, i) => add({ name: `API_KEYS[${i}]`, key }, 'API_KEYS'));
  let plaintextInYaml = false;
  apiKeys.forEach((entry, i) => {
    if (typeof entry === 'string') {
      plaintextInYaml = true;
      add({ name: `api_keys[${i}]`, key: entry }, `auth.api_keys[${i}]`);
    } else {
      if (entry.key !== undefined) plaintextInYaml = true;
      add(yamlKeyEntry(entry), `auth.api_keys[${i}]`);
    }
  });
  if (plaintextInYaml) onPlaintextInYaml();
  if (keysFile) for (const entry of readKeysFile(keysFile)) add(entry, `the keys file ${keysFile}`);
  return entries;
}

/** A YAML `auth.api_keys` object (validated by the schema) as a key entry: attributes, and its own limits. */
function yamlKeyEntry(entry: Exclude<ApiKeyEntry, string>): KeyEntry {
  const { name, key, sha256, role, labels, expires_at, ...limits } = entry;
  const secret = key !== undefined ? { name, key } : { name, sha256: sha256 ?? '' };
  const expiresAtMs = expires_at !== undefined ? (parseExpiresAt(expires_at) ?? undefined) : undefined;
  const ownLimits = Object.values(limits).some((value) => value !== undefined) ? limits : undefined;
  return {
    ...secret,
    ...(role !== undefined ? { role } : {}),
    ...(labels !== undefined ? { labels: [...new Set(labels)] } : {}),
    ...(expiresAtMs !== undefined ? { expiresAtMs } : {}),
    ...(ownLimits !== undefined ? { limits: ownLimits } : {}),
  };
}

function readKeysFile(file: string): KeyEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `api keys file ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  try {
    return parseKeysFile(text);
  } catch (err) {
    throw new ConfigError(`api keys file ${file}: ${(err as Error).message}`);
  }
}

/**
 * `auth.api_keys` and `auth.policies` as the YAML file says now, validated by the same schema as at startup.
 * Only these are taken: other settings need a restart.
 */
export function readYamlKeySettings(configFile: string): {
  apiKeys: ApiKeyEntry[];
  policies: LabelPolicies;
  /** What in the rest of the file would stop the next start (not taken by a reload), if anything. */
  elsewhere?: string | undefined;
} {
  const tree = readYamlFile(configFile);
  const auth = tree.auth;
  const section = typeof auth === 'object' && auth !== null ? (auth as Record<string, unknown>) : {};
  const parsed = ConfigSchema.safeParse({
    auth: { api_keys: section.api_keys, policies: section.policies },
  });
  if (parsed.success) {
    const elsewhere = yamlTreeIssue(tree);
    return {
      apiKeys: parsed.data.auth.api_keys,
      policies: parsed.data.auth.policies,
      ...(elsewhere === undefined ? {} : { elsewhere }),
    };
  }
  const issue = schemaIssues(parsed.error.issues)[0];
  const where = issue?.path.map(String).join('.') ?? 'auth.api_keys';
  throw new ConfigError(`config file ${configFile}: ${where}: ${issue ? describeIssue(issue) : 'invalid'}`);
}

/** `auth.api_keys` as the YAML file says now (see readYamlKeySettings). */
export function readYamlApiKeys(configFile: string): ApiKeyEntry[] {
  return readYamlKeySettings(configFile).apiKeys;
}

function configError<T>(what: string, build: () => T): T {
  try {
    return build();
  } catch (err) {
    throw new ConfigError(`${what}: ${(err as Error).message}`);
  }
}

interface BruteForceSetup {
  guard: BruteForceGuard | null;
  /** The shared store, when `store` is a redis:// URL. */
  shared: FallbackBruteForceStore | null;
}

async function setupBruteForce(
  bf: ProxyConfig['auth']['brute_force_protection'],
  logger: Logger,
  metrics: ProxyMetrics,
  state: StateStore | undefined,
): Promise<BruteForceSetup> {
  if (!bf.enabled) return { guard: null, shared: null };
  // The schema validated the settings when the configuration was loaded.
  const policy = bruteForcePolicyOf(bf);
  // Resolved with the state store (src/state/settings.ts): `--state-store`, when given, wins.
  const where = state?.settings.bruteForceStore ?? bf.store;
  if (where === 'memory') return { guard: new BruteForceGuard({ policy }), shared: null };
  const inState = state?.settings.bruteForceInState ? state.redisTarget(BRUTE_FORCE_FEATURE) : null;
  // Loaded only when configured: ioredis costs ~20 MB of memory that a memory-store proxy never needs.
  const { RedisBruteForceStore } = await import('../auth/stores/redis.js');
  const primary = configError('auth.brute_force_protection.store', () =>
    inState
      ? new RedisBruteForceStore({ connection: inState.connection, keyPrefix: inState.keyPrefix, policy })
      : new RedisBruteForceStore({ url: where, policy }),
  );
  const shared = new FallbackBruteForceStore({
    primary,
    policy,
    log: logger,
    onDegradedChange: (degraded) => {
      metrics.storeDegraded.set(degraded ? 1 : 0);
      if (inState) state?.reportDegraded(BRUTE_FORCE_FEATURE, degraded);
    },
  });
  metrics.storeDegraded.set(0);
  // Redis down at start is not a startup error: the proxy starts degraded and says so.
  await shared.start();
  return { guard: new BruteForceGuard({ policy, store: shared }), shared };
}

/** The gate's logger: pino, and the template writer for the warning of each failed attempt when there is one. */
function gateLogger(logger: Logger, warnLine: ((line: string) => void) | null): AuthLogger {
  if (warnLine === null) return logger;
  return {
    warn: (obj, msg) => logger.warn(obj, msg),
    error: (obj, msg) => logger.error(obj, msg),
    warnLine,
  };
}

export async function setupAuth(options: AuthSetupOptions): Promise<AuthRuntime> {
  const { config, env, logger, metrics } = options;
  const auth = config.auth;
  const trustProxy =
    auth.trusted_proxies.length > 0
      ? configError('auth.trusted_proxies', () =>
          compileTrustProxy(auth.trusted_proxies, { log: logger, redact: options.redact }),
        )
      : false;

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
    // A `systemctl reload` must not kill the process (SIGHUP's default) just because there are no keys.
    const ignoreReload = () => logger.info('SIGHUP received: authentication is disabled, no keys to reload');
    process.on('SIGHUP', ignoreReload);
    return {
      check: null,
      trustProxy,
      guard: null,
      reloader: null,
      readiness: () => ({ enabled: false }),
      describe: () => 'OFF',
      bruteForceSummary: () => 'off',
      secrets: () => [],
      onKeysChanged: () => undefined,
      onSecretsChanged: () => undefined,
      policySources: () => ({ keys: [], labels: {} }),
      hasAdminKey: () => false,
      close: async () => {
        process.off('SIGHUP', ignoreReload);
      },
    };
  }

  let warnedPlaintext = false;
  const warnPlaintextOnce = () => {
    if (!warnedPlaintext) logger.warn(PLAINTEXT_YAML_WARNING);
    warnedPlaintext = true;
  };
  const keysFile = auth.api_keys_file;
  const initial = collectKeyEntries({ env, apiKeys: auth.api_keys, keysFile }, warnPlaintextOnce);
  if (initial.length === 0) throw new ConfigError(KEY_NOT_CONFIGURED);
  const configFile = options.configFile ?? env.CONFIG_FILE;
  // The label policies in use, and those read by the reload in progress: taken when it succeeds.
  let labelPolicies: LabelPolicies = auth.policies;
  let loadedPolicies: LabelPolicies = auth.policies;
  const reloader = configError(
    'proxy keys',
    () =>
      new KeyReloader({
        initial,
        // Env keys stay as they were (a process's environment does not change); the files are read again.
        load: () => {
          const yamlKeys = configFile
            ? readYamlKeySettings(configFile)
            : { apiKeys: auth.api_keys, policies: auth.policies, elsewhere: undefined };
          // The keys reload; a mistake elsewhere in the file would surface only at the next start: said now.
          if (yamlKeys.elsewhere !== undefined) {
            logger.warn(
              { file: configFile },
              `Config file ${configFile} would not start the proxy: ${yamlKeys.elsewhere} (a reload takes only ` +
                'auth.api_keys and auth.policies from it; fix it before the next start)',
            );
          }
          loadedPolicies = yamlKeys.policies;
          return collectKeyEntries({ env, apiKeys: yamlKeys.apiKeys, keysFile }, warnPlaintextOnce);
        },
        watchFile: keysFile,
        log: logger,
      }),
  );
  // Registered first, so every later listener sees the policies that came with the keys.
  reloader.onChange(() => {
    labelPolicies = loadedPolicies;
  });

  const bypass = configError(
    'auth.bypass_paths',
    () => new BypassMatcher(auth.bypass_paths ?? DEFAULT_BYPASS_PATHS),
  );
  const trustedIps = configError('auth.trusted_ips', () => new CidrMatcher(auth.trusted_ips));
  // Last, since it may open a connection: every configuration error above comes first.
  const bf = auth.brute_force_protection;
  const { guard, shared } = await setupBruteForce(bf, logger, metrics, options.state);
  if (guard) metrics.trackedClientsSource = () => guard.size();

  const corsOrigins = new Set(config.server.cors_origins);
  const check = createAuthCheck({
    getKeys: () => reloader.keys,
    // A key configured by its digest is redacted once a client has presented it (README, Key hygiene).
    onHashedKey: (grant, key) => reloader.learn(grant, key),
    guard,
    // With no --cors-origin every origin may call the proxy; cross-site key-less requests still go uncounted.
    isAllowedOrigin: corsOrigins.size > 0 ? (origin) => corsOrigins.has(origin) : undefined,
    blockedDelayMs: bf.blocked_delay_ms,
    bypass,
    trustedIps,
    log: gateLogger(logger, options.writeWarnLine ?? null),
    redact: options.redact,
    events: {
      onFailure: (reason) => metrics.authFailures.inc({ reason }),
      onBlock: () => metrics.blocksStarted.inc(),
      onRefused: () => metrics.authBlocked.inc(),
    },
  });

  reloader.start();
  const storeName = shared ? 'redis' : 'memory';
  const storeStatus = () => ({
    store: storeName,
    ...(shared ? { url: shared.description } : {}),
    status: shared?.degraded ? 'degraded' : 'ok',
  });

  return {
    check,
    trustProxy,
    guard,
    reloader,
    readiness: () => ({
      enabled: true,
      keys: reloader.keys.size,
      ...(reloader.lastReloadError !== null ? { last_reload_error: reloader.lastReloadError } : {}),
      brute_force: guard ? { enabled: true, ...storeStatus() } : { enabled: false },
    }),
    describe: () => `on (${reloader.keys.size} key${reloader.keys.size === 1 ? '' : 's'})`,
    policySources: () => ({ keys: reloader.entries, labels: labelPolicies }),
    hasAdminKey: () => reloader.keys.hasAdmin,
    bruteForceSummary: () =>
      guard
        ? {
            max_failed_attempts: bf.max_failed_attempts,
            ttl_seconds: bf.ttl_seconds,
            initial_block_seconds: bf.initial_block_seconds,
            block_multiplier: bf.block_multiplier,
            max_block_seconds: bf.max_block_seconds,
            store: shared ? shared.description : 'memory',
            ...(shared?.degraded ? { store_status: 'degraded' } : {}),
          }
        : 'off',
    secrets: () => [...reloader.secrets()],
    onKeysChanged: (listener) => reloader.onChange(listener),
    onSecretsChanged: (listener) => reloader.onSecretsChanged(listener),
    close: async () => {
      reloader.close();
      await guard?.close();
    },
  };
}
