import type { CancelSignal } from '../backends/cancel.js';
import { readBytes, upstreamFailure } from '../backends/http.js';
import type { BackendRegistry } from '../backends/registry.js';
import type { Backend } from '../backends/types.js';
import { ProxyError } from '../proxy-error.js';
import { errorEnvelope } from '../protocols/error-envelopes.js';
import type { Redactor } from '../redaction/redactor.js';
import { redactErrorText } from '../redaction/upstream-errors.js';
import type { ProtocolCodec } from '../protocols/codec.js';
import { codecs } from '../protocols/registry.js';
import {
  createResponsesCodec,
  responsesContext,
  type ResponsesContext,
} from '../protocols/responses/codec.js';
import type { Protocol } from '../protocols/types.js';
import type { StoredResponses } from '../state/responses.js';
import type { ChatExchange } from './exchange.js';
import type { ChatRoute } from './route.js';

/**
 * The Responses front-end's state (README, "Responses API"): `store` keeps each response and the input that
 * led to it, so that `previous_response_id` continues the conversation on any backend; every stored id
 * belongs to the key name that made it.
 *
 * - Translated (any backend but a Responses one): the proxy names the response (`resp_…`), keeps it and its
 *   input, and for `previous_response_id` rebuilds the history into `input`.
 * - Passed through (a backend that speaks Responses): the backend keeps the response; the proxy records only
 *   the owner of the id it hands out (a null value) and forwards `previous_response_id` as it is.
 */

type Json = Record<string, unknown>;

/** With authentication off every request has the same owner: stored responses are everyone's. */
export function ownerOf(ex: { authKeyName: string | null }): string {
  return ex.authKeyName ?? '';
}

/** What is kept for a translated response: the Response object and the whole input that led to it. */
interface StoredTurn {
  response: Json;
  input: unknown[];
}

export function notFound(id: string, param?: string): ProxyError {
  return new ProxyError(404, `Response with id '${id}' not found.`, {
    code: param ? 'previous_response_not_found' : 'not_found',
    ...(param ? { param } : {}),
  });
}

/** `input` as a list of items: a string is one user message. */
function inputItems(input: unknown): unknown[] {
  if (typeof input === 'string') return [{ type: 'message', role: 'user', content: input }];
  return Array.isArray(input) ? input : [];
}

/** What the rest of the pipeline uses for one Responses request. */
export interface ResponsesTurn {
  ex: ChatExchange;
  route: ChatRoute;
  /** Translated: the client's codecs, its Responses codec bound to this request. */
  codecs?: Record<Protocol, ProtocolCodec> | undefined;
  /** Passed through: shown the answer's first bytes, to learn the id the backend handed out. */
  watch?: ((chunk: Uint8Array | string) => void) | undefined;
}

/** How far into a passed-through answer its id is looked for (it is the first field). */
const ID_SEARCH_LIMIT = 16 * 1024;
const FIRST_ID = /"id"\s*:\s*"([^"\\]{1,200})"/;

/** Calls `found` with the first `"id"` of a passed-through answer, once. */
function idWatcher(found: (id: string) => void): (chunk: Uint8Array | string) => void {
  let seen = '';
  let done = false;
  return (chunk) => {
    if (done) return;
    seen += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    const match = FIRST_ID.exec(seen);
    if (match) {
      done = true;
      found(match[1] as string);
    } else if (seen.length > ID_SEARCH_LIMIT) done = true;
  };
}

export interface ResponsesDeps {
  /** Null: nothing is stored (`previous_response_id` then finds nothing). */
  store: StoredResponses | null;
  log: { error(obj: object, msg: string): void };
}

/**
 * The Responses step, between resolving the route and preparing the request: `previous_response_id`
 * checked against its owner and, on translation, replaced by the stored conversation; and how the answer is
 * kept once it is known.
 */
export async function beginResponsesTurn(
  ex: ChatExchange,
  route: ChatRoute,
  deps: ResponsesDeps,
): Promise<ResponsesTurn> {
  const { store, log } = deps;
  const owner = ownerOf(ex);
  const body = route.clientBody;
  const keep = body.store !== false && store !== null;
  const passThrough = route.backend.protocol === 'responses';
  const save = (id: string, value: string | null) => {
    store?.put(id, owner, value).catch((err: unknown) => log.error({ err }, 'storing a response failed'));
  };
  let input = inputItems(body.input);
  const previous = body.previous_response_id;
  if (previous !== undefined && previous !== null) {
    if (typeof previous !== 'string')
      throw new ProxyError(400, 'previous_response_id: expected a string', { param: 'previous_response_id' });
    const entry = store ? await store.get(previous, owner) : undefined;
    if (entry === undefined) throw notFound(previous, 'previous_response_id');
    if (entry.value === null) {
      if (!passThrough) {
        throw new ProxyError(
          400,
          `Response '${previous}' is held by a Responses backend: continue it with a model of that backend`,
          { param: 'previous_response_id' },
        );
      }
    } else {
      const stored = JSON.parse(entry.value) as StoredTurn;
      const output = Array.isArray(stored.response.output) ? stored.response.output : [];
      input = [...stored.input, ...output, ...input];
      const rebuilt: Json = { ...body, input };
      delete rebuilt.previous_response_id;
      // The body changed: the client's bytes are not what goes on.
      ex = { ...ex, json: undefined, body: rebuilt, rawBody: undefined, rawBytes: undefined };
      route = { ...route, clientBody: rebuilt };
    }
  }
  if (passThrough) {
    return { ex, route, watch: keep ? idWatcher((id) => save(id, null)) : undefined };
  }
  // The Response repeats the request as the client sent it (its previous_response_id included).
  const context: ResponsesContext = responsesContext(body);
  if (keep) {
    context.onResponse = (response) => {
      if (response.status !== 'failed') save(context.responseId, JSON.stringify({ response, input }));
    };
  }
  return { ex, route, codecs: { ...codecs, responses: createResponsesCodec({ context }) } };
}

/** A backend that keeps the responses it passed through: the default one if it speaks Responses, else the first. */
function responsesBackend(registry: BackendRegistry): Backend | undefined {
  const native = registry.defaultBackend.speaking?.('responses');
  if (native?.storedResponse && native.missingCredential === null) return native;
  for (const backend of registry.all()) {
    const view = backend.speaking?.('responses');
    if (view?.storedResponse && view.missingCredential === null) return view;
  }
  return undefined;
}

export interface StoredAnswer {
  status: number;
  body: Buffer | string | object;
  contentType?: string | undefined;
}

/**
 * `GET` and `DELETE /v1/responses/{id}`: a response kept by the proxy, or, for an id it passed through, the
 * backend's own answer (README, "Responses API"). Any key but the owner's gets 404.
 */
export async function storedResponse(
  method: 'GET' | 'DELETE',
  id: string,
  owner: string,
  deps: {
    store: StoredResponses | null;
    registry: BackendRegistry;
    redactor: Redactor;
    signal: CancelSignal;
  },
): Promise<StoredAnswer> {
  const entry = deps.store ? await deps.store.get(id, owner) : undefined;
  if (entry === undefined || deps.store === null) throw notFound(id);
  if (entry.value !== null) {
    if (method === 'DELETE') {
      await deps.store.delete(id, owner);
      return { status: 200, body: { id, object: 'response', deleted: true } };
    }
    return { status: 200, body: (JSON.parse(entry.value) as StoredTurn).response };
  }
  const backend = responsesBackend(deps.registry);
  if (backend?.storedResponse === undefined) throw notFound(id);
  let upstream;
  try {
    upstream = await backend.storedResponse(method, id, deps.signal);
  } catch (err) {
    throw upstreamFailure(err, backend.name, deps.signal);
  }
  const bytes = await readBytes(upstream);
  if (upstream.status >= 400) {
    const text = redactErrorText(deps.redactor, bytes.toString('utf8'));
    const info = codecs.responses.decodeError(upstream.status, text);
    return { status: upstream.status, body: errorEnvelope('responses', info) };
  }
  if (method === 'DELETE') await deps.store.delete(id, owner);
  const type = upstream.headers['content-type'];
  return { status: upstream.status, body: bytes, contentType: typeof type === 'string' ? type : undefined };
}
