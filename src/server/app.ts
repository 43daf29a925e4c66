import { performance } from 'node:perf_hooks';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type onRequestHookHandler,
} from 'fastify';
import type { Logger } from 'pino';
import type { BackendRegistry } from '../backends/registry.js';
import type { ProxyConfig } from '../config/schema.js';
import type { ProxyMetrics } from '../observability/metrics.js';
import { registerAuthDecorations } from '../auth/gate.js';
import { registerErrorHandling } from './errors.js';
import { requestIdFor } from './request-id.js';
import { registerRoutes, type RouteDeps } from './routes.js';
import { registerRequestState } from './state.js';

export interface AppOptions {
  config: ProxyConfig;
  logger: Logger;
  registry: BackendRegistry;
  metrics: ProxyMetrics;
  /** The authentication gate, run on every request before routing; null when auth is disabled. */
  authHook: onRequestHookHandler | null;
  /** Trust function for X-Forwarded-For (only peers in --trusted-proxy); false to ignore the header. */
  trustProxy: ((address: string, hop: number) => boolean) | false;
  routes: Omit<RouteDeps, 'registry' | 'metrics' | 'config'>;
  /** Extra routes registered inside the authenticated scope (operator endpoints). */
  registerExtraRoutes?: (app: FastifyInstance) => void;
}

/** Constant security headers, set once per response (SPEC §2.3, §6.5). */
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
} as const;

function routeLabel(url: string | undefined): string {
  return url ?? 'unmatched';
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { config } = opts;
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    // Our own access line (onResponse) replaces Fastify's two request log lines.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    bodyLimit: config.server.max_body_bytes,
    trustProxy: opts.trustProxy,
    genReqId: requestIdFor,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Slow-loris guard: a client must finish sending its request (not receiving the answer) in this time.
    requestTimeout: 60_000,
    keepAliveTimeout: 72_000,
    routerOptions: { ignoreDuplicateSlashes: false, ignoreTrailingSlash: false },
  });
  registerRequestState(app);
  registerAuthDecorations(app);

  app.addHook('onRequest', (request, reply, done) => {
    request.proxyState = { start: performance.now(), backendMs: 0, backend: null, model: null };
    reply.header('x-request-id', request.id);
    reply.headers(SECURITY_HEADERS);
    done();
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    const state = request.proxyState;
    if (state) {
      const overhead = Math.max(0, performance.now() - state.start - state.backendMs);
      reply.header('x-proxy-overhead-ms', overhead.toFixed(3));
    }
    done(null, payload);
  });
  app.addHook('onResponse', (request, reply, done) => {
    const state = request.proxyState;
    const durationMs = state ? performance.now() - state.start : 0;
    const route = routeLabel(request.routeOptions.url);
    const backend = state?.backend ?? '';
    opts.metrics.requests.inc({ route, backend, status: String(reply.statusCode) });
    opts.metrics.duration.observe({ route, backend }, durationMs / 1000);
    request.log.info(
      {
        method: request.method,
        path: request.url.split('?', 1)[0],
        status: reply.statusCode,
        duration_ms: Number(durationMs.toFixed(3)),
        backend: state?.backend ?? undefined,
        model: state?.model ?? undefined,
        key_name: request.authKeyName ?? undefined,
        client: request.ip,
      },
      'request',
    );
    done();
  });

  await app.register(cors, {
    origin: config.server.cors_origins.length > 0 ? config.server.cors_origins : '*',
    credentials: false,
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowedHeaders: [
      'authorization',
      'content-type',
      'x-api-key',
      'x-goog-api-key',
      'anthropic-version',
      'anthropic-beta',
      'x-request-id',
      'x-stainless-arch',
      'x-stainless-lang',
      'x-stainless-os',
      'x-stainless-package-version',
      'x-stainless-retry-count',
      'x-stainless-runtime',
      'x-stainless-runtime-version',
      'x-stainless-timeout',
      'x-goog-api-client',
      'anthropic-dangerous-direct-browser-access',
    ],
    exposedHeaders: ['x-request-id', 'x-proxy-overhead-ms', 'retry-after'],
    maxAge: 600,
  });
  if (opts.authHook) app.addHook('onRequest', opts.authHook);

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'LLM Interactive Proxy',
        description:
          'A gateway in front of LLM providers. Authenticate with a proxy key: `Authorization: Bearer <key>`, `x-api-key` or `x-goog-api-key`.',
        version: '0.1.0',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
          googApiKey: { type: 'apiKey', in: 'header', name: 'x-goog-api-key' },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }, { googApiKey: [] }],
    },
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: false },
    staticCSP: true,
  });

  registerErrorHandling(app, (text) => opts.routes.redactor().redact(text));
  registerRoutes(app, { ...opts.routes, registry: opts.registry, metrics: opts.metrics, config });
  opts.registerExtraRoutes?.(app);
  return app;
}
