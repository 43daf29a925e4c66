import { closeSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { CaptureRecorder } from '../capture/events.js';
import { WorkerCaptureWriter } from '../capture/worker-writer.js';
import { UpstreamHttp } from '../backends/http.js';
import { connectionLimits, createBackendRegistry, type BackendRegistry } from '../backends/registry.js';
import type { LoadedConfig } from '../config/load.js';
import type { ProxyConfig } from '../config/schema.js';
import { createLogger, type ProxyLogger } from '../observability/logger.js';
import { ProxyMetrics } from '../observability/metrics.js';
import { ModelLabels } from '../observability/model-labels.js';
import {
  loosePermissionWarnings,
  openPrivateAppend,
  type PathToCheck,
} from '../observability/private-files.js';
import { RedactorHolder } from '../redaction/holder.js';
import { collectEnvSecrets, type Redactor } from '../redaction/redactor.js';
import { createStoredResponses } from '../state/responses-factory.js';
import { createFailover } from '../pipeline/attempts.js';
import { createBreakerStore } from '../state/breakers.js';
import { buildApp, LISTEN_BACKLOG, readTlsFiles } from './app.js';
import { setupAuth } from '../auth/setup.js';
import { registerAuthAdminRoutes, registerKeyReloadRoute } from './admin-routes.js';
import { SessionStep } from '../pipeline/session.js';
import { MemorySessionStore, SharedSessionStore, type SessionStore } from '../sessions/store.js';
import { createSharedIdleEntries, SESSIONS_FEATURE } from '../state/idle-entries-redis.js';
import { ShellGuard } from '../sessions/shell-guard.js';
import { DEFAULT_SHELL_RULES, patternRule } from '../sessions/shell-rules.js';
import { resolveStateSettings } from '../state/settings.js';
import { openStateStore, type StateStore } from '../state/store.js';
import { PolicyTable } from '../teams/policies.js';
import { refusedModel } from '../pipeline/policy.js';
import { createSignatureSealer, signatureKey } from '../protocols/signatures.js';
import { RequestLimits, type LimitName } from '../pipeline/limits.js';
import { createLimitStore } from '../state/limits-redis.js';
import { PriceTable } from '../teams/prices.js';
import type { RouteTable } from '../routing/routes.js';
import { Spend } from '../pipeline/spend.js';
import { openUsageLedger } from '../state/usage-factory.js';
import { registerUsageRoutes } from './usage-routes.js';

/**
 * The models the configuration names, which always count under their own name (src/observability/
 * model-labels.ts): every named route's elements, the default backend's model, and the price table's names.
 */
function configuredModels(
  registry: BackendRegistry,
  routes: RouteTable,
  prices: PriceTable,
): (backend: string, model: string) => boolean {
  const named = new Set<string>();
  if (registry.defaultModel !== undefined)
    named.add(`${registry.defaultBackend.name}\u0000${registry.defaultModel}`);
  for (const name of routes.names()) {
    for (const element of routes.chain(name) ?? []) {
      try {
        const resolved = registry.resolve(element);
        named.add(`${resolved.backend.name}\u0000${resolved.model}`);
      } catch {
        // A backend without credentials answers nothing: nothing to count.
      }
    }
  }
  return (backend, model) => named.has(`${backend}\u0000${model}`) || prices.names(backend, model);
}

export interface StartOptions {
  loaded: LoadedConfig;
  env: NodeJS.ProcessEnv;
  /** The YAML file the config came from, re-read when keys are reloaded. */
  configFile?: string | undefined;
  /**
   * `PROXY_STATE_SECRET`, read by the CLI: required with a Redis state store, where it encrypts what the
   * proxy keeps (README, "Shared state"). A secret: redacted everywhere.
   */
  stateSecret?: string | undefined;
  /**
   * Told as soon as the logger and the redactor exist (before keys are checked, backends built or the port
   * bound): what a crash report from then on goes through.
   */
  onLoggingReady?:
    ((logging: { logger: ProxyLogger['logger']; redactor: () => Redactor }) => void) | undefined;
}

export interface RunningProxy {
  app: FastifyInstance;
  /** The shared state store: features that keep state across replicas build on it. */
  state: StateStore;
  /** `http://host:port` as actually bound (port 0 resolved). */
  url: string;
  /** Graceful stop: refuse new work, let in-flight requests finish up to the deadline, flush. */
  shutdown(): Promise<void>;
}

/** Secrets known from the environment: provider keys (any custom `api_key_env` too) and env proxy keys. */
function environmentSecrets(config: ProxyConfig, env: NodeJS.ProcessEnv): string[] {
  const secrets = collectEnvSecrets(env);
  const { default_backend: _default, ...custom } = config.backends;
  for (const backend of Object.values(custom)) {
    const value = backend?.api_key_env ? env[backend.api_key_env] : undefined;
    if (value) secrets.push(value);
    // Every key of a pool is a secret, whatever its env var is called.
    for (const name of backend?.api_key_envs ?? []) {
      const pooled = env[name];
      if (pooled) secrets.push(pooled);
    }
  }
  return secrets;
}

/** The dangerous-command guard as configured: the default rules (unless turned off) and the YAML ones. */
function shellGuardOf(settings: ProxyConfig['guardrails']): ShellGuard {
  const { shell } = settings;
  const rules = [...(shell.default_rules ? DEFAULT_SHELL_RULES : []), ...shell.rules.map(patternRule)];
  return new ShellGuard({ action: settings.action, rules, extraTools: shell.tools });
}

/** The banner's `admin` field (README, Admin keys): whether the operator endpoints can be reached, and how. */
function adminSummary(authOn: boolean, hasAdminKey: boolean): { text: string; missing: boolean } {
  if (!authOn) return { text: 'not needed: auth is off, the operator endpoints are open', missing: false };
  if (hasAdminKey) return { text: 'configured', missing: false };
  return {
    text:
      'none: /admin/*, /metrics and /internal/health answer 403 until one is: set ' +
      'LLM_INTERACTIVE_PROXY_ADMIN_KEY, or give a key role: admin (a reload picks that up)',
    missing: true,
  };
}

/** Sessions' settings: in the state store when it is Redis (shared by replicas, sealed), else this proxy's. */
function sessionStoreOf(settings: ProxyConfig['sessions'], state: StateStore): SessionStore {
  const limits = { maxEntries: settings.max_sessions, ttlSeconds: settings.ttl_seconds };
  const shared = createSharedIdleEntries({
    store: state,
    feature: SESSIONS_FEATURE,
    limits,
    name: 'Session store',
    degradedNote: 'session settings made meanwhile are kept on this replica only',
    recoveredNote: 'session settings are shared across replicas again',
  });
  return shared === null
    ? new MemorySessionStore({ maxSessions: limits.maxEntries, ttlSeconds: limits.ttlSeconds })
    : new SharedSessionStore(shared);
}

/** Drop notices are rate-limited: a full disk must not turn into a flood of log lines. */
function dropLogger(log: ProxyLogger['logger']): (total: number) => void {
  let lastLogged = 0;
  return (total) => {
    const now = Date.now();
    if (now - lastLogged < 10_000) return;
    lastLogged = now;
    log.warn({ dropped_total: total }, 'Wire capture is falling behind: entries dropped');
  };
}

/** The files that hold logs, captures and keys, as configured: checked once at startup. */
function privateFiles(config: ProxyConfig): PathToCheck[] {
  const { file, capture_file: capture, capture_max_files: rotated } = config.logging;
  const paths: PathToCheck[] = [];
  if (file) paths.push({ what: 'log file (--log-file)', path: file, directory: true });
  if (capture) {
    paths.push({ what: 'capture file (--capture-file)', path: capture, directory: true });
    for (let n = 1; n <= rotated; n++) {
      paths.push({ what: 'rotated capture file', path: `${capture}.${n}`, directory: false });
    }
  }
  const keysFile = config.auth.api_keys_file;
  if (keysFile) paths.push({ what: 'API keys file (--api-keys-file)', path: keysFile, directory: false });
  return paths;
}

export async function startProxy({
  loaded,
  env,
  configFile,
  stateSecret,
  onLoggingReady,
}: StartOptions): Promise<RunningProxy> {
  const { config } = loaded;
  // First: a missing or short secret is a configuration error, before anything is opened.
  const stateSettings = resolveStateSettings(config, stateSecret);
  const tls = readTlsFiles(config);
  // The capture file is written by its worker, later: opened once here (made if missing, private; a link
  // refused) so that a path the proxy cannot write — a directory, no permission, a link planted there — is a
  // startup error now rather than a stream of dropped entries.
  if (config.logging.capture_file) {
    closeSync(openPrivateAppend('capture file (--capture-file)', config.logging.capture_file));
  }
  const secrets = new RedactorHolder([
    ...environmentSecrets(config, env),
    ...(stateSettings.secret !== undefined ? [stateSettings.secret] : []),
  ]);
  const log: ProxyLogger = await createLogger({
    level: config.logging.level,
    file: config.logging.file,
    format: config.logging.format,
    redactor: () => secrets.current,
  });
  const logger = log.logger;
  for (const warning of loosePermissionWarnings(privateFiles(config))) logger.warn(warning);
  onLoggingReady?.({ logger, redactor: () => secrets.current });
  const metrics = new ProxyMetrics();
  const upstream = new UpstreamHttp({
    timeoutMs: config.server.timeout_seconds * 1000,
    maxConnections: connectionLimits(config),
  });
  // A pool key leaving the rotation: one warning naming the backend and the key's env var, never its value.
  const registry = createBackendRegistry(config, env, upstream, (backend, leave) =>
    logger.warn(
      {
        backend,
        key_name: leave.key,
        position: leave.position,
        status: leave.status,
        ...(leave.restS === undefined ? {} : { rest_s: leave.restS }),
      },
      leave.state === 'out' ? 'Provider key out of rotation' : 'Provider key resting',
    ),
  );
  metrics.keyPoolSource = () => ({ leaves: registry.keyLeaves(), states: registry.keyPools() });
  const state = await openStateStore({
    settings: stateSettings,
    log: logger,
    onDegradedChange: (feature, degraded) => metrics.stateStoreDegraded.set({ feature }, degraded ? 1 : 0),
  });
  const auth = await setupAuth({
    config,
    env,
    logger,
    metrics,
    configFile,
    state,
    writeWarnLine: log.writeWarnLine,
    redact: (text) => secrets.current.redact(text),
  });
  auth.onSecretsChanged(() => secrets.update(auth.secrets()));
  secrets.update(auth.secrets());
  // The teams policies, rebuilt with the keys they belong to (README, Teams: policies).
  const buildPolicies = () => {
    const sources = auth.policySources();
    return new PolicyTable(sources.keys, sources.labels);
  };
  let policies = buildPolicies();
  auth.onKeysChanged(() => {
    policies = buildPolicies();
  });
  // Per-key rpm and max_concurrent, in the state store: exact across replicas on Redis (README, Teams).
  // One limit store (the state store's) for every counter: rpm, max_concurrent, tpm and budgets.
  const limitStore = createLimitStore({ store: state });
  const countRejection = (key: string, limit: LimitName) => metrics.limitRejections.inc({ key, limit });
  const limits = new RequestLimits({ store: limitStore, onRejected: countRejection, log: logger });

  // The circuit breakers live in the state store, so replicas on Redis share them (README, Shared state).
  const failover = createFailover(config, createBreakerStore(state));

  // Usage, prices, tpm and budgets (README, Teams: usage), models counted under bounded names.
  const prices = new PriceTable(config.prices);
  const modelLabels = new ModelLabels({
    known: configuredModels(registry, failover.routes, prices),
    redactor: () => secrets.current,
  });
  const usageLedger = await openUsageLedger(state, config.state.usage_file, logger, modelLabels);
  const spend = new Spend({
    policies: () => policies,
    prices,
    ledger: usageLedger,
    stats: metrics.usage,
    labels: modelLabels,
    limits: limitStore,
    requestLimits: limits,
    registry,
    log: logger,
    onRejected: countRejection,
  });

  metrics.failoverSource = async () => ({
    attempts: failover.stats.attempts,
    invalidEventsDropped: failover.stats.invalidEventsDropped,
    // Elements name the clients' models: labelled as usage counts them.
    breakers: (await failover.breakers.snapshot()).map((b) => ({
      ...b,
      element: modelLabels.ofElement(b.element),
    })),
  });
  const captureFile = config.logging.capture_file;
  const reportDrop = dropLogger(logger);
  const captureWriter = captureFile
    ? new WorkerCaptureWriter({
        path: captureFile,
        maxBytes: config.logging.capture_max_bytes,
        maxFiles: config.logging.capture_max_files,
        onDrop: (info) => {
          metrics.captureDropped.inc(info.entries);
          reportDrop(info.totalDropped);
        },
      })
    : null;
  // Its worker's heap set-up resets the young generation's growth factor (cli/young-generation.ts), which
  // is set again once the worker runs: waited for here, before building the app allocates, so that no
  // collection of the proxy's own runs in between and grows its new space past the cap.
  await captureWriter?.online;

  const app = await buildApp({
    config,
    logger,
    writeInfoLine: log.writeInfoLine,
    registry,
    metrics,
    auth: auth.check,
    trustProxy: auth.trustProxy,
    tls,
    onConnection: () => upstream.connectionAccepted(),
    registerExtraRoutes: (instance, server) => {
      registerAuthAdminRoutes(instance, { guard: auth.guard, onUnblocked: server.forgetRefused });
      registerKeyReloadRoute(instance, auth.reloader);
      registerUsageRoutes(instance, {
        ledger: usageLedger,
        policies: () => policies,
        redactor: () => secrets.current,
      });
    },
    routes: {
      redactor: () => secrets.current,
      scrubPrompts: config.auth.redact_api_keys_in_prompts,
      sessions: config.sessions.commands
        ? new SessionStep({
            store: sessionStoreOf(config.sessions, state),
            prefix: config.sessions.command_prefix,
            checkModel: (model) => {
              const resolved = registry.resolve(model);
              // `gemini:` names a backend and nothing to send it: every request would fail upstream.
              if (resolved.model === '')
                throw new Error(
                  `'${model}' names backend '${resolved.backend.name}' but no model, e.g. ${resolved.backend.name}:<model>`,
                );
            },
            // Judged as the request naming it will be (chat.ts, `refusedModel`): a route by its name or its
            // chain, a chain and a model element by element.
            checkAllowed: (model, keyName) => {
              if (!policies.hasModelRules) return;
              const named = failover.routes.plan(model) ?? { name: null, elements: [model] };
              const refused = refusedModel(policies, keyName, named, registry);
              if (refused !== null)
                throw new Error(
                  `'${refused}' is not among the models this key may use (its \`models:\` allow-list)`,
                );
            },
            routes: failover.routes,
            redact: (text) => secrets.current.redact(text),
          })
        : null,
      loopRepeats: config.loop_guard.enabled ? config.loop_guard.repeats : 0,
      shellGuard: config.guardrails.enabled ? shellGuardOf(config.guardrails) : null,
      // In the state store: shared by replicas, sealed, when it is Redis (README, "Shared state").
      responses: createStoredResponses({
        store: state,
        limits: { maxStored: config.responses.max_stored, ttlSeconds: config.responses.ttl_seconds },
      }),
      failover,
      policies: () => policies,
      // Reasoning signatures that cross families: keyed by PROXY_STATE_SECRET, else per process.
      signatures: createSignatureSealer(signatureKey(stateSettings.secret)),
      limits,
      spend,
      capture: captureWriter ? new CaptureRecorder(() => secrets.current, captureWriter) : null,
      readiness: async () => {
        const authState = auth.readiness();
        const store = authState.brute_force as { status?: string } | undefined;
        const stateHealth = state.health();
        const degraded = store?.status === 'degraded' || stateHealth.status === 'degraded';
        return {
          status: degraded ? 'degraded' : 'ok',
          backends: registry.configuredNames(),
          default_backend: registry.defaultBackend.name,
          auth: authState,
          state: stateHealth,
          capture: captureWriter ? { file: captureFile, dropped: captureWriter.dropped } : null,
          breakers: await failover.breakers.snapshot(),
          key_pools: registry.keyPools(),
        };
      },
    },
  });

  await app.listen({ host: config.server.host, port: config.server.port, backlog: LISTEN_BACKLOG });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const url = `${tls ? 'https' : 'http'}://${host}:${port}`;

  if (registry.mockIsFallback) {
    // Backends the YAML declares whose key is not set: the likeliest reason a real backend was meant.
    const { default_backend: _default, ...declared } = config.backends;
    const keyless = Object.keys(declared).flatMap((name) => {
      const missing = registry.get(name)?.missingCredential;
      return missing ? [`${name} (set ${missing})`] : [];
    });
    logger.warn(
      keyless.length > 0
        ? `No backend has its key — ${keyless.join(', ')}: requests that name no backend go to the embedded ` +
            'mock backend, which echoes the last user message'
        : 'No backend is configured: requests go to the embedded mock backend, which echoes the last user message',
    );
  }
  // Without an admin key the operator endpoints refuse everyone: the banner says so, and is a warning then.
  const admin = adminSummary(auth.check !== null, auth.hasAdminKey());
  logger[admin.missing ? 'warn' : 'info'](
    {
      url,
      auth: auth.describe(),
      admin: admin.text,
      backends: registry.configuredNames(),
      default_backend: registry.defaultBackend.name,
      brute_force: auth.bruteForceSummary(),
      state_store: state.kind === 'redis' ? state.redis?.description : 'memory',
      capture_file: captureFile ?? null,
    },
    `LLM Interactive Proxy listening on ${url}`,
  );

  let stopping: Promise<void> | null = null;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info(
        { deadline_seconds: config.server.shutdown_timeout_seconds },
        'shutting down: finishing in-flight requests',
      );
      const deadline = setTimeout(() => {
        logger.warn('shutdown deadline reached: closing remaining connections');
        app.server.closeAllConnections();
      }, config.server.shutdown_timeout_seconds * 1000);
      deadline.unref();
      // Keep-alive connections become idle as their last response ends; close each as soon as it does.
      const sweeper = setInterval(() => app.server.closeIdleConnections(), 50);
      await app.close();
      clearInterval(sweeper);
      clearTimeout(deadline);
      await auth.close();
      await usageLedger.close();
      await state.close();
      await upstream.close();
      await captureWriter?.close();
      logger.info('stopped');
      await log.flush();
    })();
    return stopping;
  };
  return { app, url, state, shutdown };
}
