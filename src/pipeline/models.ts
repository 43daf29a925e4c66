import { upstreamFailure } from '../backends/http.js';
import type { BackendRegistry } from '../backends/registry.js';
import { codecs } from '../protocols/registry.js';
import type { Protocol } from '../protocols/types.js';
import type { RequestState } from './state.js';
import type { Cancellation } from '../backends/cancel.js';
import { timedOnBackend } from './dispatch.js';
import type { ModelListFilter } from './policy.js';

/**
 * The default backend's models in the client's protocol, the configured route names first (README, Routes
 * and failover). The wait on the backend is timed like a chat call's, so `x-proxy-overhead-ms` leaves it
 * out. With a `filter` (the key's allow-list, policy.ts), only what it lets through is listed.
 */
export async function listModels(
  protocol: Protocol,
  registry: BackendRegistry,
  state: RequestState,
  signal: Cancellation,
  routeNames: readonly string[] = [],
  filter: ModelListFilter | null = null,
): Promise<unknown> {
  const backend = registry.defaultBackend;
  state.backend = backend.name;
  try {
    let models = await timedOnBackend(state, backend.listModels(signal));
    let names = routeNames;
    if (filter !== null) {
      models = models.filter((model) => filter(model.id, backend.name));
      names = names.filter((name) => filter(name, null));
    }
    const routes = names.map((id) => ({ id, ownedBy: 'llm-interactive-proxy' }));
    return codecs[protocol].encodeModelList(routes.length > 0 ? [...routes, ...models] : models);
  } catch (err) {
    throw upstreamFailure(err, backend.name, signal);
  }
}
