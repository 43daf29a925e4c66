import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ProxyError } from '../proxy-error.js';
import { redactedExcerpt, type Redact } from '../redaction/excerpt.js';
import { MAX_JSON_DEPTH } from '../protocols/json-depth.js';
import { proxyErrorAnswer, writeProxyError, type Responder } from '../pipeline/respond.js';

/**
 * What is wrong with a request body, in fixed sentences: parser messages can quote the request (a JSON parse
 * error shows the offending text). The chat lane answers with these directly; Fastify's errors map onto them.
 */
export const BODY_ERRORS = {
  tooLarge: { status: 413, message: 'Request body is too large', code: 'request_too_large' },
  invalidJson: { status: 400, message: 'Request body is not valid JSON', code: 'invalid_json' },
  emptyJson: { status: 400, message: 'Request body is empty; expected JSON', code: 'invalid_json' },
  unsupportedMediaType: {
    status: 415,
    message: 'Unsupported Content-Type; send application/json',
    code: 'unsupported_media_type',
  },
  unsupportedEncoding: {
    status: 415,
    message: 'Unsupported Content-Encoding; send the body uncompressed (identity)',
    code: 'unsupported_media_type',
  },
  tooDeep: {
    status: 400,
    message: `Request body is nested too deeply (more than ${MAX_JSON_DEPTH} levels of arrays and objects)`,
    code: 'invalid_request',
  },
  invalidContentLength: {
    status: 400,
    message: 'Content-Length does not match the body',
    code: 'invalid_request',
  },
} as const;

export function bodyError(kind: keyof typeof BODY_ERRORS): ProxyError {
  const { status, message, code } = BODY_ERRORS[kind];
  return new ProxyError(status, message, { code });
}

const FASTIFY_ERRORS: Record<string, keyof typeof BODY_ERRORS> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'tooLarge',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalidJson',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'emptyJson',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupportedMediaType',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalidContentLength',
};

/** Any error thrown while serving a request, as the answer the client gets. */
export function toProxyError(error: FastifyError | Error): ProxyError {
  if (error instanceof ProxyError) return error;
  const known = FASTIFY_ERRORS[(error as FastifyError).code ?? ''];
  if (known) return bodyError(known);
  if (error instanceof SyntaxError) return bodyError('invalidJson');
  // Bodies deeper than MAX_JSON_DEPTH are refused when parsed; should a walk still overflow the stack, that
  // is the client's body, not a fault of the proxy.
  if (error instanceof RangeError && /call stack/i.test(error.message)) return bodyError('tooDeep');
  const status = (error as FastifyError).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new ProxyError(status, 'The request could not be processed', { code: 'invalid_request' });
  }
  return new ProxyError(500, 'Internal proxy error', { code: 'internal_error' });
}

export function sendProxyError(
  request: FastifyRequest,
  reply: FastifyReply,
  error: ProxyError,
  redact: Redact,
): FastifyReply {
  const answer = proxyErrorAnswer(request.url, error, redact);
  return reply.code(error.status).headers(answer.headers).send(answer.body);
}

/** Our internal status for "the client went away": nobody is listening for an answer. */
const CLIENT_GONE = 499;

/** The longest part of an unknown path a 404 quotes. */
const MAX_QUOTED_PATH = 200;

/** `redact` scrubs the client input an error echoes (see proxyErrorAnswer). */
export function registerErrorHandling(app: FastifyInstance, redact: Redact): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const proxyError = failureAnswer(error, request.id, request.log);
    if (reply.sent || reply.raw.headersSent) return;
    if (proxyError.status === CLIENT_GONE) {
      reply.raw.destroy();
      return;
    }
    return sendProxyError(request, reply, proxyError, redact);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = redactedExcerpt(request.url.split('?')[0] ?? '', MAX_QUOTED_PATH, redact);
    const error = new ProxyError(404, `No route for ${request.method} ${path}`, { code: 'not_found' });
    return sendProxyError(request, reply, error, redact);
  });
}

/**
 * A failure as the answer the client gets, logging the ones that are the proxy's own fault (a 5xx that is
 * not a ProxyError): the one policy for Fastify's error handler and for answers the proxy writes itself.
 */
function failureAnswer(err: Error, requestId: string, log: FailureLog): ProxyError {
  const failure = toProxyError(err);
  if (failure.status >= 500 && !(err instanceof ProxyError)) {
    log.error({ request_id: requestId, err }, 'unhandled error');
  }
  return failure;
}

type FailureLog = { error(obj: object, msg: string): void };

/**
 * Answers a failure on a response the proxy writes itself (chat lane, chat pipeline): the envelope while
 * nothing is sent yet; mid-answer, or for a client that went away (499), the connection is closed.
 */
export function answerFailure(to: Responder, err: Error, log: FailureLog, redact: Redact): void {
  const failure = failureAnswer(err, to.id, log);
  if (to.res.headersSent || failure.status === CLIENT_GONE) {
    to.res.destroy();
    return;
  }
  // The rest of a refused body is never read: the connection cannot be reused.
  if (failure.status === 413) to.res.shouldKeepAlive = false;
  writeProxyError(to, failure, redact);
}
