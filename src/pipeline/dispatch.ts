import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Cancellation } from '../backends/cancel.js';
import { readBytes, upstreamFailure } from '../backends/http.js';
import type { UpstreamResponse } from '../backends/types.js';
import type { Protocol } from '../protocols/types.js';
import type { RequestState } from './state.js';
import type { ChatExchange } from './exchange.js';
import type { PreparedRequest } from './prepare.js';
import type { ChatRoute } from './route.js';

/** Ties the upstream request's life to the client's: a client that goes away aborts the backend call. */
export function abortOnClientGone(res: ServerResponse): Cancellation {
  const controller = new Cancellation();
  // `on`: a response emits 'close' once (no wrapper to make and remove).
  res.on('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller;
}

/**
 * Times a wait on the backend into the request's state: that time is left out of `x-proxy-overhead-ms`
 * (README, Endpoints), which tells what the proxy itself costs.
 */
export async function timedOnBackend<T>(state: RequestState, wait: Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await wait;
  } finally {
    state.backendMs += performance.now() - started;
  }
}

/** An answer on its way back, with what reading it further needs. */
export interface Dispatched {
  readonly upstream: UpstreamResponse;
  readonly signal: Cancellation;
  /** Reads the whole body (up to `limit` bytes), the time it takes counted as the backend's. */
  readWhole(limit?: number): Promise<Buffer>;
}

/** What a failover attempt decides itself (src/pipeline/attempts.ts): its own signal, and no `direct`. */
export interface DispatchOptions {
  readonly signal: Cancellation;
  readonly direct: boolean;
}

/**
 * Step 3, dispatch: one call to the backend, aborted when the client leaves. A stream is asked for
 * `direct`: undici's chunks then go straight to the relay, passed on or translated (see relay.ts).
 */
export async function dispatch(
  ex: ChatExchange,
  route: ChatRoute,
  request: PreparedRequest,
  from: Protocol,
  options?: DispatchOptions,
): Promise<Dispatched> {
  const { backend } = route;
  const { state } = ex;
  const signal = options ? options.signal : abortOnClientGone(ex.res);
  // Timed inline rather than through timedOnBackend: one promise less on the hot path.
  const sentAt = performance.now();
  const upstream: UpstreamResponse = await backend.chat({
    model: route.model,
    stream: route.stream,
    body: request.body,
    rawBody: request.rawBody,
    signal,
    requestId: ex.id,
    headers: request.headers,
    // Every stream is taken `direct`: passed through or translated, the relay reads it chunk by chunk.
    direct: options ? options.direct : route.stream,
  });
  state.backendMs += performance.now() - sentAt;
  return dispatched(upstream, signal, state, backend.name);
}

/** An answer as the relay reads it: reading the rest of it is timed as the backend's, its failures named. */
export function dispatched(
  upstream: UpstreamResponse,
  signal: Cancellation,
  state: RequestState,
  backendName: string,
): Dispatched {
  return {
    upstream,
    signal,
    readWhole: async (limit) => {
      const started = performance.now();
      try {
        return await readBytes(upstream, limit);
      } catch (err) {
        throw upstreamFailure(err, backendName, signal);
      } finally {
        state.backendMs += performance.now() - started;
      }
    },
  };
}
