import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { ProxyError } from '../proxy-error.js';
import type { Redact } from '../redaction/excerpt.js';
import { errorEnvelope } from '../protocols/error-envelopes.js';
import { protocolForPath } from './route-table.js';
import type { RequestState } from './state.js';

/** Constant security headers on every response (docs/reliability.md, the "Security headers and TLS" row). */
export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
} as const;

/**
 * Where an answer goes when the chat lane or the chat pipeline writes it straight to the response, without
 * Fastify.
 */
export interface Responder {
  readonly res: ServerResponse;
  /** The request id, sent back as `x-request-id` on every answer. */
  readonly id: string;
  /** The request's URL: its path picks the protocol of error envelopes. */
  readonly url: string;
  /** Headers every answer carries: security headers and CORS (shared by all requests on the chat lane). */
  readonly baseHeaders: Readonly<OutgoingHttpHeaders>;
  readonly state: RequestState;
  /**
   * Told of each answer the proxy writes on its own — its errors and refusals — before it is written, for
   * the wire capture's `outbound_response` line; undefined when the capture is off (no work at all).
   */
  readonly ownAnswer?: OwnAnswerTap | undefined;
}

/** See Responder.ownAnswer: the status and body of an answer the proxy wrote itself. */
export type OwnAnswerTap = (status: number, body: unknown, metadata?: Record<string, unknown>) => void;

/** Time spent in the proxy itself so far: everything but waiting on the backend. */
export function overheadHeader(state: RequestState): string {
  return Math.max(0, performance.now() - state.start - state.backendMs).toFixed(3);
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The head of an answer: the base headers, the request id, the key's rate-limit headers, then `extra` (which
 * may replace them), then the overhead. Built with plain loops into a fresh object, not object spread, which costs more on this path
 * (docs/performance.md).
 */
export function responseHead(
  to: Responder,
  extra: Readonly<OutgoingHttpHeaders> | undefined,
): OutgoingHttpHeaders {
  const head: OutgoingHttpHeaders = {};
  const base = to.baseHeaders;
  for (const name in base) head[name] = base[name];
  head['x-request-id'] = to.id;
  const state = to.state;
  // Before `extra`: an upstream error's own rate-limit headers, passed on, replace the proxy's.
  const limited = state.limitHeaders;
  if (limited !== undefined) for (const name in limited) head[name] = limited[name];
  if (extra !== undefined) for (const name in extra) head[name] = extra[name];
  if (state.attempts !== undefined) accountingHeaders(head, state);
  const dropped = state.dropped;
  if (dropped !== undefined) head['x-proxy-dropped'] = dropped.join(', ');
  head['x-proxy-overhead-ms'] = overheadHeader(state);
  return head;
}

/** Header values are visible ASCII; a model name a client made up may not be. */
const HEADER_SAFE = /^[\x20-\x7e]*$/;

/**
 * Where a request tried by failover was answered (README, Routes and failover): `x-proxy-backend`,
 * `x-proxy-model` (the element that answered, or the last one tried) and `x-proxy-attempts`.
 */
function accountingHeaders(head: OutgoingHttpHeaders, state: RequestState): void {
  if (state.backend !== null) head['x-proxy-backend'] = state.backend;
  if (state.model !== null && HEADER_SAFE.test(state.model)) head['x-proxy-model'] = state.model;
  head['x-proxy-attempts'] = String(state.attempts?.filter((a) => a.outcome !== 'skipped').length ?? 0);
}

/** A whole JSON answer (text, bytes passed on as received, or an object): one head, one write. */
export function writeJson(
  to: Responder,
  status: number,
  body: string | Buffer | object,
  headers?: OutgoingHttpHeaders,
): void {
  const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const head = responseHead(to, headers);
  head['content-type'] ??= JSON_TYPE;
  head['content-length'] = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  to.res.writeHead(status, head);
  to.res.end(payload);
}

/**
 * A ProxyError as its answer: the envelope of the path's protocol, with retry-after and extra headers. The
 * message is redacted here, where every ProxyError answer passes: messages quote what the client sent (a
 * response id, a model, a parameter's value), and a client may send a secret there.
 */
export function proxyErrorAnswer(
  url: string,
  error: ProxyError,
  redact: Redact,
): { headers: Record<string, string>; body: Record<string, unknown> } {
  const headers: Record<string, string> = { ...error.headers };
  if (error.retryAfter !== undefined) headers['retry-after'] = String(error.retryAfter);
  const body = errorEnvelope(protocolForPath(url), {
    status: error.status,
    message: redact(error.message),
    code: error.code,
    param: error.param,
    retryAfter: error.retryAfter,
  });
  return { headers, body };
}

export function writeProxyError(to: Responder, error: ProxyError, redact: Redact): void {
  const answer = proxyErrorAnswer(to.url, error, redact);
  to.ownAnswer?.(error.status, answer.body, { code: error.code });
  writeJson(to, error.status, answer.body, answer.headers);
}

/**
 * Writes a streamed answer (an async iterable of chunks) to the response and ends it, waiting for `drain`
 * whenever the client reads slower than the backend sends. When the client goes away the iterable is
 * returned (its `finally` blocks run); when it throws, the response is destroyed. Never rejects. The end
 * waits for `state.storing` (a stored Response being written), so what was answered can be read back.
 *
 * A loop rather than `pipeline(Readable.from(...))`: on Node 20 that pair builds a stream, an
 * AbortController and, at the end of every answer, an AbortError with its stack trace — several times
 * the cost of the writes themselves for a 20-chunk answer.
 */
export async function writeStream(
  res: ServerResponse,
  source: AsyncIterable<Uint8Array | string>,
  state?: { readonly storing?: Promise<void> | undefined },
): Promise<void> {
  const chunks = source[Symbol.asyncIterator]();
  let wake: (() => void) | undefined;
  // A client that left before the first chunk closed the response already: no 'close' will come.
  let gone = res.destroyed;
  const onClose = (): void => {
    gone = true;
    wake?.();
  };
  res.once('close', onClose);
  // The chunks ready at once (a translated stream yields one per event of a backend chunk) go out in one
  // write: the response is corked at a tick's first chunk and uncorked once the tick's work is done.
  let corked = false;
  const uncork = (): void => {
    corked = false;
    res.uncork();
  };
  try {
    for (;;) {
      if (gone) break;
      const next = await chunks.next();
      if (next.done === true || gone) break;
      if (!corked) {
        corked = true;
        res.cork();
        process.nextTick(uncork);
      }
      if (!res.write(next.value)) {
        if (res.destroyed) {
          gone = true;
          break;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          res.once('drain', resolve);
        });
        res.off('drain', wake as () => void);
        wake = undefined;
        if (gone) break;
      }
    }
    if (state?.storing !== undefined) await state.storing;
    if (!gone && !res.destroyed) res.end();
  } catch (err) {
    res.destroy(err as Error);
  } finally {
    res.off('close', onClose);
    if (gone) await chunks.return?.().catch(() => undefined);
  }
}
