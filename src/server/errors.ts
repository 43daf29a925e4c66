import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.js';
import { errorEnvelope } from '../protocols/errors.js';
import { protocolForPath } from '../protocols/types.js';

/**
 * Fastify's own failures, re-worded: its messages can quote the request (a JSON parse error shows the
 * offending text), so the client gets a fixed sentence instead.
 */
const FASTIFY_ERRORS: Record<string, { status: number; message: string; code: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    status: 413,
    message: 'Request body is too large',
    code: 'request_too_large',
  },
  FST_ERR_CTP_INVALID_JSON_BODY: {
    status: 400,
    message: 'Request body is not valid JSON',
    code: 'invalid_json',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    status: 400,
    message: 'Request body is empty; expected JSON',
    code: 'invalid_json',
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    message: 'Unsupported Content-Type; send application/json',
    code: 'unsupported_media_type',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    message: 'Content-Length does not match the body',
    code: 'invalid_request',
  },
};

function toProxyError(error: FastifyError | Error): ProxyError {
  if (error instanceof ProxyError) return error;
  const known = FASTIFY_ERRORS[(error as FastifyError).code ?? ''];
  if (known) return new ProxyError(known.status, known.message, { code: known.code });
  if (error instanceof SyntaxError)
    return new ProxyError(400, 'Request body is not valid JSON', { code: 'invalid_json' });
  // JSON.parse copes with any depth, but walking such a body (redaction, translation, re-serialising it for
  // the backend) overflows the stack: that is the client's body, not a fault of the proxy.
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    return new ProxyError(400, 'Request body is nested too deeply', { code: 'invalid_request' });
  }
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
): FastifyReply {
  if (error.retryAfter !== undefined) reply.header('retry-after', String(error.retryAfter));
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return reply.code(error.status).send(
    errorEnvelope(protocolForPath(request.url), {
      status: error.status,
      message: error.message,
      code: error.code,
      param: error.param,
      retryAfter: error.retryAfter,
    }),
  );
}

/** `redact` scrubs the one piece of client input an error echoes: the path of an unknown route. */
export function registerErrorHandling(app: FastifyInstance, redact: (text: string) => string): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const proxyError = toProxyError(error);
    if (proxyError.status >= 500 && !(error instanceof ProxyError)) {
      request.log.error({ request_id: request.id, err: error }, 'unhandled error');
    }
    if (reply.sent || reply.raw.headersSent) return;
    // 499 is our internal "client went away": nobody is listening for an answer.
    if (proxyError.status === 499) {
      reply.raw.destroy();
      return;
    }
    return sendProxyError(request, reply, proxyError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProxyError(
      request,
      reply,
      new ProxyError(
        404,
        `No route for ${request.method} ${redact((request.url.split('?')[0] ?? '').slice(0, 200))}`,
        {
          code: 'not_found',
        },
      ),
    ),
  );
}
