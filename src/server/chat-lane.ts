import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import secureJson from 'secure-json-parse';
import { isRefusal, type AuthCheck, type AuthRefusal, type AuthSubject } from '../auth/gate.js';
import { resolveClientAddress, type TrustedProxies } from '../auth/client-address.js';
import { ProxyError } from '../errors.js';
import type { AccessRecorder } from './access-log.js';
import { answerFailure, bodyError } from './errors.js';
import { continueIfAwaited } from './expect-continue.js';
import { misdirected, type HostCheck } from './host-check.js';
import { nestedTooDeeply } from './json-depth.js';
import { requestIdFor } from './request-id.js';
import { writeJson, type Responder } from './respond.js';
import type { ChatRoute } from './routes.js';
import type { RequestState } from './state.js';

/**
 * The chat lane: the hot path of the proxy, on plain node:http in front of Fastify (SPEC §7). It takes the
 * common chat request — POST to a chat route, a JSON body, no CORS `Origin` — and runs the same auth check
 * and the same chat pipeline as the Fastify routes, without Fastify's per-request machinery (request and
 * reply objects, hook runners, content-type parser). Everything else, and anything unusual (another
 * content type, a browser's CORS request, a server that is closing), it leaves to Fastify, which answers
 * those as before: one implementation of each behaviour, two doors.
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
  /** Headers every answer carries besides its request id: security headers and CORS (SPEC §2.3, §6.5). */
  headers: Readonly<Record<string, string>>;
  /** Told of every refusal before it is written (it may close the connection behind it). */
  onRefusal?: (req: IncomingMessage, res: ServerResponse, refusal: AuthRefusal) => void;
  /** False once the server stops accepting: Fastify then answers 503. */
  isOpen: () => boolean;
  log: { error(obj: object, msg: string): void };
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

/** Exact paths, plus prefixes from patterns that end in `*` (which Fastify matches only with a tail). */
function compileMatcher(routes: readonly ChatRoute[]): (path: string) => ChatRoute | undefined {
  const exact = new Map<string, ChatRoute>();
  const prefixes: Array<[string, ChatRoute]> = [];
  for (const route of routes) {
    if (route.url.endsWith('*')) prefixes.push([route.url.slice(0, -1), route]);
    else exact.set(route.url, route);
  }
  return (path) => {
    const hit = exact.get(path);
    if (hit !== undefined) return hit;
    for (const [prefix, route] of prefixes) {
      if (path.length > prefix.length && path.startsWith(prefix)) return route;
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

/** Fastify's default JSON parsing (`__proto__` keys refused, `constructor` left alone) and the depth cap. */
function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw bodyError('emptyJson');
  let body: unknown;
  try {
    body = secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'ignore' });
  } catch {
    throw bodyError('invalidJson');
  }
  if (nestedTooDeeply(text, body)) throw bodyError('tooDeep');
  return body;
}

export function createChatLane(options: ChatLaneOptions): ChatLane {
  const { auth, hostCheck, trustProxy, maxBodyBytes, recordAccess, headers, isOpen, log, onRefusal } =
    options;
  const match = compileMatcher(options.routes);

  async function serve(req: IncomingMessage, res: ServerResponse, route: ChatRoute, url: string) {
    const state: RequestState = { start: performance.now(), backendMs: 0, backend: null, model: null };
    const id = requestIdFor(req);
    const ip = resolveClientAddress(req, trustProxy);
    const responder: Responder = { res, id, url, baseHeaders: headers, state };
    let keyName: string | null = null;
    res.once('close', () => {
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
      if (hostCheck !== null && !hostCheck(req.headers.host)) throw misdirected();
      if (auth !== null) {
        const subject: AuthSubject = { method: 'POST', url, headers: req.headers, raw: req, ip };
        const decided = auth.decide(subject);
        const verdict = decided instanceof Promise ? await decided : decided;
        if (isRefusal(verdict)) {
          onRefusal?.(req, res, verdict);
          writeJson(responder, verdict.status, verdict.body, verdict.headers);
          return;
        }
        keyName = verdict;
      }
      continueIfAwaited(req, res);
      const rawBytes = await readBody(req, maxBodyBytes);
      const rawBody = rawBytes.toString('utf8');
      const body = parseJsonBody(rawBody);
      await route.run({
        res,
        url,
        baseHeaders: headers,
        state,
        id,
        method: 'POST',
        headers: req.headers,
        ip,
        authKeyName: keyName,
        body,
        rawBody,
        rawBytes,
      });
    } catch (err) {
      answerFailure(responder, err as Error, log);
    }
  }

  return function chatLane(req, res) {
    if (req.method !== 'POST' || req.headers.origin !== undefined) return false;
    const url = req.url ?? '';
    const queryStart = url.indexOf('?');
    const route = match(queryStart < 0 ? url : url.slice(0, queryStart));
    if (route === undefined || !isJsonContentType(req.headers['content-type']) || !isOpen()) return false;
    serve(req, res, route, url).catch((err: unknown) => {
      // serve answers its own failures; this is the last resort for one in its own set-up.
      log.error({ err }, 'unhandled error');
      res.destroy();
    });
    return true;
  };
}
