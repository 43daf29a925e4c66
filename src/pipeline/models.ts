import { upstreamFailure } from '../backends/http.js';
import type { BackendRegistry } from '../backends/registry.js';
import { codecs } from '../protocols/registry.js';
import type { Protocol } from '../protocols/types.js';
import type { RequestState } from '../server/state.js';
import type { Cancellation } from '../backends/cancel.js';
import { timedOnBackend } from './dispatch.js';

/**
 * The default backend's models in the client's protocol. The wait on the backend is timed like a chat
 * call's, so `x-proxy-overhead-ms` leaves it out.
 */
export async function listModels(
  protocol: Protocol,
  registry: BackendRegistry,
  state: RequestState,
  signal: Cancellation,
): Promise<unknown> {
  const backend = registry.defaultBackend;
  state.backend = backend.name;
  try {
    return codecs[protocol].encodeModelList(await timedOnBackend(state, backend.listModels(signal)));
  } catch (err) {
    throw upstreamFailure(err, backend.name, signal);
  }
}
