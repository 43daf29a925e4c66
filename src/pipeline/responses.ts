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
import { listInputItems, type InputItemsQuery } from '../protocols/responses/input-items.js';
import type { StoredEntry, StoredResponses } from '../state/responses.js';
import type { ChatExchange } from './exchange.js';
import type { ChatRoute } from './route.js';

/**
 * The Responses front-end's state (README, "Responses API"): `store` keeps each response and the input that
 * led to it, so that `previous_response_id` continues the conversation on any backend; every stored id
 * belongs to the key name that made it.
 *
 * - Translated (any backend but a Responses one): the proxy names the response (`resp_…`), keeps it and its
 *   input, and for `previous_response_id` rebuilds the history into `input`.
 * - Passed through (a backend that speaks Responses): the backend keeps the response; the proxy records the
 *   owner of the id it hands out and the backend that made it (a null value), where `GET`, `DELETE`,
 *   `input_items` and `previous_response_id` of that id go.
 */

type Json = Record<string, unknown>;

/** With authentication off every request has the same owner: stored responses are everyone's. */
export function ownerOf(ex: { authKeyName: string | null }): string {
  return ex.authKeyName ?? '';
}

/** What is kept for a translated response: the Response object and the whole input that led to it. */
export interface StoredTurn {
  response: Json;
  input: unknown[];
  /**
   * What a response continued from this one goes on with, when not its input and output: for the reply to
   * a command, the conversation without the command and the reply (README, "In-chat commands").
   */
  history?: unknown[];
}

export function notFound(id: string, param?: string): ProxyError {
  return new ProxyError(404, `Response with id '${id}' not found.`, {
    code: param ? 'previous_response_not_found' : 'not_found',
    ...(param ? { param } : {}),
  });
}

/** `input` as a list of items: a string is one user message. */
export function inputItems(input: unknown): unknown[] {
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
const ID_KEY = Buffer.from('"id"');
/** The `"id"` member at the start of a window, and how much of it the window must hold to tell. */
const ID_MEMBER = /^"id"\s*:\s*"([^"\\]{1,200})"/;
const ID_WINDOW = 256;

/**
 * Calls `found` with the first `"id"` of a passed-through answer, once. On the hot path of every stored
 * passed-through answer: it reads the bytes as they are (no copy of a chunk, no decoding of the answer),
 * searches them for `"id"` and decodes only the few bytes after it; after the id (in the first chunk, as
 * a rule) each chunk costs one branch.
 */
export function idWatcher(found: (id: string) => void): (chunk: Uint8Array | string) => void {
  let head: Buffer | undefined;
  let done = false;
  return (chunk) => {
    if (done) return;
    const bytes =
      typeof chunk === 'string'
        ? Buffer.from(chunk)
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const room = ID_SEARCH_LIMIT - (head?.length ?? 0);
    const part = bytes.length > room ? bytes.subarray(0, room) : bytes;
    // Held across chunks only until the id is complete (a copy then: undici may reuse a chunk's memory).
    const seen = head === undefined ? part : Buffer.concat([head, part]);
    const at = seen.indexOf(ID_KEY);
    if (at >= 0) {
      const match = ID_MEMBER.exec(seen.toString('latin1', at, at + ID_WINDOW));
      if (match) {
        done = true;
        head = undefined;
        found(match[1] as string);
        return;
      }
      // A whole window after `"id"` and no string id: not an answer this reader knows.
      if (seen.length >= at + ID_WINDOW) done = true;
    }
    if (seen.length >= ID_SEARCH_LIMIT) done = true;
    head = done ? undefined : Buffer.from(seen);
  };
}

export interface ResponsesDeps {
  /** Null: nothing is stored (`previous_response_id` then finds nothing). */
  store: StoredResponses | null;
  log: { error(obj: object, msg: string): void };
}

/** The stored response a request continues (`previous_response_id`), found for its owner. */
export interface PreviousResponse {
  readonly id: string;
  readonly entry: StoredEntry;
  /** What the proxy kept (parsed once, for every reader); undefined when a Responses backend holds it. */
  readonly stored: StoredTurn | undefined;
}

/** Whether a Responses request names a response it continues (`previous_response_id`). */
export function continuesResponse(body: Json): boolean {
  const previous = body.previous_response_id;
  return previous !== undefined && previous !== null;
}

/**
 * `previous_response_id`, read and looked up for the request's owner before any backend is chosen (a
 * routed request reads it once for all its attempts): undefined without one, a 404 when the owner has no
 * such response.
 */
export function findPrevious(
  ex: ChatExchange,
  body: Json,
  store: StoredResponses | null,
): Promise<PreviousResponse | undefined> | undefined {
  // Most requests: nothing to look up, and no promise made.
  if (!continuesResponse(body)) return undefined;
  return lookUpPrevious(ex, body.previous_response_id, store);
}

async function lookUpPrevious(
  ex: ChatExchange,
  previous: unknown,
  store: StoredResponses | null,
): Promise<PreviousResponse> {
  if (typeof previous !== 'string')
    throw new ProxyError(400, 'previous_response_id: expected a string', { param: 'previous_response_id' });
  const entry = store ? await store.get(previous, ownerOf(ex)) : undefined;
  if (entry === undefined) throw notFound(previous, 'previous_response_id');
  const stored = entry.value === null ? undefined : (JSON.parse(entry.value) as StoredTurn);
  return { id: previous, entry, stored };
}

/**
 * The whole conversation a request that continues a response the proxy kept goes on with (on translation,
 * in place of `previous_response_id`): the stored input and output, then this request's input. Undefined
 * when a Responses backend holds the response (the proxy has not seen its conversation).
 */
export function continuedInput(previous: PreviousResponse, body: Json): unknown[] | undefined {
  const { stored } = previous;
  if (stored === undefined) return undefined;
  if (stored.history !== undefined) return [...stored.history, ...inputItems(body.input)];
  const output = Array.isArray(stored.response.output) ? stored.response.output : [];
  return [...stored.input, ...output, ...inputItems(body.input)];
}

/** Keeps a response for the request's owner; a write that is not done at once is waited for by the answer's end. */
function keepResponse(
  ex: ChatExchange,
  deps: ResponsesDeps,
  id: string,
  value: string | null,
  backend: string | undefined,
): void {
  const { store, log } = deps;
  if (store === null) return;
  const writing = store.put(id, ownerOf(ex), value, backend);
  // Kept already (memory): the answer's end waits for nothing.
  if (writing === undefined) return;
  const put = writing.catch((err: unknown) => log.error({ err }, 'storing a response failed'));
  const { state } = ex;
  const before = state.storing;
  state.storing = before === undefined ? put : Promise.all([before, put]).then(() => undefined);
}

/**
 * The Responses codec for an answer the proxy gives itself (a command's reply, the loop guard's steering):
 * kept as any translated answer is (`store`), so that `GET /v1/responses/{id}` finds it and a
 * `previous_response_id` goes on from it. `withoutCommands`: for a command's reply, the request's body
 * without its command text — what a response continued from this one goes on with, the reply left out, as
 * a client that resends its history has both removed (src/pipeline/session.ts).
 */
export function localAnswerCodec(
  ex: ChatExchange,
  body: Json,
  previous: PreviousResponse | undefined,
  deps: ResponsesDeps,
  withoutCommands?: Json,
): ProtocolCodec {
  const context: ResponsesContext = responsesContext(body);
  if (deps.store !== null && body.store !== false) {
    const conversation = (of: Json) =>
      (previous === undefined ? undefined : continuedInput(previous, of)) ?? inputItems(of.input);
    const input = conversation(body);
    const history = withoutCommands === undefined ? undefined : conversation(withoutCommands);
    context.onResponse = (response) =>
      keepResponse(ex, deps, context.responseId, JSON.stringify({ response, input, history }), undefined);
  }
  return createResponsesCodec({ context });
}

/**
 * The Responses step for one backend, between resolving the route and preparing the request: on
 * translation the stored conversation replaces `previous_response_id`; a response a Responses backend holds
 * is continued on that backend only; and how the answer is kept once it is known. Synchronous: failover
 * calls it for each element of a chain.
 */
export function responsesTurn(
  ex: ChatExchange,
  route: ChatRoute,
  previous: PreviousResponse | undefined,
  deps: ResponsesDeps,
): ResponsesTurn {
  const body = route.clientBody;
  const keep = deps.store !== null && body.store !== false;
  const passThrough = route.backend.protocol === 'responses';
  const backendName = route.backend.name;
  const save = (id: string, value: string | null) =>
    keepResponse(ex, deps, id, value, value === null ? backendName : undefined);
  let input: unknown[] | undefined;
  if (previous !== undefined) {
    const { entry } = previous;
    if (entry.value === null) {
      const holder = entry.backend;
      if (!passThrough || (holder !== undefined && holder !== backendName)) {
        throw new ProxyError(
          400,
          `Response '${previous.id}' is held by ${holder === undefined ? 'a Responses backend' : `backend '${holder}'`}: continue it with a model of that backend`,
          { param: 'previous_response_id' },
        );
      }
    } else {
      input = continuedInput(previous, body);
      const rebuilt: Json = { ...body, input };
      delete rebuilt.previous_response_id;
      // The body changed: the client's bytes are not what goes on.
      ex = { ...ex, json: undefined, body: rebuilt, rawBody: undefined, rawBytes: undefined };
      route = { ...route, clientBody: rebuilt };
    }
  }
  if (passThrough) return { ex, route, watch: keep ? idWatcher((id) => save(id, null)) : undefined };
  // The Response repeats the request as the client sent it (its previous_response_id included).
  const context: ResponsesContext = responsesContext(body);
  if (keep) {
    const kept = input ?? inputItems(body.input);
    context.onResponse = (response) => {
      if (response.status !== 'failed') save(context.responseId, JSON.stringify({ response, input: kept }));
    };
  }
  return { ex, route, codecs: { ...codecs, responses: createResponsesCodec({ context }) } };
}

/**
 * Where a passed-through id's `GET`, `DELETE` and `input_items` go: the backend that made it, as it speaks
 * Responses; for an entry kept before backends were recorded, the default backend if it speaks Responses,
 * else the first that does.
 */
function holderOf(registry: BackendRegistry, entry: StoredEntry): Backend | undefined {
  const usable = (backend: Backend | undefined) => {
    const view = backend?.speaking?.('responses');
    return view?.storedResponse && view.missingCredential === null ? view : undefined;
  };
  if (entry.backend !== undefined) return usable(registry.get(entry.backend));
  return (
    usable(registry.defaultBackend) ??
    registry
      .all()
      .map(usable)
      .find((b) => b !== undefined)
  );
}

export interface StoredAnswer {
  status: number;
  body: Buffer | string | object;
  contentType?: string | undefined;
}

export interface StoredResponseDeps {
  store: StoredResponses | null;
  registry: BackendRegistry;
  redactor: Redactor;
  signal: CancelSignal;
}

/** A passed-through id's answer from the backend that holds it: its bytes, or its error redacted. */
async function fromHolder(
  method: 'GET' | 'DELETE',
  id: string,
  entry: StoredEntry,
  deps: StoredResponseDeps,
  tail?: string,
): Promise<StoredAnswer> {
  const backend = holderOf(deps.registry, entry);
  if (backend?.storedResponse === undefined) throw notFound(id);
  let upstream;
  try {
    upstream = await backend.storedResponse(method, id, deps.signal, tail);
  } catch (err) {
    throw upstreamFailure(err, backend.name, deps.signal);
  }
  const bytes = await readBytes(upstream);
  if (upstream.status >= 400) {
    const text = redactErrorText(deps.redactor, bytes.toString('utf8'));
    const info = codecs.responses.decodeError(upstream.status, text);
    return { status: upstream.status, body: errorEnvelope('responses', info) };
  }
  const type = upstream.headers['content-type'];
  return { status: upstream.status, body: bytes, contentType: typeof type === 'string' ? type : undefined };
}

/**
 * `GET` and `DELETE /v1/responses/{id}`: a response kept by the proxy, or, for an id it passed through, the
 * answer of the backend that made it (README, "Responses API"). Any key but the owner's gets 404.
 */
export async function storedResponse(
  method: 'GET' | 'DELETE',
  id: string,
  owner: string,
  deps: StoredResponseDeps,
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
  const answer = await fromHolder(method, id, entry, deps);
  if (method === 'DELETE' && answer.status < 400) await deps.store.delete(id, owner);
  return answer;
}

/**
 * The list parameters a backend is given, as the client may name them and as they go on (the `openai` SDK
 * writes `include[]`); nothing else of the client's query goes on.
 */
const LIST_PARAMS: ReadonlyArray<readonly [from: string, to: string]> = [
  ['after', 'after'],
  ['limit', 'limit'],
  ['order', 'order'],
  ['include', 'include[]'],
  ['include[]', 'include[]'],
];

/**
 * The query of a passed-through list: only the list's own parameters — the client's query may also hold
 * its proxy key (`?key=`), which never goes to a backend.
 */
function listQuery(query: Record<string, unknown>): string {
  const params = new URLSearchParams();
  for (const [from, to] of LIST_PARAMS) {
    const value = query[from];
    for (const one of Array.isArray(value) ? value : [value])
      if (typeof one === 'string') params.append(to, one);
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

/**
 * `GET /v1/responses/{id}/input_items`: the items that led to a kept response, a page at a time, or, for an
 * id passed through, the list of the backend that made it (its list parameters passed on). Any key but the
 * owner's gets 404.
 */
export async function storedInputItems(
  id: string,
  owner: string,
  query: InputItemsQuery & Record<string, unknown>,
  deps: StoredResponseDeps,
): Promise<StoredAnswer> {
  const entry = deps.store ? await deps.store.get(id, owner) : undefined;
  if (entry === undefined) throw notFound(id);
  if (entry.value !== null) {
    const stored = JSON.parse(entry.value) as StoredTurn;
    return { status: 200, body: listInputItems(stored.input, id, query) };
  }
  return fromHolder('GET', id, entry, deps, `/input_items${listQuery(query)}`);
}
