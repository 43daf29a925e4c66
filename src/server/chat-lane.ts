import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { isRefusal, type AuthCheck, type AuthRefusal, type AuthSubject } from '../auth/gate.js';
import { resolveClientAddress, type TrustedProxies } from '../auth/client-address.js';
import { ProxyError } from '../proxy-error.js';
import type { Redact } from '../redaction/excerpt.js';
import type { CaptureRecorder } from '../capture/events.js';
import { recordOwnAnswer } from '../pipeline/record.js';
import type { AccessRecorder } from './access-log.js';
import { refusalText, renderRefusal } from './auth-answers.js';
import type { LaneHeaders } from './cors.js';
import { answerFailure, bodyError } from './failures.js';
import { continueIfAwaited } from './expect-continue.js';
import { misdirected, type HostCheck } from './host-check.js';
import { readJsonBody } from './json-body.js';
import { requestIdFor } from './request-id.js';
import { writeJson, type OwnAnswerTap, type Responder } from '../pipeline/respond.js';
import type { RequestBody } from '../pipeline/request-body.js';
import { ReceivedExchange } from '../pipeline/exchange.js';
import type { ChatRoute } from './routes.js';
import type { RequestState } from '../pipeline/state.js';

/**
 * The chat lane: the one door for chat requests (POST to a chat route), on plain node:http in front of
 * Fastify — the hot path (docs/performance.md). It reads the client address, answers a draining server
 * (503), checks Host (auth off) and authentication, reads and parses the body, and hands the request to the
 * chat pipeline (src/pipeline/), without Fastify's per-request machinery (request and reply objects, hook
 * runners, content-type parsers). A browser's request is served here too, with the CORS headers
 * @fastify/cors would add (src/server/cors.ts); Fastify keeps everything else: pre-flights, models, docs,
 * health, metrics, operator endpoints.
 */
export interface ChatLaneOptions {
  routes: readonly ChatRoute[];
  /** Null when authentication is disabled. */
  auth: AuthCheck | null;
  /** With authentication disabled, which `Host` values name this proxy; null (nothing checked) with auth on. */
  hostCheck: HostCheck | null;
  trustProxy: TrustedProxies | false;
  maxBodyBytes: number;
  recordAccess: AccessRecorder;
  /** Headers every answer carries besides its request id, by the request's Origin: security and CORS. */
  headers: LaneHeaders;
  /** Told of every refusal before it is written (it may close the connection behind it). */
  onRefusal?: (req: IncomingMessage, res: ServerResponse, refusal: AuthRefusal) => void;
  /** False once the server stops accepting: Fastify then answers 503. */
  isOpen: () => boolean;
  log: { error(obj: object, msg: string): void };
  /** Scrubs secrets from the client input an error answer quotes (the current redactor's). */
  redact: Redact;
  /** The wire capture, null when off: then no answer costs any capture work. */
  capture?: CaptureRecorder | null;
}

/** Takes the request (and answers it) or returns false, leaving it untouched for Fastify. */
export type ChatLane = (req: IncomingMessage, res: ServerResponse) => boolean;

const CLIENT_GONE = 'client_gone';

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  if (value === 'application/json') return true;
  const semicolon = value.indexOf(';');
  return (semicolon < 0 ? value : value.slice(0, semicolon)).trim().toLowerCase() === 'application/json';
}

/**
 * How a chat body is read, by its Content-Type, as HTTP servers commonly do: JSON is parsed; no type and no
 * body leaves the body absent (the pipeline then asks for a JSON object); anything else is a 415.
 */
function bodyKind(headers: IncomingHttpHeaders): 'json' | 'none' | 'unsupported' | 'encoded' {
  // A compressed body would be read as broken JSON: said for what it is instead.
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return 'encoded';
  const type = headers['content-type'];
  if (type !== undefined) return isJsonContentType(type) ? 'json' : 'unsupported';
  const length = headers['content-length'];
  const empty = headers['transfer-encoding'] === undefined && (length === undefined || length === '0');
  return empty ? 'none' : 'unsupported';
}

/** What a chat request gets once the proxy is draining: a load balancer sends it elsewhere. */
const SHUTTING_DOWN = new ProxyError(503, 'The proxy is shutting down; send the request again', {
  code: 'service_unavailable',
});

/**
 * Exact paths, plus patterns with a `*`: a prefix (a trailing `*`, which Fastify matches only with a tail) or a
 * prefix and a suffix with something between them. Patterns are tried in table order.
 */
function compileMatcher(routes: readonly ChatRoute[]): (path: string) => ChatRoute | undefined {
  const exact = new Map<string, ChatRoute>();
  const patterns: Array<[prefix: string, suffix: string, route: ChatRoute]> = [];
  for (const route of routes) {
    const star = route.url.indexOf('*');
    if (star >= 0) patterns.push([route.url.slice(0, star), route.url.slice(star + 1), route]);
    else exact.set(route.url, route);
  }
  return (path) => {
    const hit = exact.get(path);
    if (hit !== undefined) return hit;
    for (const [prefix, suffix, route] of patterns) {
      if (path.length > prefix.length + suffix.length && path.startsWith(prefix) && path.endsWith(suffix)) {
        return route;
      }
    }
    return undefined;
  };
}

/** Reads the whole request body, refusing more than `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) {
      reject(bodyError('tooLarge'));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stop();
        reject(bodyError('tooLarge'));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onGone = () => {
      stop();
      reject(new ProxyError(499, 'Client closed the request', { code: CLIENT_GONE }));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onGone);
    req.once('close', onGone);
  });
}

export function createChatLane(options: ChatLaneOptions): ChatLane {
  const { auth, hostCheck, trustProxy, maxBodyBytes, recordAccess, isOpen, log, onRefusal, redact } = options;
  const capture = options.capture ?? null;
  const headersFor = options.headers;
  const match = compileMatcher(options.routes);

  async function serve(req: IncomingMessage, res: ServerResponse, route: ChatRoute, url: string) {
    const state: RequestState = { start: performance.now(), backendMs: 0, backend: null, model: null };
    const id = requestIdFor(req);
    const ip = resolveClientAddress(req, trustProxy);
    const baseHeaders = headersFor(req.headers.origin);
    let keyName: string | null = null;
    // Only with the capture on: the proxy's own answers (errors, refusals) get their capture line.
    const ownAnswer: OwnAnswerTap | undefined =
      capture === null
        ? undefined
        : (status, body, metadata) =>
            recordOwnAnswer(
              capture,
              {
                id,
                method: 'POST',
                url,
                ip,
                userAgent: req.headers['user-agent'],
                keyName,
                backend: state.backend,
                model: state.model,
              },
              status,
              { payload: body },
              metadata,
            );
    const responder: Responder = { res, id, url, baseHeaders, state, ownAnswer };
    // `on`, not `once`: a response emits 'close' once, and a wrapper removed on the way costs more.
    res.on('close', () => {
      // A response that never finished was cut off (the client left, or the backend failed mid-stream).
      const status = res.writableFinished ? res.statusCode : 499;
      try {
        recordAccess(
          { id, method: 'POST', url, status, route: route.url, state, keyName, client: ip },
          performance.now(),
        );
      } catch {
        // An event handler that throws would take the process down; a lost access line must not.
      }
    });
    try {
      if (!isOpen()) {
        res.shouldKeepAlive = false;
        throw SHUTTING_DOWN;
      }
      if (hostCheck !== null && !hostCheck(req.headers.host)) throw misdirected();
      if (auth !== null) {
        const subject: AuthSubject = { method: 'POST', url, headers: req.headers, raw: req, ip };
        const decided = auth.decide(subject);
        const verdict = decided instanceof Promise ? await decided : decided;
        if (isRefusal(verdict)) {
          onRefusal?.(req, res, verdict);
          // Made once and reused (refusalText): an attacker's refusals cost no envelope and no serialising.
          const answer = refusalText(verdict, url);
          ownAnswer?.(answer.status, renderRefusal(verdict, url).body, {
            refused: verdict.status === 401 ? verdict.kind : 'blocked',
          });
          writeJson(responder, answer.status, answer.text, answer.headers);
          return;
        }
        keyName = verdict?.keyName ?? null;
      }
      const kind = bodyKind(req.headers);
      if (kind === 'unsupported') throw bodyError('unsupportedMediaType');
      if (kind === 'encoded') throw bodyError('unsupportedEncoding');
      let json: RequestBody | undefined;
      if (kind === 'json') {
        continueIfAwaited(req, res);
        json = readJsonBody(await readBody(req, maxBodyBytes));
      }
      await route.run(
        new ReceivedExchange({
          res,
          url,
          baseHeaders,
          state,
          id,
          method: 'POST',
          headers: req.headers,
          ip,
          authKeyName: keyName,
          ownAnswer,
          json,
        }),
      );
    } catch (err) {
      answerFailure(responder, err as Error, log, redact);
    }
  }

  return function chatLane(req, res) {
    if (req.method !== 'POST') return false;
    const url = req.url ?? '';
    const queryStart = url.indexOf('?');
    const route = match(queryStart < 0 ? url : url.slice(0, queryStart));
    if (route === undefined) return false;
    serve(req, res, route, url).catch((err: unknown) => {
      // serve answers its own failures; this is the last resort for one in its own set-up.
      log.error({ err }, 'unhandled error');
      res.destroy();
    });
    return true;
  };
}
