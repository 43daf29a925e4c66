import type { BackendRegistry } from '../backends/registry.js';
import type { Backend } from '../backends/types.js';
import { ProxyError } from '../proxy-error.js';
import type { ChatExchange } from './exchange.js';
import type { ChatTarget, FrontEnd } from './front-ends.js';

/** Where one chat request goes: the client's body, the backend and model it names, streamed or not. */
export interface ChatRoute {
  /** The client's body (a JSON object), its members parsed as they are read (`RequestBody.fields`). */
  readonly clientBody: Record<string, unknown>;
  /** The model as the client wrote it (a `backend:` prefix included). */
  readonly requested: string;
  readonly backend: Backend;
  /** The model as the backend knows it (a `backend:` prefix stripped). */
  readonly model: string;
  readonly stream: boolean;
}

const NOT_AN_OBJECT = () =>
  new ProxyError(400, 'Request body must be a JSON object', { code: 'invalid_request' });

export function requireObjectBody(ex: ChatExchange): Record<string, unknown> {
  const json = ex.json;
  if (json !== undefined) {
    if (!json.isObject) throw NOT_AN_OBJECT();
    return json.fields;
  }
  const body = ex.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw NOT_AN_OBJECT();
  return body as Record<string, unknown>;
}

/** What the client asked for: its body, and the model and stream flag the front-end reads from it. */
export interface ClientTarget {
  readonly clientBody: Record<string, unknown>;
  readonly target: ChatTarget;
}

export function readTarget(frontEnd: FrontEnd, ex: ChatExchange): ClientTarget {
  const clientBody = requireObjectBody(ex);
  return { clientBody, target: frontEnd.target(clientBody, ex.url) };
}

/**
 * Step 1, resolve the route: the front-end reads model and stream flag (from the body, or Gemini's path),
 * the registry picks the backend (for the session's model, when a session set one). Noted on the request's state for the access line and metrics.
 */
export function resolveRoute(
  frontEnd: FrontEnd,
  ex: ChatExchange,
  registry: BackendRegistry,
  read: ClientTarget = readTarget(frontEnd, ex),
): ChatRoute {
  const { clientBody, target } = read;
  const resolved = registry.resolve(target.model);
  // A backend that speaks the client's protocol natively (the `openai` backend and the Responses API) gets
  // the request as it is.
  const backend = resolved.backend.speaking?.(frontEnd.protocol) ?? resolved.backend;
  ex.state.backend = backend.name;
  ex.state.model = resolved.model;
  return {
    clientBody,
    requested: target.model,
    backend,
    model: resolved.model,
    stream: target.stream,
  };
}
