/**
 * Test fixtures: realistic SSE transcripts as each provider sends them (hand-written from the providers'
 * documented wire formats, not produced by our encoders) and a helper that reduces canonical events to the
 * answer they describe.
 */
import type { StopReason, StreamEvent, Usage } from '../canonical.js';
import { parseSse } from '../sse.js';
import { codecs } from '../registry.js';
import type { Protocol } from '../types.js';

export const TEXT = 'Héllo 👋 wörld';
export const ARGS = '{"city":"Zürich","days":3}';

const oa = (delta: object, finish: string | null = null): string =>
  `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":${JSON.stringify(delta)},"logprobs":null,"finish_reason":${JSON.stringify(finish)}}]}\n\n`;

/** Text, then one tool call with arguments in three pieces, then usage, as OpenAI streams them. */
export const OPENAI_TRANSCRIPT =
  oa({ role: 'assistant', content: '' }) +
  oa({ content: 'Héllo 👋' }) +
  oa({ content: ' wörld' }) +
  oa({
    tool_calls: [
      { index: 0, id: 'call_abc', type: 'function', function: { name: 'weather', arguments: '' } },
    ],
  }) +
  oa({ tool_calls: [{ index: 0, function: { arguments: '{"city":"Zü' } }] }) +
  oa({ tool_calls: [{ index: 0, function: { arguments: 'rich","days"' } }] }) +
  oa({ tool_calls: [{ index: 0, function: { arguments: ':3}' } }] }) +
  oa({}, 'tool_calls') +
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":22,"total_tokens":33}}\n\n' +
  'data: [DONE]\n\n';

const an = (event: string, payload: object): string =>
  `event: ${event}\ndata: ${JSON.stringify(payload)}\n\n`;

export const ANTHROPIC_TRANSCRIPT =
  an('message_start', {
    type: 'message_start',
    message: {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-x',
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 11, output_tokens: 1 },
    },
  }) +
  an('content_block_start', {
    type: 'content_block_start',
    index: 0,
    content_block: { type: 'text', text: '' },
  }) +
  an('ping', { type: 'ping' }) +
  an('content_block_delta', {
    type: 'content_block_delta',
    index: 0,
    delta: { type: 'text_delta', text: 'Héllo 👋' },
  }) +
  an('content_block_delta', {
    type: 'content_block_delta',
    index: 0,
    delta: { type: 'text_delta', text: ' wörld' },
  }) +
  an('content_block_stop', { type: 'content_block_stop', index: 0 }) +
  an('content_block_start', {
    type: 'content_block_start',
    index: 1,
    content_block: { type: 'tool_use', id: 'toolu_abc', name: 'weather', input: {} },
  }) +
  an('content_block_delta', {
    type: 'content_block_delta',
    index: 1,
    delta: { type: 'input_json_delta', partial_json: '' },
  }) +
  an('content_block_delta', {
    type: 'content_block_delta',
    index: 1,
    delta: { type: 'input_json_delta', partial_json: '{"city":"Zü' },
  }) +
  an('content_block_delta', {
    type: 'content_block_delta',
    index: 1,
    delta: { type: 'input_json_delta', partial_json: 'rich","days":3}' },
  }) +
  an('content_block_stop', { type: 'content_block_stop', index: 1 }) +
  an('message_delta', {
    type: 'message_delta',
    delta: { stop_reason: 'tool_use', stop_sequence: null },
    usage: { output_tokens: 22 },
  }) +
  an('message_stop', { type: 'message_stop' });

const ge = (payload: object): string => `data: ${JSON.stringify(payload)}\r\n\r\n`;

/** Gemini sends function calls whole; the id it lacks is synthesised by our decoder. */
export const GEMINI_TRANSCRIPT =
  ge({
    candidates: [{ content: { parts: [{ text: 'Héllo 👋' }], role: 'model' }, index: 0 }],
    usageMetadata: { promptTokenCount: 11, totalTokenCount: 11 },
    modelVersion: 'gemini-x',
    responseId: 'resp1',
  }) +
  ge({
    candidates: [{ content: { parts: [{ text: ' wörld' }], role: 'model' }, index: 0 }],
    modelVersion: 'gemini-x',
    responseId: 'resp1',
  }) +
  ge({
    candidates: [
      {
        content: {
          parts: [{ functionCall: { name: 'weather', args: { city: 'Zürich', days: 3 } } }],
          role: 'model',
        },
        finishReason: 'STOP',
        index: 0,
      },
    ],
    usageMetadata: { promptTokenCount: 11, candidatesTokenCount: 22, totalTokenCount: 33 },
    modelVersion: 'gemini-x',
    responseId: 'resp1',
  });

let sequence = 0;
const re = (type: string, payload: object): string =>
  `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...payload })}\n\n`;
const response = (status: string, output: object[], usage: object | null) => ({
  id: 'resp_1',
  object: 'response',
  created_at: 1,
  status,
  model: 'gpt-x',
  output,
  usage,
});
const MESSAGE = { id: 'msg_1', type: 'message', role: 'assistant' };
const CALL = { id: 'fc_1', type: 'function_call', call_id: 'call_abc', name: 'weather' };
const OUTPUT_TEXT = { type: 'output_text', text: TEXT, annotations: [] };

/** The Responses API's typed events: a message, then a function call in three pieces, then usage. */
export const RESPONSES_TRANSCRIPT =
  re('response.created', { response: response('in_progress', [], null) }) +
  re('response.in_progress', { response: response('in_progress', [], null) }) +
  re('response.output_item.added', {
    output_index: 0,
    item: { ...MESSAGE, status: 'in_progress', content: [] },
  }) +
  re('response.content_part.added', {
    item_id: 'msg_1',
    output_index: 0,
    content_index: 0,
    part: { type: 'output_text', text: '', annotations: [] },
  }) +
  re('response.output_text.delta', {
    item_id: 'msg_1',
    output_index: 0,
    content_index: 0,
    delta: 'Héllo 👋',
  }) +
  re('response.output_text.delta', { item_id: 'msg_1', output_index: 0, content_index: 0, delta: ' wörld' }) +
  re('response.output_text.done', { item_id: 'msg_1', output_index: 0, content_index: 0, text: TEXT }) +
  re('response.content_part.done', {
    item_id: 'msg_1',
    output_index: 0,
    content_index: 0,
    part: OUTPUT_TEXT,
  }) +
  re('response.output_item.done', {
    output_index: 0,
    item: { ...MESSAGE, status: 'completed', content: [OUTPUT_TEXT] },
  }) +
  re('response.output_item.added', {
    output_index: 1,
    item: { ...CALL, status: 'in_progress', arguments: '' },
  }) +
  re('response.function_call_arguments.delta', { item_id: 'fc_1', output_index: 1, delta: '{"city":"Zü' }) +
  re('response.function_call_arguments.delta', { item_id: 'fc_1', output_index: 1, delta: 'rich","days"' }) +
  re('response.function_call_arguments.delta', { item_id: 'fc_1', output_index: 1, delta: ':3}' }) +
  re('response.function_call_arguments.done', { item_id: 'fc_1', output_index: 1, arguments: ARGS }) +
  re('response.output_item.done', {
    output_index: 1,
    item: { ...CALL, status: 'completed', arguments: ARGS },
  }) +
  re('response.completed', {
    response: response(
      'completed',
      [
        { ...MESSAGE, status: 'completed', content: [OUTPUT_TEXT] },
        { ...CALL, status: 'completed', arguments: ARGS },
      ],
      { input_tokens: 11, output_tokens: 22, total_tokens: 33 },
    ),
  });

export const TRANSCRIPTS: Record<Protocol, string> = {
  responses: RESPONSES_TRANSCRIPT,
  openai: OPENAI_TRANSCRIPT,
  anthropic: ANTHROPIC_TRANSCRIPT,
  gemini: GEMINI_TRANSCRIPT,
};

export interface Reassembled {
  text: string;
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  stopReason?: StopReason | undefined;
  usage?: Usage | undefined;
  errors: StreamEvent[];
}

export function reassemble(events: StreamEvent[]): Reassembled {
  const out: Reassembled = { text: '', toolCalls: [], errors: [] };
  for (const e of events) {
    if (e.type === 'text') out.text += e.text;
    if (e.type === 'tool_call_start') out.toolCalls[e.index] = { id: e.id, name: e.name, arguments: '' };
    if (e.type === 'tool_call_delta') {
      const call = out.toolCalls[e.index];
      if (call) call.arguments += e.arguments;
    }
    if (e.type === 'finish') {
      out.stopReason = e.stopReason;
      out.usage = e.usage;
    }
    if (e.type === 'error') out.errors.push(e);
  }
  return out;
}

/** Splits bytes into chunks of `size`, so lines and multi-byte characters straddle chunk boundaries. */
export async function* chunked(text: string, size: number): AsyncGenerator<Uint8Array> {
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; i += size) yield new Uint8Array(bytes.subarray(i, i + size));
}

/** Decodes SSE text in `protocol` back to canonical events with that protocol's own decoder. */
export async function decodeSseText(protocol: Protocol, text: string): Promise<StreamEvent[]> {
  const decoder = codecs[protocol].createStreamDecoder();
  const events: StreamEvent[] = [];
  for await (const message of parseSse(chunked(text, 1 << 16))) events.push(...decoder.push(message));
  events.push(...decoder.end());
  return events;
}
