import type { FastifyInstance } from 'fastify';
import { setupAuth } from './auth-setup.js';
import { closeUpstreamHttp, configureUpstreamHttp } from '../backends/http.js';
import { createBackendRegistry } from '../backends/registry.js';
import type { LoadedConfig } from '../config/load.js';
import { createLogger, type ProxyLogger } from '../observability/logger.js';
import { ProxyMetrics } from '../observability/metrics.js';
import { buildApp } from './app.js';

export interface StartOptions {
  loaded: LoadedConfig;
  env: NodeJS.ProcessEnv;
}

export interface RunningProxy {
  app: FastifyInstance;
  /** `http://host:port` as actually bound (port 0 resolved). */
  url: string;
  /** Graceful stop: refuse new work, let in-flight requests finish up to the deadline, flush. */
  shutdown(): Promise<void>;
}

const identity = (text: string): string => text;

export async function startProxy({ loaded, env }: StartOptions): Promise<RunningProxy> {
  const { config } = loaded;
  const log: ProxyLogger = createLogger({
    level: config.logging.level,
    file: config.logging.file,
    format: config.logging.format,
    redact: () => identity,
  });
  const logger = log.logger;
  const metrics = new ProxyMetrics();
  const registry = createBackendRegistry(config, env);
  configureUpstreamHttp({ timeoutMs: config.server.timeout_seconds * 1000 });
  const auth = await setupAuth({ config, env, logger, metrics });

  const app = await buildApp({
    config,
    logger,
    registry,
    metrics,
    authHook: auth.hook,
    trustProxy: auth.trustProxy,
    registerExtraRoutes: (instance) => auth.registerRoutes(instance),
    routes: {
      scrubPrompt: (body) => body,
      redactText: identity,
      readiness: () => ({
        status: 'ok',
        backends: registry.configuredNames(),
        default_backend: registry.defaultBackend.name,
        auth: auth.readiness(),
      }),
    },
  });

  await app.listen({ host: config.server.host, port: config.server.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  const url = `http://${host}:${port}`;

  if (registry.mockIsFallback) {
    logger.warn(
      'No backend is configured: requests go to the embedded mock backend, which echoes the last user message',
    );
  }
  logger.info(
    {
      url,
      auth: auth.describe(),
      backends: registry.configuredNames(),
      default_backend: registry.defaultBackend.name,
      brute_force: auth.bruteForceSummary(),
      capture_file: config.logging.capture_file ?? null,
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
      await closeUpstreamHttp();
      logger.info('stopped');
      await log.flush();
    })();
    return stopping;
  };
  return { app, url, shutdown };
}
