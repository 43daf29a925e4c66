import { describe, expect, it } from 'vitest';
import type { ChatRequest, ChatResponse } from '../canonical.js';
import { createAnthropicCodec } from './codec.js';

const codec = createAnthropicCodec({ now: () => Date.UTC(2025, 0, 2) });
const ctx = { model: 'claude-x', stream: false };
const PNG = 'iVBORw0KGgo=';

const wireRequest = {
  model: 'claude-x',
  max_tokens: 256,
  system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'Look' },
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
        { type: 'image', source: { type: 'url', url: 'https://example.com/a.gif' } },
      ],
    },
    {
      role: 'assistant',
      content: [
        { type: 'text', text: 'Let me check.' },
        { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } },
      ],
    },
    {
      role: 'user',
      content: [
        {
          type: 'tool_result',
          tool_use_id: 'toolu_1',
          content: [{ type: 'text', text: 'rain' }],
          is_error: true,
        },
        { type: 'text', text: 'And tomorrow?' },
      ],
    },
  ],
  temperature: 0.3,
  top_k: 40,
  stop_sequences: ['###'],
  tools: [{ name: 'weather', description: 'Weather', input_schema: { type: 'object' } }],
  tool_choice: { type: 'any', disable_parallel_tool_use: true },
  metadata: { user_id: 'u1' },
};

const canonical: ChatRequest = {
  model: 'claude-x',
  system: 'Be brief.',
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'Look' },
        { type: 'image', source: 'base64', mediaType: 'image/png', data: PNG },
        { type: 'image', source: 'url', url: 'https://example.com/a.gif' },
      ],
    },
    {
      role: 'assistant',
      content: [
        { type: 'text', text: 'Let me check.' },
        { type: 'tool_call', id: 'toolu_1', name: 'weather', arguments: '{"city":"Paris"}' },
      ],
    },
    {
      role: 'tool',
      content: [{ type: 'tool_result', toolCallId: 'toolu_1', content: 'rain', isError: true }],
    },
    { role: 'user', content: [{ type: 'text', text: 'And tomorrow?' }] },
  ],
  temperature: 0.3,
  topK: 40,
  maxTokens: 256,
  stop: ['###'],
  tools: [{ name: 'weather', description: 'Weather', parameters: { type: 'object' } }],
  toolChoice: { type: 'required' },
  parallelToolCalls: false,
  stream: false,
  sourcePaths: { topK: ['top_k'], parallelToolCalls: ['tool_choice.disable_parallel_tool_use'] },
  dropped: ['metadata', 'system[0].cache_control'],
};

const strip = <T>(o: T): T => JSON.parse(JSON.stringify(o)) as T;

describe('Anthropic codec: requests', () => {
  it('decodes system blocks, images, tool_use and tool_result blocks, sampling and tool choice', () => {
    expect(strip(codec.decodeRequest(wireRequest, ctx))).toEqual(canonical);
  });

  it('encodes back, merging the tool results and the next user text into one user turn', () => {
    const { metadata: _metadata, system: _system, ...rest } = wireRequest;
    expect(codec.encodeRequest(canonical)).toEqual({
      ...rest,
      system: 'Be brief.',
      messages: [
        wireRequest.messages[0],
        wireRequest.messages[1],
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: 'rain', is_error: true },
            { type: 'text', text: 'And tomorrow?' },
          ],
        },
      ],
    });
  });

  it('supplies max_tokens when the client protocol left it out, and drops empty text blocks', () => {
    const wire = codec.encodeRequest({
      model: 'm',
      stream: true,
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'hi' }] },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: '' },
            { type: 'tool_call', id: 'c1', name: 'f', arguments: '' },
          ],
        },
      ],
    });
    expect(wire).toEqual({
      model: 'm',
      max_tokens: 4096,
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'hi' }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'c1', name: 'f', input: {} }] },
      ],
      stream: true,
    });
  });

  it.each([
    [{ presencePenalty: 0.5 }, 'presence_penalty'],
    [{ seed: 7 }, 'seed'],
    [{ temperature: 1.5 }, 'temperature'],
  ])('refuses %j with a 400 naming %s', (extra, param) => {
    expect(() => codec.encodeRequest({ ...canonical, ...extra })).toThrow(
      expect.objectContaining({ status: 400, param }),
    );
  });

  it.each([
    [{ thinking: { type: 'sometimes' } }, 'thinking.type'],
    [{ thinking: { type: 'enabled', budget_tokens: 1024, extra: 1 } }, 'thinking.extra'],
    [{ output_config: { effort: 'extreme' } }, 'output_config.effort'],
    [{ output_config: { verbosity: 'low' } }, 'output_config.verbosity'],
    [{ mcp_servers: [] }, 'mcp_servers'],
    [{ tools: [{ type: 'web_search_20250305', name: 'web_search' }] }, 'tools[0].type'],
    [
      { messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] },
      'messages[0].content[0].type',
    ],
  ])('rejects %j with a 400 naming %s', (extra, param) => {
    const body = { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }], ...extra };
    expect(() => codec.decodeRequest(body, ctx)).toThrow(expect.objectContaining({ status: 400, param }));
  });

  // A client that names no limit (Gemini CLI never does) gets the model's own output limit, not a cut at 4096.
  it.each([
    ['claude-3-haiku-20240307', 4096],
    ['claude-3-5-haiku-20241022', 8192],
    ['claude-3-5-sonnet-latest', 8192],
    ['claude-3-7-sonnet-20250219', 64000],
    ['claude-sonnet-4-20250514', 64000],
    ['claude-sonnet-4-5', 64000],
    ['claude-opus-4-20250514', 32000],
    ['claude-opus-4-0', 32000],
    ['claude-opus-4-1-20250805', 32000],
    ['claude-opus-4-5-20251101', 64000],
    ['claude-opus-4-6', 64000],
    ['claude-haiku-4-5-20251001', 64000],
    // Anthropic-compatible servers' models: the limit every Claude model takes.
    ['glm-4.6', 4096],
    ['claude-mock-1', 4096],
  ])('max_tokens for %s, when the client names none: %i', (model, maxTokens) => {
    const req = { model, stream: false, messages: [{ role: 'user' as const, content: [] }] };
    expect(codec.encodeRequest(req).max_tokens).toBe(maxTokens);
    expect(codec.encodeRequest({ ...req, maxTokens: 100 }).max_tokens).toBe(100);
  });

  it('with thinking and no limit named: the model limit, or the budget and 4096 above it, the larger', () => {
    const req = {
      stream: false,
      messages: [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'hi' }] }],
      reasoning: { mode: 'enabled' as const, budgetTokens: 10000 },
    };
    const sonnet = codec.encodeRequest({ ...req, model: 'claude-sonnet-4-5' });
    expect([sonnet.max_tokens, sonnet.thinking]).toEqual([64000, { type: 'enabled', budget_tokens: 10000 }]);
    const other = codec.encodeRequest({ ...req, model: 'compatible-model' });
    expect([other.max_tokens, other.thinking]).toEqual([14096, { type: 'enabled', budget_tokens: 10000 }]);
  });

  it('rejects tool-call arguments that are not a JSON object with the offending field named', () => {
    const req: ChatRequest = {
      model: 'm',
      stream: false,
      messages: [
        { role: 'assistant', content: [{ type: 'tool_call', id: 'c', name: 'f', arguments: '{oops' }] },
      ],
    };
    expect(() => codec.encodeRequest(req)).toThrow(
      expect.objectContaining({ status: 400, param: 'messages[0].content[0]' }),
    );
  });
});

describe('Anthropic codec: responses', () => {
  const wire = {
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    model: 'claude-x',
    content: [
      { type: 'text', text: 'Sure.' },
      { type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } },
    ],
    stop_reason: 'tool_use',
    stop_sequence: null,
    usage: { input_tokens: 10, output_tokens: 5 },
  };
  const response: ChatResponse = {
    id: 'msg_1',
    model: 'claude-x',
    content: [
      { type: 'text', text: 'Sure.' },
      { type: 'tool_call', id: 'toolu_1', name: 'weather', arguments: '{"city":"Paris"}' },
    ],
    stopReason: 'tool_use',
    usage: { inputTokens: 10, outputTokens: 5 },
  };

  it('decodes and encodes a message both ways', () => {
    expect(strip(codec.decodeResponse(wire))).toEqual(response);
    expect(codec.encodeResponse(response)).toEqual(wire);
  });

  it('counts cached prompt tokens as input and keeps the matched stop sequence', () => {
    const res = codec.decodeResponse({
      ...wire,
      stop_reason: 'stop_sequence',
      stop_sequence: '###',
      usage: {
        input_tokens: 3,
        cache_read_input_tokens: 100,
        cache_creation_input_tokens: 7,
        output_tokens: 1,
      },
    });
    expect(res.usage).toEqual({ inputTokens: 110, outputTokens: 1, cachedInputTokens: 100 });
    expect(res).toMatchObject({ stopReason: 'stop_sequence', stopSequence: '###' });
  });

  it('writes cache reads apart from input_tokens, as Anthropic counts them', () => {
    const body = codec.encodeResponse({
      id: 'msg_1',
      model: 'claude-x',
      content: [{ type: 'text', text: 'hi' }],
      stopReason: 'end_turn',
      usage: { inputTokens: 11, outputTokens: 2, cachedInputTokens: 3 },
    });
    expect(body.usage).toEqual({ input_tokens: 8, cache_read_input_tokens: 3, output_tokens: 2 });
    const encoder = codec.createStreamEncoder({ model: 'claude-x', id: 'msg_1' });
    const out = encoder.encode({
      type: 'finish',
      stopReason: 'end_turn',
      usage: { inputTokens: 11, outputTokens: 2, cachedInputTokens: 3 },
    });
    expect(out).toContain('"usage":{"output_tokens":2,"input_tokens":8,"cache_read_input_tokens":3}');
  });
});

describe('Anthropic codec: stream encoder', () => {
  it('writes the full Messages event sequence with block indexes', () => {
    const enc = codec.createStreamEncoder({ model: 'claude-x', id: 'msg_r' });
    const out = [
      enc.encode({ type: 'start', inputTokens: 9 }),
      enc.encode({ type: 'text', text: 'Hi' }),
      enc.encode({ type: 'text', text: '!' }),
      enc.encode({ type: 'tool_call_start', index: 0, id: 'toolu_1', name: 'f' }),
      enc.encode({ type: 'tool_call_delta', index: 0, arguments: '{"a":' }),
      enc.encode({ type: 'tool_call_delta', index: 0, arguments: '1}' }),
      enc.encode({ type: 'finish', stopReason: 'tool_use', usage: { inputTokens: 9, outputTokens: 4 } }),
    ].join('');
    const events = out
      .trim()
      .split('\n\n')
      .map((block) => {
        const [eventLine, dataLine] = block.split('\n');
        const data = JSON.parse((dataLine ?? '').slice('data: '.length)) as { type: string };
        expect(eventLine).toBe(`event: ${data.type}`);
        return data;
      });
    expect(events).toEqual([
      {
        type: 'message_start',
        message: {
          id: 'msg_r',
          type: 'message',
          role: 'assistant',
          model: 'claude-x',
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: 9, output_tokens: 0 },
        },
      },
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: '!' } },
      { type: 'content_block_stop', index: 0 },
      {
        type: 'content_block_start',
        index: 1,
        content_block: { type: 'tool_use', id: 'toolu_1', name: 'f', input: {} },
      },
      { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"a":' } },
      { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '1}' } },
      { type: 'content_block_stop', index: 1 },
      {
        type: 'message_delta',
        delta: { stop_reason: 'tool_use', stop_sequence: null },
        usage: { output_tokens: 4, input_tokens: 9 },
      },
      { type: 'message_stop' },
    ]);
  });

  it('encodes a mid-stream error as event: error', () => {
    expect(codec.encodeError({ status: 529, message: 'Overloaded', code: 'overloaded' })).toBe(
      'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
    );
  });
});

describe('Anthropic codec: errors and models', () => {
  it('reads an Anthropic error body and keeps the status', () => {
    const body = '{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}';
    expect(codec.decodeError(401, body)).toEqual({
      status: 401,
      message: 'invalid x-api-key',
      code: 'invalid_api_key',
    });
  });

  it('lists models in the /v1/models shape', () => {
    expect(
      codec.encodeModelList([
        { id: 'a', ownedBy: 'x' },
        { id: 'b', ownedBy: 'x' },
      ]),
    ).toEqual({
      data: [
        { type: 'model', id: 'a', display_name: 'a', created_at: '2025-01-02T00:00:00.000Z' },
        { type: 'model', id: 'b', display_name: 'b', created_at: '2025-01-02T00:00:00.000Z' },
      ],
      has_more: false,
      first_id: 'a',
      last_id: 'b',
    });
  });
});

describe('Anthropic codec: stream decoder', () => {
  // `ping`, a block's stop and `message_stop`, as Anthropic writes them, are read without the parser: what
  // they decode to is the same as for the same events spelt otherwise (which go through the parser).
  const stream = (spell: (type: string, index?: number) => string) => [
    {
      event: 'message_start',
      data: JSON.stringify({
        type: 'message_start',
        message: { id: 'msg_1', model: 'claude-x', usage: { input_tokens: 7, output_tokens: 1 } },
      }),
    },
    {
      event: 'content_block_start',
      data: '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    },
    { event: 'ping', data: spell('ping') },
    {
      event: 'content_block_delta',
      data: '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}',
    },
    { event: 'content_block_stop', data: spell('content_block_stop', 0) },
    {
      event: 'content_block_start',
      data: '{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}}',
    },
    {
      event: 'content_block_delta',
      data: '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{}"}}',
    },
    { event: 'content_block_stop', data: spell('content_block_stop', 1) },
    {
      event: 'message_delta',
      data: '{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}',
    },
    { event: 'message_stop', data: spell('message_stop') },
  ];
  const decode = (messages: Array<{ event: string; data: string }>) => {
    const decoder = codec.createStreamDecoder();
    return [...messages.flatMap((m) => decoder.push(m)), ...decoder.end()];
  };

  it('decodes the events that carry only their type as it decodes them parsed', () => {
    const asWritten = (type: string, index?: number) =>
      index === undefined ? `{"type":"${type}"}` : `{"type":"${type}","index":${index}}`;
    const spaced = (type: string, index?: number) =>
      index === undefined ? `{ "type": "${type}" }` : `{ "index": ${index}, "type": "${type}" }`;
    const events = decode(stream(asWritten));
    expect(events).toEqual(decode(stream(spaced)));
    expect(events).toEqual([
      { type: 'start', id: 'msg_1', model: 'claude-x', inputTokens: 7 },
      { type: 'text', text: 'hi' },
      { type: 'tool_call_start', index: 0, id: 't1', name: 'f' },
      { type: 'tool_call_delta', index: 0, arguments: '{}' },
      {
        type: 'finish',
        stopReason: 'tool_use',
        stopSequence: undefined,
        usage: { inputTokens: 7, outputTokens: 9 },
      },
    ]);
  });

  it('gives a tool call that streams no input the arguments {} when its block stops', () => {
    const asWritten = (type: string, index?: number) =>
      index === undefined ? `{"type":"${type}"}` : `{"type":"${type}","index":${index}}`;
    // No input_json_delta at all, or only an empty one: both are how a call without arguments streams.
    const none = stream(asWritten).filter((m) => !m.data.includes('input_json_delta'));
    const empty = stream(asWritten).map((m) =>
      m.data.includes('input_json_delta') ? { ...m, data: m.data.replace('"{}"', '""') } : m,
    );
    for (const messages of [none, empty]) {
      const events = decode(messages);
      expect(events.filter((e) => e.type === 'tool_call_delta')).toEqual([
        { type: 'tool_call_delta', index: 0, arguments: '{}' },
      ]);
      // Before the finish, where the block stopped.
      expect(events.findIndex((e) => e.type === 'tool_call_delta')).toBe(3);
    }
    // A stream that never stopped the block still gives the call its arguments before the finish.
    const unstopped = none.filter((m) => m.data !== asWritten('content_block_stop', 1));
    expect(decode(unstopped).slice(-2)).toEqual([
      { type: 'tool_call_delta', index: 0, arguments: '{}' },
      expect.objectContaining({ type: 'finish' }),
    ]);
  });

  it('finishes once: a second message_stop, or the end, adds nothing', () => {
    const messages = stream((type, index) =>
      index === undefined ? `{"type":"${type}"}` : `{"type":"${type}","index":${index}}`,
    );
    const decoder = codec.createStreamDecoder();
    const events = messages.flatMap((m) => decoder.push(m));
    expect(events.filter((e) => e.type === 'finish')).toHaveLength(1);
    expect(decoder.push({ event: 'message_stop', data: '{"type":"message_stop"}' })).toEqual([]);
    expect(decoder.end()).toEqual([]);
  });
});
