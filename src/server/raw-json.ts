import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bodyError } from './failures.js';
import { nestedTooDeeply } from './json-depth.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The JSON body exactly as received. No route reads it since the chat lane took every chat request (it
     * was for forwarding an unchanged body as received); left for a clean-up of its own.
     */
    rawBody: string | undefined;
  }
}

/**
 * Fastify's own JSON parser (prototype-poisoning protection included), with the chat lane's depth cap, for
 * the JSON bodies Fastify still reads (chat requests never reach it: the chat lane parses those itself).
 */
export function registerRawJsonParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'ignore');
  app.decorateRequest('rawBody', undefined);
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string' },
    (request: FastifyRequest, body: string | Buffer, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      request.rawBody = text;
      parseJson(request, text, (err, body) => {
        if (!err && nestedTooDeeply(text, body)) done(bodyError('tooDeep'), undefined);
        else done(err, body);
      });
    },
  );
}
