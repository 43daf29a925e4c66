import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bodyError } from './failures.js';
import { nestedTooDeeply } from '../protocols/json-depth.js';

/**
 * Fastify's own JSON parser (prototype-poisoning protection included), with the chat lane's depth cap, for
 * the JSON bodies Fastify still reads (chat requests never reach it: the chat lane parses those itself).
 */
export function registerJsonParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'ignore');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string' },
    (request: FastifyRequest, body: string | Buffer, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      parseJson(request, text, (err, body) => {
        if (!err && nestedTooDeeply(text, body)) done(bodyError('tooDeep'), undefined);
        else done(err, body);
      });
    },
  );
}
