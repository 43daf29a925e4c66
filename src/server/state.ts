import type { FastifyInstance } from 'fastify';

/** What the proxy learns about a request as it passes through, for the access log, metrics and headers. */
export interface RequestState {
  /** performance.now() when the request arrived. */
  start: number;
  /** Milliseconds spent waiting on the backend (excluded from x-proxy-overhead-ms). */
  backendMs: number;
  backend: string | null;
  model: string | null;
  /** Request fields left out with notice on the way to the backend, sent back in `x-proxy-dropped`. */
  dropped?: readonly string[] | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    proxyState: RequestState;
  }
}

export function registerRequestState(app: FastifyInstance): void {
  app.decorateRequest('proxyState', null as unknown as RequestState);
}
