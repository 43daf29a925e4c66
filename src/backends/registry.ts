import { ProxyError } from '../proxy-error.js';
import type { CustomBackendConfig, ProxyConfig } from '../config/schema.js';
import { ConfigError } from '../config/config-error.js';
import { HttpBackend, type HttpBackendOptions } from './http-backend.js';
import { poolEnvNames, type PoolKey, type PoolKeyView } from './key-pool.js';
import type { UpstreamHttp } from './http.js';
import { MockBackend } from './mock.js';
import { HTTP_PROFILES } from './profiles.js';
import type { Backend } from './types.js';
import type { Protocol } from '../protocols/types.js';

interface BuiltinBackend {
  name: string;
  type: Protocol;
  keyEnv: string;
  baseUrlEnv: string;
  defaultBaseUrl: string;
  /** Also serves OpenAI's Responses API at `{base}/responses`: Responses requests pass through. */
  responses?: boolean;
}

/** The backends every install knows, with the env vars that configure them (README, "Using it"). */
export const BUILTIN_BACKENDS: readonly BuiltinBackend[] = [
  {
    name: 'openai',
    type: 'openai',
    keyEnv: 'OPENAI_API_KEY',
    baseUrlEnv: 'OPENAI_API_BASE_URL',
    defaultBaseUrl: 'https://api.openai.com/v1',
    responses: true,
  },
  {
    name: 'openrouter',
    type: 'openai',
    keyEnv: 'OPENROUTER_API_KEY',
    baseUrlEnv: 'OPENROUTER_API_BASE_URL',
    defaultBaseUrl: 'https://openrouter.ai/api/v1',
  },
  {
    name: 'anthropic',
    type: 'anthropic',
    keyEnv: 'ANTHROPIC_API_KEY',
    baseUrlEnv: 'ANTHROPIC_API_BASE_URL',
    defaultBaseUrl: 'https://api.anthropic.com/v1',
  },
  {
    name: 'gemini',
    type: 'gemini',
    keyEnv: 'GEMINI_API_KEY',
    baseUrlEnv: 'GEMINI_API_BASE_URL',
    defaultBaseUrl: 'https://generativelanguage.googleapis.com',
  },
];

export interface ResolvedRoute {
  backend: Backend;
  /** The model to send upstream, backend prefix removed. */
  model: string;
}

/** Knows every backend by name and picks one for a request's model (README, "With a real provider"). */
export class BackendRegistry {
  private readonly byName = new Map<string, Backend>();
  readonly defaultBackend: Backend;
  /** From `--default-backend NAME:MODEL`: replaces the model of requests that do not name a backend. */
  readonly defaultModel: string | undefined;
  /** True when no backend was configured and the embedded mock became the default. */
  readonly mockIsFallback: boolean;

  constructor(backends: Backend[], defaultSpec: string | undefined) {
    for (const backend of backends) this.byName.set(backend.name, backend);
    if (defaultSpec) {
      const cut = defaultSpec.indexOf(':');
      const name = cut === -1 ? defaultSpec : defaultSpec.slice(0, cut);
      const backend = this.byName.get(name);
      if (!backend) {
        throw new ConfigError(
          `default backend "${name}" is unknown; known backends: ${[...this.byName.keys()].join(', ')}`,
        );
      }
      this.defaultBackend = backend;
      this.defaultModel = cut === -1 ? undefined : defaultSpec.slice(cut + 1) || undefined;
      this.mockIsFallback = false;
    } else {
      const usable = backends.find((b) => b.name !== 'mock' && b.missingCredential === null);
      this.defaultBackend = usable ?? (this.byName.get('mock') as Backend);
      this.defaultModel = undefined;
      this.mockIsFallback = usable === undefined;
    }
  }

  get(name: string): Backend | undefined {
    return this.byName.get(name);
  }

  all(): Backend[] {
    return [...this.byName.values()];
  }

  /** How often each pool key left the rotation, keys by env var name (for /metrics). */
  keyLeaves(): Array<{ backend: string; key: string; out: number; resting: number }> {
    const leaves: Array<{ backend: string; key: string; out: number; resting: number }> = [];
    for (const backend of this.byName.values()) {
      if (backend instanceof HttpBackend && backend.keyPool !== null)
        for (const leave of backend.keyPool.leaves()) leaves.push({ backend: backend.name, ...leave });
    }
    return leaves;
  }

  /** The state of every key pool, keys by env var name (for /internal/health). */
  keyPools(): Record<string, PoolKeyView[]> {
    const pools: Record<string, PoolKeyView[]> = {};
    for (const backend of this.byName.values()) {
      if (backend instanceof HttpBackend && backend.keyPool !== null)
        pools[backend.name] = backend.keyPool.view();
    }
    return pools;
  }

  /** Backends with credentials (names only: safe for /internal/health and the banner). */
  configuredNames(): string[] {
    return this.all()
      .filter((b) => b.missingCredential === null)
      .map((b) => b.name);
  }

  resolve(requestModel: string): ResolvedRoute {
    const cut = requestModel.indexOf(':');
    const named = cut > 0 ? this.byName.get(requestModel.slice(0, cut)) : undefined;
    const route: ResolvedRoute = named
      ? { backend: named, model: requestModel.slice(cut + 1) }
      : { backend: this.defaultBackend, model: this.defaultModel ?? requestModel };
    if (route.backend.missingCredential) {
      throw new ProxyError(
        400,
        `Backend '${route.backend.name}' is not configured: set ${route.backend.missingCredential} in the proxy's environment`,
        { code: 'backend_not_configured', param: 'model' },
      );
    }
    return route;
  }
}

/** The keys of a pool, in order, from the env vars that are set. */
function poolOf(env: NodeJS.ProcessEnv, names: readonly string[]): PoolKey[] {
  return names.flatMap((name) => (env[name] ? [{ name, value: env[name] }] : []));
}

function customOptions(
  name: string,
  cfg: CustomBackendConfig & { base_url: string },
  env: NodeJS.ProcessEnv,
): HttpBackendOptions {
  if (cfg.api_key_envs !== undefined) {
    const pool = poolOf(env, cfg.api_key_envs);
    return {
      name,
      baseUrl: cfg.base_url,
      apiKey: pool[0]?.value,
      apiKeyEnv: cfg.api_key_envs.join(', '),
      pool,
    };
  }
  return {
    name,
    baseUrl: cfg.base_url,
    apiKey: cfg.api_key_env ? env[cfg.api_key_env] : undefined,
    apiKeyEnv: cfg.api_key_env ?? '',
  };
}

/** The fields a built-in backend's YAML entry may set. */
const BUILTIN_FIELDS: ReadonlySet<string> = new Set(['max_connections', 'prefill', 'api_key_envs']);
const BUILTIN_FIELDS_TEXT = [...BUILTIN_FIELDS].join(', ');

/** The embedded mock and the built-in providers: named in the YAML only to tune them. */
const isBuiltin = (name: string): boolean => name === 'mock' || BUILTIN_BACKENDS.some((b) => b.name === name);

/** A backend's YAML entry, if the `backends` section has one. */
function yamlEntryOf(config: ProxyConfig, name: string): CustomBackendConfig | undefined {
  const { default_backend: _default, ...entries } = config.backends;
  const entry = entries[name];
  return entry && typeof entry === 'object' ? entry : undefined;
}

/**
 * A built-in backend's key pool and the env vars to name when it has none: its `api_key_envs` when the YAML
 * gives them (the whole pool: `*_API_KEY` is in it only if listed), else `*_API_KEY` and `*_API_KEY_1 … _N`.
 * A numbered var set beside `api_key_envs` but not listed in it is refused: two places would each seem to
 * say what the pool is, and one would be silently ignored (README, Routes and failover: key pools).
 */
function builtinPool(
  builtin: BuiltinBackend,
  entry: CustomBackendConfig | undefined,
  env: NodeJS.ProcessEnv,
): { pool: PoolKey[]; apiKeyEnv: string } {
  const numbered = poolEnvNames(env, builtin.keyEnv);
  const listed = entry?.api_key_envs;
  if (listed === undefined) return { pool: poolOf(env, numbered), apiKeyEnv: builtin.keyEnv };
  const unlisted = numbered.filter((name) => name !== builtin.keyEnv && !listed.includes(name));
  if (unlisted.length > 0) {
    throw new ConfigError(
      `backends.${builtin.name}.api_key_envs and ${unlisted.join(', ')} both give the ${builtin.name} ` +
        `backend's key pool: list ${unlisted.length > 1 ? 'them' : 'it'} in api_key_envs, or unset ` +
        `${unlisted.length > 1 ? 'them' : 'it'}, or drop api_key_envs`,
    );
  }
  return { pool: poolOf(env, listed), apiKeyEnv: listed.join(', ') };
}

/** Each backend's connection limit set in the YAML (`backends.<name>.max_connections`), by name. */
export function connectionLimits(config: ProxyConfig): Record<string, number> {
  const { default_backend: _default, ...entries } = config.backends;
  const limits: Record<string, number> = {};
  for (const [name, cfg] of Object.entries(entries)) {
    if (cfg && typeof cfg === 'object' && cfg.max_connections !== undefined)
      limits[name] = cfg.max_connections;
  }
  return limits;
}

/**
 * Builds every backend from the environment (built-ins) and the YAML `backends` section (custom ones); the
 * HTTP ones call their providers through `upstream`, whose pools the caller owns and closes.
 */
export function createBackendRegistry(
  config: ProxyConfig,
  env: NodeJS.ProcessEnv,
  upstream: UpstreamHttp,
  /** Told when a pool key leaves the rotation (README, Routes and failover: key pools). */
  onKeyLeave?: HttpBackendOptions['onKeyLeave'],
): BackendRegistry {
  const backends: Backend[] = [];
  const { default_backend: defaultSpec, ...custom } = config.backends;
  for (const [name, cfg] of Object.entries(custom)) {
    if (!cfg || typeof cfg !== 'object' || !isBuiltin(name)) continue;
    // A built-in backend's entry may only tune its connections, say which models take a prefill and name
    // its key pool (not the embedded mock, which has no connections, keys or prefill).
    if (name === 'mock' || !Object.keys(cfg).every((field) => BUILTIN_FIELDS.has(field))) {
      throw new ConfigError(
        `backends.${name}: "${name}" is a built-in backend; choose another name (a built-in backend takes only ${BUILTIN_FIELDS_TEXT})`,
      );
    }
  }
  for (const builtin of BUILTIN_BACKENDS) {
    const { pool, apiKeyEnv } = builtinPool(builtin, yamlEntryOf(config, builtin.name), env);
    const options: HttpBackendOptions = {
      name: builtin.name,
      baseUrl: env[builtin.baseUrlEnv] || builtin.defaultBaseUrl,
      apiKey: pool[0]?.value,
      apiKeyEnv,
      pool,
      onKeyLeave,
    };
    const backend = new HttpBackend(HTTP_PROFILES[builtin.type], options, upstream);
    // The Responses door shares the chat door's key pool (one provider, one set of keys).
    if (builtin.responses)
      backend.alsoSpeaks(
        new HttpBackend(HTTP_PROFILES.responses, { ...options, keyPool: backend.keyPool }, upstream),
      );
    backends.push(backend);
  }
  for (const [name, cfg] of Object.entries(custom)) {
    if (!cfg || typeof cfg !== 'object' || isBuiltin(name)) continue;
    if (cfg.base_url === undefined) {
      throw new ConfigError(`backends.${name}.base_url: required for a custom backend`);
    }
    if (cfg.responses && cfg.type !== 'openai') {
      throw new ConfigError(
        `backends.${name}.responses: only a 'type: openai' backend also serves the Responses API`,
      );
    }
    const options = { ...customOptions(name, { ...cfg, base_url: cfg.base_url }, env), onKeyLeave };
    const backend = new HttpBackend(HTTP_PROFILES[cfg.type ?? 'openai'], options, upstream);
    // An OpenAI-compatible server that also serves the Responses API (README, "Responses API").
    if (cfg.responses && cfg.type === 'openai')
      backend.alsoSpeaks(
        new HttpBackend(HTTP_PROFILES.responses, { ...options, keyPool: backend.keyPool }, upstream),
      );
    backends.push(backend);
  }
  backends.push(new MockBackend());
  return new BackendRegistry(backends, defaultSpec);
}
