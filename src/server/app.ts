import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { createSecureContext } from 'node:tls';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerFactoryHandler,
  type onRequestHookHandler,
} from 'fastify';
import type { Logger } from 'pino';
import type { BackendRegistry } from '../backends/registry.js';
import { ConfigError } from '../config/errors.js';
import type { ProxyConfig } from '../config/schema.js';
import type { ProxyMetrics } from '../observability/metrics.js';
import { installClientAddress, type TrustedProxies } from '../auth/client-address.js';
import { fastifyAuthHook, registerAuthDecorations, type AuthCheck } from '../auth/gate.js';
import { createAccessRecorder } from './access-log.js';
import { createChatLane, type ChatLane } from './chat-lane.js';
import { registerErrorHandling } from './errors.js';
import { registerRawJsonParser } from './raw-json.js';
import { requestIdFor } from './request-id.js';
import { overheadHeader, SECURITY_HEADERS } from './respond.js';
import { createChatRoutes, registerRoutes, type RouteDeps } from './routes.js';
import { registerRequestState } from './state.js';

export interface AppOptions {
  config: ProxyConfig;
  logger: Logger;
  /** The logger's writer for pre-formatted info lines (the access line); absent: through `logger`. */
  writeInfoLine?: ((line: string) => void) | null;
  registry: BackendRegistry;
  metrics: ProxyMetrics;
  /** The authentication check, run on every request before routing; null when auth is disabled. */
  auth: AuthCheck | null;
  /** The reverse proxies whose forwarding headers are believed (--trusted-proxy); false to ignore them. */
  trustProxy: TrustedProxies | false;
  routes: Omit<RouteDeps, 'registry' | 'metrics' | 'config' | 'log'>;
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

/**
 * The listening server, made here rather than by Fastify so that the chat lane sees each request first:
 * what it takes it answers, the rest goes to Fastify's handler. `lane()` is read per request because the
 * lane is built after the routes, once the server exists.
 */
function laneFirstServer(
  tls: TlsFiles | null | undefined,
  timeouts: ReturnType<typeof clientTimeouts>,
  lane: () => ChatLane | null,
) {
  return (fastifyHandler: FastifyServerFactoryHandler) => {
    const dispatch = (req: IncomingMessage, res: ServerResponse) => {
      const chatLane = lane();
      if (chatLane === null || !chatLane(req, res)) fastifyHandler(req, res);
    };
    const server = tls
      ? https.createServer({ ...tls, ...timeouts }, dispatch)
      : http.createServer(timeouts, dispatch);
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    // Fastify's types expect a plain http.Server; an https.Server is one for everything Fastify does with it.
    return server as http.Server;
  };
}

const KEEP_ALIVE_TIMEOUT_MS = 72_000;

type CorsOptions = {
  origin: string | string[];
  exposedHeaders: string[];
  [option: string]: unknown;
};

function corsOptionsFor(config: ProxyConfig): CorsOptions {
  return {
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
  };
}

/**
 * What @fastify/cors adds to an answer for a request without an Origin header (no browser): the chat lane
 * only takes such requests and adds the same, computed once.
 */
function corsHeadersWithoutOrigin(options: CorsOptions): Record<string, string> {
  const headers: Record<string, string> =
    options.origin === '*' ? { 'access-control-allow-origin': '*' } : { vary: 'Origin' };
  headers['access-control-expose-headers'] = options.exposedHeaders.join(', ');
  return headers;
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { config } = opts;
  const timeouts = clientTimeouts(config.server);
  let lane: ChatLane | null = null;
  const corsOptions = corsOptionsFor(config);
  const app = Fastify({
    serverFactory: laneFirstServer(opts.tls, timeouts, () => lane),
    loggerInstance: opts.logger as FastifyBaseLogger,
    // Our own access line (onResponse) replaces Fastify's two request log lines.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // No child logger per request (a measurable cost on the hot path): lines that concern a request name
    // its request_id themselves.
    childLoggerFactory: (logger) => logger,
    bodyLimit: config.server.max_body_bytes,
    // No Fastify trustProxy: request.ip comes from our resolver (installClientAddress), as in the chat lane.
    genReqId: requestIdFor,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Slow-loris guard: a client must finish sending its request (not receiving the answer) in this time.
    requestTimeout: timeouts.requestTimeout,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    routerOptions: { ignoreDuplicateSlashes: false, ignoreTrailingSlash: false },
  });
  installClientAddress(app, opts.trustProxy);
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
    if (request.proxyState) reply.header('x-proxy-overhead-ms', overheadHeader(request.proxyState));
    done(null, payload);
  });
  const recordAccess = createAccessRecorder(opts.logger, opts.metrics, opts.writeInfoLine);
  app.addHook('onResponse', (request, reply, done) => {
    recordAccess(
      {
        id: request.id,
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        route: request.routeOptions.url ?? 'unmatched',
        state: request.proxyState,
        keyName: request.authKeyName,
        client: request.ip,
      },
      performance.now(),
    );
    done();
  });

  await app.register(cors, corsOptions);
  if (opts.auth) app.addHook('onRequest', fastifyAuthHook(opts.auth) as onRequestHookHandler);

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
  const deps: RouteDeps = {
    ...opts.routes,
    registry: opts.registry,
    metrics: opts.metrics,
    config,
    log: opts.logger,
  };
  const chatRoutes = createChatRoutes(deps);
  registerRoutes(app, deps, chatRoutes);
  opts.registerExtraRoutes?.(app);
  lane = createChatLane({
    routes: chatRoutes,
    auth: opts.auth,
    trustProxy: opts.trustProxy,
    maxBodyBytes: config.server.max_body_bytes,
    recordAccess,
    headers: { ...SECURITY_HEADERS, ...corsHeadersWithoutOrigin(corsOptions) },
    isOpen: () => app.server.listening,
    log: opts.logger,
  });
  return app;
}
