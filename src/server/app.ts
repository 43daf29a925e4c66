import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createSecureContext } from 'node:tls';
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
import { ConfigError } from '../config/errors.js';
import type { ProxyConfig } from '../config/schema.js';
import type { ProxyMetrics } from '../observability/metrics.js';
import { registerAuthDecorations } from '../auth/gate.js';
import { registerErrorHandling } from './errors.js';
import { registerRawJsonParser } from './raw-json.js';
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
  /** Certificate and key to serve HTTPS (`--tls-cert`/`--tls-key`); plain HTTP when absent. */
  tls?: TlsFiles | null;
}

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

function readTlsFile(what: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`${what} ${path}: cannot be read (${code})`);
  }
}

/**
 * Reads `server.tls_cert`/`server.tls_key` at startup, or null when TLS is off. A file that cannot be read,
 * or a pair that does not make a usable certificate, is a startup error naming it — never plain HTTP.
 */
export function readTlsFiles(config: ProxyConfig): TlsFiles | null {
  const { tls_cert: certPath, tls_key: keyPath } = config.server;
  if (!certPath && !keyPath) return null;
  if (!certPath || !keyPath) {
    // One half alone must not quietly fall back to plain HTTP.
    throw new ConfigError(
      `HTTPS needs both a certificate and a key: ${certPath ? 'the certificate' : 'the key'} is set but not the ` +
        `${certPath ? 'key (--tls-key, TLS_KEY_FILE, server.tls_key)' : 'certificate (--tls-cert, TLS_CERT_FILE, server.tls_cert)'}`,
    );
  }
  const files = {
    cert: readTlsFile('TLS certificate file (--tls-cert)', certPath),
    key: readTlsFile('TLS key file (--tls-key)', keyPath),
  };
  try {
    createSecureContext(files);
  } catch (err) {
    // OpenSSL's reason (no PEM data, key mismatch) without any of the key material.
    const reason = (err as Error).message.replace(/^error:[0-9A-F]+:/, '');
    throw new ConfigError(`TLS certificate ${certPath} and key ${keyPath} are not a usable pair: ${reason}`);
  }
  return files;
}

/**
 * Slow-loris guards for the listening socket: how long a client may take to send its headers and its whole
 * request. Node checks them every `connectionsCheckingInterval`, so that follows the shortest timeout.
 */
function clientTimeouts(server: ProxyConfig['server']) {
  const headersTimeout = Math.round(server.client_headers_timeout_seconds * 1000);
  const requestTimeout = Math.round(server.client_request_timeout_seconds * 1000);
  return {
    headersTimeout,
    requestTimeout,
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(headersTimeout / 4))),
  };
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
  const timeouts = clientTimeouts(config.server);
  const app = Fastify({
    ...(opts.tls ? { https: { ...opts.tls, ...timeouts } } : { http: timeouts }),
    loggerInstance: opts.logger as FastifyBaseLogger,
    // Our own access line (onResponse) replaces Fastify's two request log lines.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // No child logger per request (a measurable cost on the hot path): lines that concern a request name
    // its request_id themselves.
    childLoggerFactory: (logger) => logger,
    bodyLimit: config.server.max_body_bytes,
    trustProxy: opts.trustProxy,
    genReqId: requestIdFor,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Slow-loris guard: a client must finish sending its request (not receiving the answer) in this time.
    requestTimeout: timeouts.requestTimeout,
    keepAliveTimeout: 72_000,
    routerOptions: { ignoreDuplicateSlashes: false, ignoreTrailingSlash: false },
  });
  registerRequestState(app);
  registerRawJsonParser(app);
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
    opts.metrics.observeRequest(route, backend, reply.statusCode, durationMs / 1000);
    request.log.info(
      {
        request_id: request.id,
        method: request.method,
        path: request.url.split('?', 1)[0],
        status: reply.statusCode,
        duration_ms: Math.round(durationMs * 1000) / 1000,
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
