import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../proxy-error.js';
import type { ChatRequest, ChatResponse } from '../canonical.js';
import { createOpenAICodec } from './codec.js';

const codec = createOpenAICodec({ now: () => 1_700_000_000_000 });
const ctx = { model: 'gpt-x', stream: false };
const PNG = 'iVBORw0KGgo=';

const wireRequest = {
  model: 'openai:gpt-x',
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'developer', content: [{ type: 'text', text: 'Use metric.' }] },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'What is here?' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}`, detail: 'auto' } },
        { type: 'image_url', image_url: { url: 'https://example.com/cat.webp' } },
      ],
    },
    {
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
      ],
    },
    { role: 'tool', tool_call_id: 'call_1', content: '21C' },
  ],
  temperature: 0.5,
  top_p: 0.9,
  max_completion_tokens: 100,
  stop: 'END',
  tools: [
    {
      type: 'function',
      function: { name: 'weather', description: 'Weather', parameters: { type: 'object' } },
    },
  ],
  tool_choice: { type: 'function', function: { name: 'weather' } },
  stream_options: { include_usage: true },
  n: 1,
};

const canonical: ChatRequest = {
  model: 'gpt-x',
  system: 'Be brief.\n\nUse metric.',
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'What is here?' },
        { type: 'image', source: 'base64', mediaType: 'image/png', data: PNG },
        { type: 'image', source: 'url', url: 'https://example.com/cat.webp' },
      ],
    },
    {
      role: 'assistant',
      content: [{ type: 'tool_call', id: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' }],
    },
    { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_1', content: '21C' }] },
  ],
  temperature: 0.5,
  topP: 0.9,
  maxTokens: 100,
  stop: ['END'],
  tools: [{ name: 'weather', description: 'Weather', parameters: { type: 'object' } }],
  toolChoice: { type: 'tool', name: 'weather' },
  stream: false,
};

function strip<T extends object>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}

describe('OpenAI codec: requests', () => {
  it('decodes system/developer prompts, images, tool calls, tool results and sampling', () => {
    expect(strip(codec.decodeRequest(wireRequest, ctx))).toEqual(canonical);
  });

  it('encodes canonical into the chat completions wire format', () => {
    expect(codec.encodeRequest({ ...canonical, stream: true })).toEqual({
      model: 'gpt-x',
      messages: [
        { role: 'system', content: 'Be brief.\n\nUse metric.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is here?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
            { type: 'image_url', image_url: { url: 'https://example.com/cat.webp' } },
          ],
        },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '21C' },
      ],
      temperature: 0.5,
      top_p: 0.9,
      max_completion_tokens: 100,
      stop: ['END'],
      tools: [
        {
          type: 'function',
          function: { name: 'weather', description: 'Weather', parameters: { type: 'object' } },
        },
      ],
      tool_choice: { type: 'function', function: { name: 'weather' } },
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it.each([
    [{ n: 2 }, 'n'],
    [{ response_format: { type: 'grammar' } }, 'response_format.type'],
    [{ reasoning_effort: 'extreme' }, 'reasoning_effort'],
    [{ verbosity: 'low' }, 'verbosity'],
    [{ logit_bias: { 50256: -100 } }, 'logit_bias'],
    [{ functions: [] }, 'functions'],
    [
      { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] },
      'messages[0].content[0].type',
    ],
    [{ messages: [{ role: 'function', name: 'f', content: 'x' }] }, 'messages[0].role'],
    [{ tools: [{ type: 'custom', custom: { name: 'x' } }] }, 'tools[0].type'],
  ])('rejects %j with a 400 naming %s', (extra, param) => {
    const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }], ...extra };
    let caught: unknown;
    try {
      codec.decodeRequest(body, ctx);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ProxyError);
    expect(caught).toMatchObject({ status: 400, param });
    expect((caught as Error).message).toContain(param);
  });

  it('drops top_k, which OpenAI cannot express, naming the client field it came from', () => {
    const req: ChatRequest = { ...canonical, topK: 5, sourcePaths: { topK: ['generationConfig.topK'] } };
    expect(codec.encodeRequest(req)).not.toHaveProperty('top_k');
    expect(req.dropped).toEqual(['generationConfig.topK']);
  });

  it('marks failed tool results so the model still learns they failed', () => {
    const wire = codec.encodeRequest({
      model: 'm',
      stream: false,
      messages: [
        { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'c', content: 'boom', isError: true }] },
      ],
    });
    expect(wire.messages).toEqual([{ role: 'tool', tool_call_id: 'c', content: 'Error: boom' }]);
  });

  it('keeps the texts of one turn apart, a blank line between them, in a plain string', () => {
    const wire = codec.encodeRequest({
      model: 'm',
      stream: false,
      messages: [
        // Two user messages in a row, and two assistant ones, as the canonical model holds them: one turn each.
        {
          role: 'user',
          content: [
            { type: 'text', text: 'hello' },
            { type: 'text', text: 'next' },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'One.' },
            { type: 'text', text: 'Two.' },
            { type: 'tool_call', id: 'c', name: 'f', arguments: '{}' },
          ],
        },
        { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'c', content: 'ok' }] },
        { role: 'assistant', content: [{ type: 'text', text: 'Done.' }] },
        { role: 'user', content: [{ type: 'text', text: 'thanks' }] },
      ],
    });
    expect(wire.messages).toEqual([
      { role: 'user', content: 'hello\n\nnext' },
      {
        role: 'assistant',
        content: 'One.\n\nTwo.',
        tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }],
      },
      { role: 'tool', tool_call_id: 'c', content: 'ok' },
      { role: 'assistant', content: 'Done.' },
      { role: 'user', content: 'thanks' },
    ]);
  });
});

describe('OpenAI codec: responses', () => {
  const wire = {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'gpt-x',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: 'Checking.',
          refusal: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
          ],
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
    ],
    usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
  };
  const response: ChatResponse = {
    id: 'chatcmpl-1',
    model: 'gpt-x',
    content: [
      { type: 'text', text: 'Checking.' },
      { type: 'tool_call', id: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' },
    ],
    stopReason: 'tool_use',
    usage: { inputTokens: 10, outputTokens: 5 },
  };

  it('decodes and encodes a completion both ways', () => {
    expect(strip(codec.decodeResponse(wire))).toEqual(response);
    expect(codec.encodeResponse(response)).toEqual(wire);
  });

  it.each([
    ['stop', 'end_turn'],
    ['length', 'max_tokens'],
    ['content_filter', 'content_filter'],
  ])('maps finish_reason %s to %s', (finish, stop) => {
    const body = { ...wire, choices: [{ ...wire.choices[0], finish_reason: finish }] };
    expect(codec.decodeResponse(body).stopReason).toBe(stop);
  });
});

describe('OpenAI codec: stream decoder', () => {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    data: JSON.stringify({
      id: 'chatcmpl-s',
      object: 'chat.completion.chunk',
      model: 'gpt-x',
      choices: [{ index: 0, delta, finish_reason: finish }],
    }),
  });
  const call = (index: number, id: string | undefined, name: string | undefined, args: string) => ({
    tool_calls: [
      {
        index,
        ...(id ? { id, type: 'function' } : {}),
        function: { ...(name ? { name } : {}), arguments: args },
      },
    ],
  });
  const decode = (...deltas: Array<Record<string, unknown>>) => {
    const dec = codec.createStreamDecoder();
    return [
      ...deltas.flatMap((d) => dec.push(chunk(d))),
      ...dec.push(chunk({}, 'tool_calls')),
      ...dec.push({ data: '[DONE]' }),
    ];
  };

  it('starts a new tool call when a new id arrives at a wire index already used', () => {
    expect(
      decode(
        call(0, 'call_city', 'weather', ''),
        call(0, undefined, undefined, '{"city":'),
        call(0, undefined, undefined, '"Paris"}'),
        call(0, 'call_tz', 'clock', '{"tz":"CET"}'),
      ),
    ).toEqual([
      { type: 'start', id: 'chatcmpl-s', model: 'gpt-x' },
      { type: 'tool_call_start', index: 0, id: 'call_city', name: 'weather' },
      { type: 'tool_call_delta', index: 0, arguments: '{"city":' },
      { type: 'tool_call_delta', index: 0, arguments: '"Paris"}' },
      { type: 'tool_call_start', index: 1, id: 'call_tz', name: 'clock' },
      { type: 'tool_call_delta', index: 1, arguments: '{"tz":"CET"}' },
      { type: 'finish', stopReason: 'tool_use', usage: undefined },
    ]);
  });

  it('keeps one call when its id is repeated on every delta, and keeps distinct wire indexes apart', () => {
    expect(
      decode(
        call(0, 'call_a', 'weather', '{"city":'),
        call(1, 'call_b', 'clock', '{"tz":'),
        call(0, 'call_a', undefined, '"Oslo"}'),
        call(1, undefined, undefined, '"UTC"}'),
      ),
    ).toEqual([
      { type: 'start', id: 'chatcmpl-s', model: 'gpt-x' },
      { type: 'tool_call_start', index: 0, id: 'call_a', name: 'weather' },
      { type: 'tool_call_delta', index: 0, arguments: '{"city":' },
      { type: 'tool_call_start', index: 1, id: 'call_b', name: 'clock' },
      { type: 'tool_call_delta', index: 1, arguments: '{"tz":' },
      { type: 'tool_call_delta', index: 0, arguments: '"Oslo"}' },
      { type: 'tool_call_delta', index: 1, arguments: '"UTC"}' },
      { type: 'finish', stopReason: 'tool_use', usage: undefined },
    ]);
  });
});

describe('OpenAI codec: stream encoder', () => {
  it('writes chat.completion.chunk events ending in [DONE], the usage chunk when asked', () => {
    const enc = codec.createStreamEncoder({ model: 'gpt-x', id: 'chatcmpl-r', includeUsage: true });
    const out = [
      enc.encode({ type: 'start' }),
      enc.encode({ type: 'text', text: 'Hi' }),
      enc.encode({ type: 'tool_call_start', index: 0, id: 'call_1', name: 'f' }),
      enc.encode({ type: 'tool_call_delta', index: 0, arguments: '{}' }),
      enc.encode({ type: 'finish', stopReason: 'tool_use', usage: { inputTokens: 1, outputTokens: 2 } }),
      enc.encode({ type: 'text', text: 'ignored after finish' }),
    ].join('');
    const events = out.trim().split('\n\n');
    const chunks = events
      .slice(0, -1)
      .map((e) => JSON.parse(e.slice('data: '.length)) as Record<string, unknown>);
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(chunks.map((c) => (c.choices as Array<{ delta: unknown }>)[0]?.delta ?? null)).toEqual([
      { role: 'assistant', content: '' },
      { content: 'Hi' },
      { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '{}' } }] },
      {},
      null,
    ]);
    expect(chunks[4]).toMatchObject({
      id: 'chatcmpl-r',
      object: 'chat.completion.chunk',
      created: 1_700_000_000,
      model: 'gpt-x',
    });
    expect(chunks[4]?.choices).toEqual([
      { index: 0, delta: {}, logprobs: null, finish_reason: 'tool_calls' },
    ]);
    expect(chunks[5]).toMatchObject({
      choices: [],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    });
    expect(enc.done).toBe(true);
  });

  it('writes no usage chunk when the client did not ask (stream_options.include_usage)', () => {
    const enc = codec.createStreamEncoder({ model: 'gpt-x', id: 'chatcmpl-r' });
    const out =
      enc.encode({ type: 'text', text: 'Hi' }) +
      enc.encode({ type: 'finish', stopReason: 'end_turn', usage: { inputTokens: 1, outputTokens: 2 } });
    expect(out).not.toContain('"usage"');
    expect(out).not.toContain('"choices":[]');
    expect(out.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('encodes a mid-stream error as an OpenAI error chunk', () => {
    expect(
      codec.encodeError({
        status: 502,
        message: 'Backend stream was interrupted',
        code: 'upstream_interrupted',
      }),
    ).toBe(
      'data: {"error":{"message":"Backend stream was interrupted","type":"server_error","code":"upstream_interrupted","param":null}}\n\n',
    );
  });
});

describe('OpenAI codec: errors and models', () => {
  it('reads an OpenAI error body and keeps the status', () => {
    const body = JSON.stringify({
      error: { message: 'Bad key', type: 'invalid_request_error', code: 'invalid_api_key', param: null },
    });
    expect(codec.decodeError(401, body)).toEqual({
      status: 401,
      message: 'Bad key',
      code: 'invalid_api_key',
      param: null,
    });
    expect(codec.decodeError(503, '<html>down</html>')).toEqual({
      status: 503,
      message: '<html>down</html>',
      code: 'server_error',
    });
  });

  it('lists models in the /v1/models shape', () => {
    expect(codec.encodeModelList([{ id: 'a', ownedBy: 'anthropic' }])).toEqual({
      object: 'list',
      data: [{ id: 'a', object: 'model', created: 1_700_000_000, owned_by: 'anthropic' }],
    });
  });
});
