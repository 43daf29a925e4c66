import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createSecureContext } from 'node:tls';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerFactoryHandler,
  type onRequestHookHandler,
} from 'fastify';
import type { Logger } from 'pino';
import type { BackendRegistry } from '../backends/registry.js';
import { ConfigError } from '../config/config-error.js';
import type { ProxyConfig } from '../config/schema.js';
import type { ProxyMetrics } from '../observability/metrics.js';
import type { TrustedProxies } from '../auth/client-address.js';
import type { AuthCheck, AuthRefusal } from '../auth/gate.js';
import { isCorsPreflight } from '../auth/bypass.js';
import { fastifyAuthHook, installClientAddress, registerAuthDecorations } from './auth-hook.js';
import { createAccessRecorder } from './access-log.js';
import { createChatLane, type ChatLane } from './chat-lane.js';
import { ConnectionGuard } from './connections.js';
import { corsOptionsFor, grantableRequestHeaders, laneHeaders, preflightRefusal } from './cors.js';
import { answerFailure, registerErrorHandling, sendProxyError } from './failures.js';
import { awaitContinue, continueIfAwaited } from './expect-continue.js';
import { createHostCheck, misdirected, type HostCheck } from './host-check.js';
import { registerJsonParser } from './json-parser.js';
import { requestIdFor } from './request-id.js';
import { overheadHeader, SECURITY_HEADERS } from '../pipeline/respond.js';
import { chatRoutePaths, createChatRoutes, registerRoutes, type RouteDeps } from './routes.js';
import { registerRequestState } from './state.js';
import { RouteLabels } from './route-labels.js';
import { CHAT_ROUTES } from '../pipeline/route-table.js';
import type { CaptureRecorder } from '../capture/events.js';
import { recordOwnAnswer } from '../pipeline/record.js';

/** A JSON answer's text goes in as JSON, other text as a string; a stream (the docs' assets) as nothing. */
function answerFields(payload: unknown, type: unknown): { payload?: unknown; payloadJson?: Uint8Array } {
  if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) return {};
  if (typeof type === 'string' && type.startsWith('application/json')) {
    return { payloadJson: typeof payload === 'string' ? Buffer.from(payload) : payload };
  }
  return { payload: typeof payload === 'string' ? payload : payload.toString('utf8') };
}

/** An answer Fastify wrote, as its `outbound_response` capture line: text as it went, a stream unrecorded. */
function recordFastifyAnswer(
  capture: CaptureRecorder,
  request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
): void {
  const userAgent = request.headers['user-agent'];
  recordOwnAnswer(
    capture,
    {
      id: request.id,
      method: request.method,
      url: request.url,
      ip: request.ip,
      userAgent: typeof userAgent === 'string' ? userAgent : undefined,
      keyName: request.authKeyName ?? null,
      backend: request.proxyState?.backend ?? null,
      model: request.proxyState?.model ?? null,
    },
    reply.statusCode,
    answerFields(payload, reply.getHeader('content-type')),
  );
}

/** What the server lends the operator routes registered beside it. */
export interface ExtraRouteContext {
  /** Forgets an address the connection guard closes reconnects from (an operator's unblock). */
  forgetRefused: (clientKey: string) => void;
}

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
  routes: Omit<RouteDeps, 'registry' | 'metrics' | 'config' | 'log' | 'answerFailure'>;
  /** Extra routes registered inside the authenticated scope (operator endpoints). */
  registerExtraRoutes?: (app: FastifyInstance, server: ExtraRouteContext) => void;
  /** Certificate and key to serve HTTPS (`--tls-cert`/`--tls-key`); plain HTTP when absent. */
  tls?: TlsFiles | null;
  /** Told of every accepted connection (the stream pacer's pace, `UpstreamHttp.connectionAccepted`). */
  onConnection?: (() => void) | undefined;
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
  connections: ConnectionGuard,
  onConnection: (() => void) | undefined,
) {
  return (fastifyHandler: FastifyServerFactoryHandler) => {
    const dispatch = (req: IncomingMessage, res: ServerResponse) => {
      const chatLane = lane();
      if (chatLane === null || !chatLane(req, res)) fastifyHandler(req, res);
    };
    // Every request of a connection passes the connection's bounds first (src/server/connections.ts).
    const admit = (req: IncomingMessage, res: ServerResponse) => connections.admit(req, res, dispatch);
    const server = tls
      ? https.createServer({ ...tls, ...TLS_POLICY, ...timeouts }, admit)
      : http.createServer(timeouts, admit);
    server.on('connection', (socket: Socket) => {
      onConnection?.();
      connections.accept(socket);
    });
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      awaitContinue(req);
      admit(req, res);
    });
    // Fastify's types expect a plain http.Server; an https.Server is one for everything Fastify does with it.
    return server as http.Server;
  };
}

const KEEP_ALIVE_TIMEOUT_MS = 72_000;

/**
 * Connections the kernel holds for the proxy until it accepts them (the kernel caps it at
 * `net.core.somaxconn`). Node's default of 511 overflows when a team's agents open a thousand streams
 * within a second on a busy machine: the dropped connects are retried by the client's kernel 1 s, 3 s, 7 s…
 * later, which was most of a stream's first-byte delay and of a quick request's wait behind them
 * (docs/performance.md, "Large bodies and many streams").
 */
export const LISTEN_BACKLOG = 4096;

/**
 * The HTTPS server's protocol policy (README "HTTPS without a fronting proxy"): TLS 1.2 and 1.3 only, and on TLS 1.2 only
 * forward-secret AEAD suites — ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 — so a recorded session
 * cannot be decrypted later with the server's key, and no CBC suite (padding-oracle history) is offered.
 * The list names no TLS 1.3 suite, so Node keeps its TLS 1.3 defaults (all of them AEAD and forward-secret).
 * The server's order wins: a client that also offers weaker suites still gets the first of these it knows.
 */
export const TLS_POLICY = {
  minVersion: 'TLSv1.2',
  ciphers: [
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
  honorCipherOrder: true,
} as const;

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { config } = opts;
  const timeouts = clientTimeouts(config.server);
  let lane: ChatLane | null = null;
  const corsOptions = corsOptionsFor(config, opts.auth !== null);
  // With auth on, a load balancer may use any name: Host is not checked (README "Turning it off").
  const hostCheck: HostCheck | null =
    opts.auth === null ? createHostCheck(config.server.host, config.server.allowed_hosts) : null;
  const trustProxy = opts.trustProxy;
  const connections = new ConnectionGuard({
    isTrustedPeer: trustProxy === false ? () => false : (address) => trustProxy.trusts(address),
    // The pace at which a blocked client is answered (the tarpit's hold) is also how long its reconnects
    // are closed at accept after an answer: with the hold off, every reconnect is answered 429.
    quietMs: config.auth.brute_force_protection.blocked_delay_ms,
  });
  const closeAfterRefusal = (req: IncomingMessage, res: ServerResponse, refusal: AuthRefusal) =>
    connections.refuse(req, res, refusal.status === 429 ? refusal.retryAfterSeconds : undefined);
  // The current redactor (keys rotate): for the client input the proxy's own error answers quote.
  const redact = (text: string): string => opts.routes.redactor().redact(text);
  const app = Fastify({
    serverFactory: laneFirstServer(opts.tls, timeouts, () => lane, connections, opts.onConnection),
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
  // Every route's pattern, the chat lane's first (its table's order): the label of a request no route of its
  // method took.
  const routeLabels = new RouteLabels();
  for (const route of CHAT_ROUTES) routeLabels.add(route.url);
  app.addHook('onRoute', (route) => routeLabels.add(route.url));
  installClientAddress(app, opts.trustProxy);
  registerRequestState(app);
  registerJsonParser(app);
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
  const capture = opts.routes.capture;
  if (capture !== null) {
    // Every answer Fastify gives (model lists, 404s, its errors and refusals) gets its capture line too.
    app.addHook('onSend', (request, reply, payload, done) => {
      recordFastifyAnswer(capture, request, reply, payload);
      done(null, payload);
    });
  }
  const recordAccess = createAccessRecorder(opts.logger, opts.metrics, opts.writeInfoLine);
  app.addHook('onResponse', (request, reply, done) => {
    recordAccess(
      {
        id: request.id,
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        route: request.routeOptions.url ?? routeLabels.labelOf(request.url),
        state: request.proxyState,
        keyName: request.authKeyName,
        client: request.ip,
      },
      performance.now(),
    );
    done();
  });

  if (hostCheck !== null) {
    // Before CORS: a misdirected pre-flight gets its 421 and no CORS headers.
    app.addHook('onRequest', (request, reply, done) => {
      if (hostCheck(request.headers.host)) done();
      else void sendProxyError(request, reply, misdirected(), redact);
    });
  }
  if (corsOptions !== null) {
    // Before CORS, which grants a pre-flight the headers it asks for: only a bounded list of names is granted.
    app.addHook('onRequest', (request, reply, done) => {
      const requested = request.headers['access-control-request-headers'];
      if (!isCorsPreflight(request.method, request.headers) || grantableRequestHeaders(requested)) done();
      else void sendProxyError(request, reply, preflightRefusal(), redact);
    });
    await app.register(cors, corsOptions);
  }
  if (opts.auth) {
    const onRefusal = (request: FastifyRequest, reply: FastifyReply, refusal: AuthRefusal) =>
      closeAfterRefusal(request.raw, reply.raw, refusal);
    app.addHook('onRequest', fastifyAuthHook(opts.auth, onRefusal) as onRequestHookHandler);
  }
  // After every onRequest check (Host, authentication), before the body is read.
  app.addHook('preParsing', (request, reply, payload, done) => {
    continueIfAwaited(request.raw, reply.raw);
    done(null, payload);
  });

  await app.register(swagger, {
    openapi: {
      paths: chatRoutePaths(),
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

  registerErrorHandling(app, redact);
  const deps: RouteDeps = {
    ...opts.routes,
    registry: opts.registry,
    metrics: opts.metrics,
    config,
    log: opts.logger,
    answerFailure: (to, err) => answerFailure(to, err, opts.logger, redact),
  };
  const chatRoutes = createChatRoutes(deps);
  registerRoutes(app, deps);
  opts.registerExtraRoutes?.(app, { forgetRefused: (clientKey) => connections.forget(clientKey) });
  lane = createChatLane({
    routes: chatRoutes,
    auth: opts.auth,
    hostCheck,
    trustProxy: opts.trustProxy,
    maxBodyBytes: config.server.max_body_bytes,
    recordAccess,
    headers: laneHeaders(SECURITY_HEADERS, corsOptions),
    onRefusal: closeAfterRefusal,
    isOpen: () => app.server.listening,
    log: opts.logger,
    redact,
    capture: opts.routes.capture,
  });
  return app;
}
