import { ByteNeedle } from '../protocols/byte-needle.js';
import { responseOfItem } from '../protocols/responses/codec.js';
import { isRecord } from '../protocols/shared.js';
import { ProxyError } from '../proxy-error.js';
import type { StoredResponses } from '../state/responses.js';
import type { ChatExchange } from './exchange.js';
import { ownerOf, type StoredTurn } from './responses.js';
import { requireObjectBody } from './route.js';

/**
 * `item_reference` input items (README, "Responses API"): an item of an earlier response named by its id
 * alone. The Vercel AI SDK's `openai(...)` model sends one for each earlier answer of its own — text,
 * reasoning — while `store` is on, its default, instead of the item itself. The proxy made those items when
 * it translated the answer, and no backend knows them: each reference to an output item of a response the
 * proxy kept for the request's owner is replaced by that item, before any backend is chosen, so that
 * every backend gets the conversation (passed through, the body then changed). A reference the proxy
 * cannot resolve stays as it came: a Responses backend resolves its own, and a translation refuses it
 * (400, naming the item).
 */

/** The marker searched for in the request's bytes: nothing is parsed for a request without it. */
const REFERENCE = new ByteNeedle('"item_reference"');

/**
 * The most responses one request's references are looked up in: each is a store read (a Redis round trip)
 * and a parse of what was kept; a conversation with more answers than this can send its items, or continue
 * by `previous_response_id`.
 */
export const MAX_REFERENCED_RESPONSES = 256;

const isReference = (item: unknown): item is { type: 'item_reference'; id: string } =>
  isRecord(item) && item.type === 'item_reference' && typeof item.id === 'string';

/** Whether a Responses request may hold an `item_reference` (synchronous: the hot path's only cost). */
export function mayReferenceItems(ex: ChatExchange): boolean {
  const bytes = ex.rawBytes;
  if (bytes !== undefined) return REFERENCE.in(bytes);
  // A body an earlier step changed is parsed already.
  const body = ex.body;
  return isRecord(body) && Array.isArray(body.input) && body.input.some(isReference);
}

/** The output items of the responses the owner's references name, by item id (read concurrently). */
async function referencedItems(
  input: readonly unknown[],
  owner: string,
  store: StoredResponses,
): Promise<Map<string, unknown>> {
  const responses = new Set<string>();
  for (const item of input) {
    const response = isReference(item) ? responseOfItem(item.id) : undefined;
    if (response !== undefined) responses.add(response);
  }
  if (responses.size > MAX_REFERENCED_RESPONSES)
    throw new ProxyError(
      400,
      `'input' references items of ${responses.size} responses, more than the ${MAX_REFERENCED_RESPONSES} the proxy looks up for one request: send the items themselves (store: false) or continue with previous_response_id`,
      { param: 'input' },
    );
  const items = new Map<string, unknown>();
  await Promise.all(
    [...responses].map(async (id) => {
      const entry = await store.get(id, owner);
      // Missing, another owner's, or a passed-through id (a backend holds that one's items).
      if (entry === undefined || entry.value === null) return;
      const { response } = JSON.parse(entry.value) as StoredTurn;
      const output = Array.isArray(response.output) ? response.output : [];
      for (const item of output) if (isRecord(item) && typeof item.id === 'string') items.set(item.id, item);
    }),
  );
  return items;
}

/**
 * The exchange with every `item_reference` the proxy can resolve replaced by its item; the same exchange
 * when there is none (the bytes received then go on as they are).
 */
export async function resolveItemReferences(ex: ChatExchange, store: StoredResponses): Promise<ChatExchange> {
  const body = requireObjectBody(ex);
  const input = body.input;
  if (!Array.isArray(input)) return ex;
  const items = await referencedItems(input, ownerOf(ex), store);
  if (items.size === 0) return ex;
  let replaced = false;
  const resolved = input.map((item: unknown) => {
    const found = isReference(item) ? items.get(item.id) : undefined;
    if (found === undefined) return item;
    replaced = true;
    return found;
  });
  if (!replaced) return ex;
  const rebuilt = { ...body, input: resolved };
  // The body changed: the client's bytes are not what goes on.
  return { ...ex, json: undefined, body: rebuilt, rawBody: undefined, rawBytes: undefined };
}
