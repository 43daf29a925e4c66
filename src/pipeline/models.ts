import { upstreamFailure } from '../backends/http.js';
import type { BackendRegistry } from '../backends/registry.js';
import { codecs } from '../protocols/registry.js';
import type { Protocol } from '../protocols/types.js';
import type { RequestState } from './state.js';
import type { Cancellation } from '../backends/cancel.js';
import { timedOnBackend } from './dispatch.js';

/**
 * The default backend's models in the client's protocol, the configured route names first (README, Routes
 * and failover). The wait on the backend is timed like a chat call's, so `x-proxy-overhead-ms` leaves it
 * out.
 */
export async function listModels(
  protocol: Protocol,
  registry: BackendRegistry,
  state: RequestState,
  signal: Cancellation,
  routeNames: readonly string[] = [],
): Promise<unknown> {
  const backend = registry.defaultBackend;
  state.backend = backend.name;
  try {
    const models = await timedOnBackend(state, backend.listModels(signal));
    const routes = routeNames.map((id) => ({ id, ownedBy: 'llm-interactive-proxy' }));
    return codecs[protocol].encodeModelList(routes.length > 0 ? [...routes, ...models] : models);
  } catch (err) {
    throw upstreamFailure(err, backend.name, signal);
  }
}
