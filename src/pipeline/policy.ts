import { ProxyError } from '../proxy-error.js';
import { redactedExcerpt } from '../redaction/excerpt.js';
import type { Redactor } from '../redaction/redactor.js';
import type { ModelRequest } from '../teams/model-allow-list.js';
import type { PolicyTable } from '../teams/policies.js';
import type { ChatExchange } from './exchange.js';
import type { ChatRoute } from './route.js';

/** Longest model name quoted back in an answer: the client's own text, cut short. */
const MAX_QUOTED_MODEL = 200;

/**
 * The 404 for a model outside the key's allow-list: what the providers answer for a model one cannot use.
 * The model is the client's own text, quoted redacted and cut short (a key pasted there is not echoed).
 */
export function modelNotFound(model: string, redactor: Redactor): ProxyError {
  const quoted = redactedExcerpt(model, MAX_QUOTED_MODEL, (text) => redactor.redact(text));
  return new ProxyError(404, `The model '${quoted}' does not exist or you do not have access to it.`, {
    code: 'model_not_found',
    param: 'model',
  });
}

/**
 * The teams step (README, Teams: policies), after the route is resolved and before anything is sent: a model
 * outside the key's allow-list is 404 `model_not_found`. One branch when no key has an allow-list (the
 * table is built at start and reload). Rate, token, concurrency and budget counters slot in here too.
 */
export function checkPolicy(
  policies: PolicyTable,
  ex: ChatExchange,
  route: ChatRoute,
  redactor: Redactor,
): void {
  if (!policies.hasModelRules) return;
  const request = { requested: route.requested, backend: route.backend.name, model: route.model };
  if (!allowsModel(policies, ex.authKeyName, request)) throw modelNotFound(route.requested, redactor);
}

/**
 * Whether the key's allow-list (its own and its labels') lets `request` through: a model on its backend as
 * `checkPolicy` asks, or a route name or chain as `checkRoutedPolicy` does (`backend` empty, `model` the name).
 * True for a key without one. Also asked by a session command that names a model for later requests.
 */
export function allowsModel(policies: PolicyTable, keyName: string | null, request: ModelRequest): boolean {
  if (!policies.hasModelRules) return true;
  const models = policies.policyFor(keyName)?.models;
  return models === undefined || models === null || models.allows(request);
}

/**
 * The same check for a request tried by failover: the model it names (a route name or an `a|b` chain) must
 * be in the key's allow-list as it is — a chain not listed by name is refused, whatever its elements.
 */
export function checkRoutedPolicy(
  policies: PolicyTable,
  ex: ChatExchange,
  requested: string,
  redactor: Redactor,
): void {
  if (!allowsModel(policies, ex.authKeyName, { requested, backend: '', model: requested }))
    throw modelNotFound(requested, redactor);
}

/** Which entries of a model list a key sees: `id` is a model of `backend`, or a route name (`backend` null). */
export type ModelListFilter = (id: string, backend: string | null) => boolean;

/**
 * The model list as the key may use it (README, Teams: policies): the default backend's models and the route
 * names its allow-list lets through, so a client never picks a model it would be refused. Null (the whole
 * list) when the key has no allow-list, or the request no key.
 */
export function modelListFilter(policies: PolicyTable, keyName: string | null): ModelListFilter | null {
  if (!policies.hasModelRules) return null;
  const models = policies.policyFor(keyName)?.models;
  if (models === undefined || models === null) return null;
  // A route name is judged as checkRoutedPolicy judges it; a model as checkPolicy does, bare on its backend.
  return (id, backend) => models.allows({ requested: id, backend: backend ?? '', model: id });
}
