import { upstreamFailure } from '../backends/http.js';
import type { BackendRegistry } from '../backends/registry.js';
import type { ModelInfo } from '../protocols/canonical.js';
import { codecs } from '../protocols/registry.js';
import type { Protocol } from '../protocols/types.js';
import type { Redactor } from '../redaction/redactor.js';
import type { RequestState } from './state.js';
import type { Cancellation } from '../backends/cancel.js';
import { timedOnBackend } from './dispatch.js';
import { modelNotFound, type ModelListFilter } from './policy.js';

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
  const models = await availableModels(registry, state, signal, routeNames, filter);
  return codecs[protocol].encodeModelList(models);
}

/** The route names and the default backend's models a key may use (see listModels). */
async function availableModels(
  registry: BackendRegistry,
  state: RequestState,
  signal: Cancellation,
  routeNames: readonly string[],
  filter: ModelListFilter | null,
): Promise<ModelInfo[]> {
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
    return routes.length > 0 ? [...routes, ...models] : models;
  } catch (err) {
    throw upstreamFailure(err, backend.name, signal);
  }
}

/** One model's entry out of a protocol's list (the shape `encodeModelList` writes), for a retrieve. */
const ONE_OF_LIST: Partial<Record<Protocol, (list: Record<string, unknown>) => unknown>> = {
  openai: (list) => (list.data as unknown[])[0],
  anthropic: (list) => (list.data as unknown[])[0],
  gemini: (list) => (list.models as unknown[])[0],
};

/**
 * One model of that list by its id (`GET /v1/models/{id}`, `/anthropic/v1/models/{id}`,
 * `/v1beta/models/{model}`), as the SDKs' `models.retrieve` / `models.get` ask: the list's entry for it, or
 * the 404 `model_not_found` a provider gives for a model one cannot use. Gemini's `models/` prefix is read.
 */
export async function retrieveModel(
  protocol: Protocol,
  id: string,
  registry: BackendRegistry,
  state: RequestState,
  signal: Cancellation,
  redactor: Redactor,
  routeNames: readonly string[] = [],
  filter: ModelListFilter | null = null,
): Promise<unknown> {
  const wanted = protocol === 'gemini' && id.startsWith('models/') ? id.slice('models/'.length) : id;
  const models = await availableModels(registry, state, signal, routeNames, filter);
  const model = models.find((m) => m.id === wanted);
  const one = ONE_OF_LIST[protocol];
  if (model === undefined || one === undefined) throw modelNotFound(wanted, redactor);
  return one(codecs[protocol].encodeModelList([model]) as Record<string, unknown>);
}
