/**
 * `GET /v1/responses/{id}/input_items` for a response the proxy keeps (README, "Responses API"): the items
 * that led to it, as OpenAI lists them — each with an `id`, a message's content as typed parts — one page
 * at a time (`after`, `limit` 1–100, default 20, `order` `desc` by default).
 */
import { invalid, isRecord, type Json } from '../shared.js';

/** The prefix of an item's id by its type, as OpenAI names them. */
const ID_PREFIX: Record<string, string> = {
  message: 'msg',
  function_call: 'fc',
  function_call_output: 'fco',
  custom_tool_call: 'ctc',
  custom_tool_call_output: 'ctco',
  reasoning: 'rs',
};

/** A message's content as parts: a string is one text part, input or output by the role. */
function contentParts(role: unknown, content: unknown): unknown {
  if (typeof content !== 'string') return content;
  return [{ type: role === 'assistant' ? 'output_text' : 'input_text', text: content }];
}

/**
 * One kept item as listed: typed, with an id — its own, or one made from the response's id and the
 * item's place, the same on every call so that `after` finds it again.
 */
function listedItem(item: unknown, responseId: string, index: number): Json {
  const raw: Json = isRecord(item) ? item : { type: 'message', role: 'user', content: String(item) };
  const type = typeof raw.type === 'string' ? raw.type : 'message';
  const base = responseId.replace(/^resp_/, '');
  const id = typeof raw.id === 'string' ? raw.id : `${ID_PREFIX[type] ?? 'item'}_${base}_${index}`;
  if (type !== 'message') return { ...raw, id, type };
  return {
    ...raw,
    id,
    type,
    status: typeof raw.status === 'string' ? raw.status : 'completed',
    content: contentParts(raw.role, raw.content),
  };
}

/** The query of an input-items list, as the client sent it. */
export interface InputItemsQuery {
  after?: unknown;
  limit?: unknown;
  order?: unknown;
}

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;

function readLimit(value: unknown): number {
  if (value === undefined || value === '') return DEFAULT_LIMIT;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw invalid('limit', `expected an integer between 1 and ${MAX_LIMIT}`);
  return limit;
}

function readOrder(value: unknown): 'asc' | 'desc' {
  if (value === undefined || value === '' || value === 'desc') return 'desc';
  if (value === 'asc') return 'asc';
  throw invalid('order', "expected 'asc' or 'desc'");
}

/** One page of a kept response's input items, in OpenAI's list shape. */
export function listInputItems(items: readonly unknown[], responseId: string, query: InputItemsQuery): Json {
  const limit = readLimit(query.limit);
  const order = readOrder(query.order);
  const listed = items.map((item, i) => listedItem(item, responseId, i));
  if (order === 'desc') listed.reverse();
  let start = 0;
  if (query.after !== undefined && query.after !== '') {
    if (typeof query.after !== 'string') throw invalid('after', 'expected an item id');
    const at = listed.findIndex((item) => item.id === query.after);
    if (at < 0) throw invalid('after', `no input item '${query.after}' in this response`);
    start = at + 1;
  }
  const data = listed.slice(start, start + limit);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: start + limit < listed.length,
  };
}
