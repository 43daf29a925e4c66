import type { FastifyInstance } from 'fastify';
import type { RequestState } from '../pipeline/state.js';

declare module 'fastify' {
  interface FastifyRequest {
    proxyState: RequestState;
  }
}

export function registerRequestState(app: FastifyInstance): void {
  app.decorateRequest('proxyState', null as unknown as RequestState);
}
