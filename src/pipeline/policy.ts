import { ProxyError } from '../proxy-error.js';
import { redactedExcerpt } from '../redaction/excerpt.js';
import type { Redactor } from '../redaction/redactor.js';
import type { BackendRegistry, ResolvedRoute } from '../backends/registry.js';
import type { RouteTable } from '../routing/routes.js';
import type { ModelAllowList } from '../teams/model-allow-list.js';
import type { PolicyTable } from '../teams/policies.js';
import type { ChatExchange } from './exchange.js';

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

/** What a request's model names: a route (its name and chain), or the elements of an `a|b` chain or one model. */
export interface NamedModels {
  /** The route's name; null for a chain written in the request, or a single model (a chain of one). */
  readonly name: string | null;
  readonly elements: readonly string[];
}

/** The key's allow-list (its own and its labels'); null for a key without one, or no key. */
function allowListOf(policies: PolicyTable, keyName: string | null): ModelAllowList | null {
  if (!policies.hasModelRules) return null;
  return policies.policyFor(keyName)?.models ?? null;
}

/**
 * The one judgment of a key's allow-list (README, Teams: policies), on every path — one attempt or failover's,
 * a request or a session command naming a model for later ones. A route passes by its name, or when each of
 * its elements does. An element (of a chain, or the one model) is judged as the backend it resolves to and
 * the model sent there, so `anthropic:*` and `claude-*` both let `anthropic:claude-sonnet-4-5` through, and a
 * bare model is one of the default backend. An element on a backend that cannot be used is never sent, so it
 * is not judged: the request fails for it as it would for a key without a list. Null when let through, else
 * what the 404 names: the route's name, or the first element refused.
 */
export function refusedModel(
  policies: PolicyTable,
  keyName: string | null,
  named: NamedModels,
  registry: BackendRegistry,
): string | null {
  const models = allowListOf(policies, keyName);
  if (models === null) return null;
  const { name } = named;
  if (name !== null && models.allows({ requested: name, backend: '', model: name })) return null;
  for (const element of named.elements) {
    let resolved: ResolvedRoute;
    try {
      resolved = registry.resolve(element);
    } catch {
      continue;
    }
    const request = { requested: element, backend: resolved.backend.name, model: resolved.model };
    if (!models.allows(request)) return name ?? element;
  }
  return null;
}

/**
 * The teams step, after the model is read and before anything is sent: a model outside the key's allow-list
 * (`refusedModel`) is 404 `model_not_found`. One branch when no key has an allow-list (the table is built at
 * start and reload).
 */
export function checkModelPolicy(
  policies: PolicyTable,
  ex: ChatExchange,
  named: NamedModels,
  registry: BackendRegistry,
  redactor: Redactor,
): void {
  if (!policies.hasModelRules) return;
  const refused = refusedModel(policies, ex.authKeyName, named, registry);
  if (refused !== null) throw modelNotFound(refused, redactor);
}

/** Which entries of a model list a key sees: `id` is a model of `backend`, or a route name (`backend` null). */

export type ModelListFilter = (id: string, backend: string | null) => boolean;

/** Where the model lists find a route's chain. */
export type RouteChains = Pick<RouteTable, 'chain'>;

/**
 * The model list as the key may use it (README, Teams: policies): the default backend's models and the routes
 * its allow-list lets through, so a client never picks a model it would be refused. A route is judged as a
 * request naming it is (`refusedModel`); a listed model as that model on the default backend. Null (the whole
 * list) when the key has no allow-list, or the request no key.
 */
export function modelListFilter(
  policies: PolicyTable,
  keyName: string | null,
  routes: RouteChains | undefined,
  registry: BackendRegistry,
): ModelListFilter | null {
  const models = allowListOf(policies, keyName);
  if (models === null) return null;
  return (id, backend) => {
    if (backend !== null) return models.allows({ requested: id, backend, model: id });
    // Only route names are listed without a backend; a name the table does not know is judged by itself.
    const chain = routes?.chain(id);
    if (chain === undefined) return models.allows({ requested: id, backend: '', model: id });
    return refusedModel(policies, keyName, { name: id, elements: chain }, registry) === null;
  };
}
