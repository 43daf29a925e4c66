import type { BackendRegistry } from '../backends/registry.js';
import type { Backend } from '../backends/types.js';
import { ProxyError } from '../proxy-error.js';
import type { ChatExchange } from './exchange.js';
import type { FrontEnd } from './front-ends.js';

/** Where one chat request goes: the client's body, the backend and model it names, streamed or not. */
export interface ChatRoute {
  /** The client's body as parsed (a JSON object). */
  readonly clientBody: Record<string, unknown>;
  /** The model as the client wrote it (a `backend:` prefix included). */
  readonly requested: string;
  readonly backend: Backend;
  /** The model as the backend knows it (a `backend:` prefix stripped). */
  readonly model: string;
  readonly stream: boolean;
}

function requireObjectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ProxyError(400, 'Request body must be a JSON object', { code: 'invalid_request' });
  }
  return body as Record<string, unknown>;
}

/**
 * Step 1, resolve the route: the front-end reads model and stream flag (from the body, or Gemini's path),
 * the registry picks the backend. Noted on the request's state for the access line and metrics.
 */
export function resolveRoute(frontEnd: FrontEnd, ex: ChatExchange, registry: BackendRegistry): ChatRoute {
  const clientBody = requireObjectBody(ex.body);
  const target = frontEnd.target(clientBody, ex.url);
  const resolved = registry.resolve(target.model);
  ex.state.backend = resolved.backend.name;
  ex.state.model = resolved.model;
  return {
    clientBody,
    requested: target.model,
    backend: resolved.backend,
    model: resolved.model,
    stream: target.stream,
  };
}
