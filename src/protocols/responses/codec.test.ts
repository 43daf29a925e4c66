import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../proxy-error.js';
import type { ChatRequest, StreamEvent } from '../canonical.js';
import { createResponsesCodec, newResponseId, responsesContext, type ResponsesContext } from './codec.js';

const ctx = (body: Record<string, unknown> = {}): ResponsesContext => ({
  ...responsesContext(body, () => 1_700_000_000_000),
  responseId: 'resp_abc',
});

describe('Responses codec: requests', () => {
  const codec = createResponsesCodec();

  it('decodes every input item kind into canonical turns', () => {
    const req = codec.decodeRequest(
      {
        model: 'm',
        instructions: 'Be brief.',
        input: [
          { role: 'developer', content: 'Use tools.' },
          {
            type: 'message',
            role: 'user',
            content: [
              { type: 'input_text', text: 'Look:' },
              { type: 'input_image', image_url: 'data:image/png;base64,AAAA' },
              { type: 'input_image', image_url: 'https://x.test/a.jpg' },
            ],
          },
          { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'opaque' },
          { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Calling.' }] },
          { type: 'function_call', call_id: 'c1', name: 'weather', arguments: '{"city":"Paris"}' },
          { type: 'custom_tool_call', call_id: 'c2', name: 'apply_patch', input: '*** Begin Patch' },
          { type: 'function_call_output', call_id: 'c1', output: 'sunny' },
          { type: 'custom_tool_call_output', call_id: 'c2', output: 'Done!' },
        ],
        tools: [
          { type: 'function', name: 'weather', parameters: { type: 'object' } },
          { type: 'custom', name: 'apply_patch', description: 'Patch files' },
          { type: 'web_search' },
        ],
        include: ['reasoning.encrypted_content'],
        store: false,
        max_output_tokens: 100,
      },
      { model: 'm', stream: true },
    );
    expect(req.system).toBe('Be brief.\n\nUse tools.');
    expect(req.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Look:' },
          { type: 'image', source: 'base64', mediaType: 'image/png', data: 'AAAA' },
          { type: 'image', source: 'url', url: 'https://x.test/a.jpg' },
        ],
      },
      {
        role: 'assistant',
        content: [
          { type: 'reasoning', text: '', signature: { family: 'openai', value: 'opaque' } },
          { type: 'text', text: 'Calling.' },
          { type: 'tool_call', id: 'c1', name: 'weather', arguments: '{"city":"Paris"}' },
          { type: 'tool_call', id: 'c2', name: 'apply_patch', arguments: '{"input":"*** Begin Patch"}' },
        ],
      },
      {
        role: 'tool',
        content: [
          { type: 'tool_result', toolCallId: 'c1', content: 'sunny' },
          { type: 'tool_result', toolCallId: 'c2', content: 'Done!' },
        ],
      },
    ]);
    expect(req.tools?.map((t) => t.name)).toEqual(['weather', 'apply_patch']);
    expect(req.tools?.[1]?.parameters).toMatchObject({ required: ['input'] });
    expect(req.maxTokens).toBe(100);
    expect(req.dropped).toEqual(['include', 'tools[].web_search']);
  });

  it('decodes local_shell calls made by an earlier Responses backend into a local_shell function turn', () => {
    const action = { type: 'exec', command: ['bash', '-lc', 'ls -la'], env: {}, working_directory: '/w' };
    const req = codec.decodeRequest(
      {
        model: 'm',
        tools: [{ type: 'local_shell' }],
        input: [
          { role: 'user', content: 'List the files.' },
          { type: 'local_shell_call', id: 'lsh_1', call_id: 'call_1', status: 'completed', action },
          // The API names the call by its id; Codex answers with the call id.
          { type: 'local_shell_call_output', id: 'lsh_1', output: 'a.txt' },
          { type: 'local_shell_call', id: 'lsh_2', call_id: 'call_2', status: 'completed', action },
          { type: 'local_shell_call_output', call_id: 'call_2', output: 'b.txt' },
        ],
      },
      { model: 'm', stream: false },
    );
    const call = (id: string) => ({
      type: 'tool_call',
      id,
      name: 'local_shell',
      arguments: '{"type":"exec","command":["bash","-lc","ls -la"],"env":{},"working_directory":"/w"}',
    });
    expect(req.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'List the files.' }] },
      { role: 'assistant', content: [call('call_1')] },
      { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_1', content: 'a.txt' }] },
      { role: 'assistant', content: [call('call_2')] },
      { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_2', content: 'b.txt' }] },
    ]);
    // The tool itself is hosted: the backend cannot run it, so it is dropped with notice (README, §8.3).
    expect(req.tools).toBeUndefined();
    expect(req.dropped).toEqual(['tools[].local_shell']);
  });

  it('decodes reasoning.effort and reasoning.summary into the reasoning control (README, "Reasoning controls")', () => {
    const decode = (reasoning: unknown) =>
      codec.decodeRequest({ model: 'm', input: 'x', reasoning }, { model: 'm', stream: false });
    expect(decode({ effort: 'minimal' }).reasoning).toEqual({ mode: 'enabled', effort: 'minimal' });
    expect(decode({ effort: 'high' }).reasoning).toEqual({ mode: 'enabled', effort: 'high' });
    expect(decode({ effort: 'xhigh' }).reasoning).toEqual({ mode: 'enabled', effort: 'max' });
    const both = decode({ effort: 'low', summary: 'auto' });
    expect(both.reasoning).toEqual({ mode: 'enabled', effort: 'low', includeThoughts: true });
    expect(both.sourcePaths).toEqual({ reasoning: ['reasoning.effort', 'reasoning.summary'] });
    expect(both.dropped).toBeUndefined();
    expect(decode({ summary: 'detailed' }).reasoning).toEqual({ mode: 'adaptive', includeThoughts: true });
    // Turned off, or nothing asked: no control, the backend's default.
    for (const off of [{ effort: 'none' }, { effort: 'none', summary: 'auto' }, {}, { effort: null }]) {
      const req = decode(off);
      expect(req.reasoning).toBeUndefined();
      expect(req.sourcePaths).toBeUndefined();
    }
    expect(() => decode({ effort: 'extreme' })).toThrow(
      expect.objectContaining({ status: 400, param: 'reasoning.effort' }),
    );
    expect(() => decode({ effort: 'low', budget: 5 })).toThrow(
      expect.objectContaining({ status: 400, param: 'reasoning.budget' }),
    );
  });

  it('encodes the reasoning control as reasoning.effort for a Responses backend, nothing without one', () => {
    const base = {
      model: 'm',
      messages: [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'hi' }] }],
      stream: false,
    };
    expect(codec.encodeRequest({ ...base, reasoning: { mode: 'enabled', effort: 'low' } }).reasoning).toEqual(
      {
        effort: 'low',
      },
    );
    expect(codec.encodeRequest({ ...base, reasoning: { mode: 'enabled', effort: 'max' } }).reasoning).toEqual(
      {
        effort: 'xhigh',
      },
    );
    // A budget (Anthropic, Gemini) maps to the first level that covers it; thoughts asked for: a summary.
    expect(
      codec.encodeRequest({
        ...base,
        reasoning: { mode: 'enabled', budgetTokens: 2048, includeThoughts: true },
      }).reasoning,
    ).toEqual({ effort: 'low', summary: 'auto' });
    expect(codec.encodeRequest({ ...base, reasoning: { mode: 'adaptive' } }).reasoning).toEqual({
      effort: 'medium',
    });
    expect('reasoning' in codec.encodeRequest(base)).toBe(false);
  });

  it('refuses a tool_choice that forces a hosted tool, naming tool_choice', () => {
    const decode = () =>
      codec.decodeRequest(
        { model: 'm', input: 'x', tools: [{ type: 'web_search' }], tool_choice: { type: 'web_search' } },
        { model: 'm', stream: false },
      );
    expect(decode).toThrow(ProxyError);
    expect(decode).toThrow(expect.objectContaining({ status: 400, param: 'tool_choice' }));
  });

  it('refuses an item_reference left unresolved (no item the proxy kept), naming its id', () => {
    const decode = () =>
      codec.decodeRequest(
        {
          model: 'm',
          input: [
            { role: 'user', content: 'hi' },
            { type: 'item_reference', id: 'msg_backend' },
          ],
        },
        { model: 'm', stream: false },
      );
    expect(decode).toThrow(expect.objectContaining({ status: 400, param: 'input[1].id' }));
    expect(decode).toThrow(/no item of a response this proxy kept for this key/);
  });

  it('encodes canonical requests for a Responses-only backend, and refuses what it has no form for', () => {
    const body = codec.encodeRequest({
      model: 'm',
      system: 'S',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'hi' }] },
        { role: 'assistant', content: [{ type: 'tool_call', id: 'c1', name: 'f', arguments: '{}' }] },
        { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'c1', content: 'ok' }] },
      ],
      responseFormat: { type: 'json' },
      stream: true,
    });
    expect(body).toEqual({
      model: 'm',
      instructions: 'S',
      input: [
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi' }] },
        { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
        { type: 'function_call_output', call_id: 'c1', output: 'ok' },
      ],
      text: { format: { type: 'json_object' } },
      store: false,
      stream: true,
    });
    expect(() => codec.encodeRequest({ model: 'm', messages: [], stop: ['x'], stream: false })).toThrow(
      expect.objectContaining({ param: 'stop' }),
    );
  });

  it('drops top_k with notice, naming the client field it came from (as to OpenAI chat)', () => {
    const req: ChatRequest = {
      model: 'm',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      topK: 5,
      sourcePaths: { topK: ['top_k'] },
      stream: false,
    };
    expect(codec.encodeRequest(req)).not.toHaveProperty('top_k');
    expect(req.dropped).toEqual(['top_k']);
  });
});

describe('Responses codec: answers', () => {
  const body = { tools: [{ type: 'custom', name: 'apply_patch' }] };

  it('answers a freeform tool call as a custom_tool_call item', () => {
    const codec = createResponsesCodec({ context: ctx(body) });
    const res = codec.encodeResponse({
      id: 'x',
      model: 'm',
      content: [
        { type: 'text', text: 'Patching.' },
        { type: 'tool_call', id: 'c9', name: 'apply_patch', arguments: '{"input":"*** Begin Patch"}' },
      ],
      stopReason: 'tool_use',
      usage: { inputTokens: 3, outputTokens: 4 },
    });
    expect(res).toMatchObject({
      id: 'resp_abc',
      object: 'response',
      status: 'completed',
      output: [
        { id: 'msg_abc_0', type: 'message', content: [{ type: 'output_text', text: 'Patching.' }] },
        { id: 'ctc_abc_1', type: 'custom_tool_call', call_id: 'c9', input: '*** Begin Patch' },
      ],
      usage: { input_tokens: 3, output_tokens: 4, total_tokens: 7 },
    });
  });

  it('streams numbered typed events that end with the same response', () => {
    let told: unknown;
    const context = { ...ctx(body), onResponse: (r: unknown) => (told = r) };
    const encoder = createResponsesCodec({ context }).createStreamEncoder({ model: 'm', id: 'r' });
    const events: StreamEvent[] = [
      { type: 'start', inputTokens: 3 },
      { type: 'text', text: 'Pat' },
      { type: 'text', text: 'ching.' },
      { type: 'tool_call_start', index: 0, id: 'c9', name: 'apply_patch' },
      { type: 'tool_call_delta', index: 0, arguments: '{"input":"*** Begin' },
      { type: 'tool_call_delta', index: 0, arguments: ' Patch"}' },
      { type: 'finish', stopReason: 'tool_use', usage: { inputTokens: 3, outputTokens: 4 } },
    ];
    const sse = events.map((e) => encoder.encode(e)).join('');
    const data = sse
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as { type: string; sequence_number: number; response?: unknown });
    expect(data.map((d) => d.sequence_number)).toEqual(data.map((_, i) => i));
    expect(data.map((d) => d.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.custom_tool_call_input.delta',
      'response.custom_tool_call_input.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const whole = createResponsesCodec({ context: ctx(body) }).encodeResponse({
      id: 'x',
      model: 'm',
      content: [
        { type: 'text', text: 'Patching.' },
        { type: 'tool_call', id: 'c9', name: 'apply_patch', arguments: '{"input":"*** Begin Patch"}' },
      ],
      stopReason: 'tool_use',
      usage: { inputTokens: 3, outputTokens: 4 },
    });
    expect(data.at(-1)?.response).toEqual(whole);
    expect(told).toEqual(whole);
  });

  it('writes each event as the JSON of {type, sequence_number, ...payload}, text escaped', () => {
    const encoder = createResponsesCodec({ context: ctx(body) }).createStreamEncoder({ model: 'm', id: 'r' });
    const events: StreamEvent[] = [
      { type: 'reasoning', text: 'th"ink' },
      { type: 'text', text: 'quote " backslash \\ newline \n tab \t unicode é 🙂 \u2028' },
      { type: 'text', text: '' },
      { type: 'tool_call_start', index: 0, id: 'c"1', name: 'shell' },
      { type: 'tool_call_delta', index: 0, arguments: '{"cmd":"ls \\"}' },
      { type: 'finish', stopReason: 'tool_use', usage: { inputTokens: 1, outputTokens: 2 } },
    ];
    const sse = events.map((e) => encoder.encode(e)).join('');
    const blocks = sse.split('\n\n').filter((b) => b !== '');
    expect(blocks.length).toBeGreaterThan(10);
    blocks.forEach((block, i) => {
      const [eventLine, dataLine, ...more] = block.split('\n');
      expect(more).toEqual([]);
      const text = (dataLine ?? '').slice('data: '.length);
      const parsed = JSON.parse(text) as Record<string, unknown>;
      // The text is exactly what JSON.stringify writes for that object, in that order.
      expect(JSON.stringify(parsed)).toBe(text);
      expect(Object.keys(parsed).slice(0, 2)).toEqual(['type', 'sequence_number']);
      expect(parsed.sequence_number).toBe(i);
      expect(eventLine).toBe(`event: ${String(parsed.type)}`);
    });
    const deltas = blocks
      .map((b) => JSON.parse(b.split('\n')[1]!.slice(6)) as Record<string, unknown>)
      .filter((d) => d.type === 'response.output_text.delta');
    expect(deltas.map((d) => d.delta)).toEqual([events[1]!.type === 'text' ? events[1]!.text : '']);
  });

  it('ends a failed stream with error then response.failed, never response.completed', () => {
    const encoder = createResponsesCodec({ context: ctx() }).createStreamEncoder({ model: 'm', id: 'r' });
    const sse =
      encoder.encode({ type: 'text', text: 'Hi' }) +
      encoder.encode({ type: 'error', error: { status: 502, message: 'Backend failed', code: 'upstream' } }) +
      encoder.encode({ type: 'finish', stopReason: 'end_turn' });
    const types = [...sse.matchAll(/^event: (.+)$/gm)].map((m) => m[1]);
    expect(types.slice(-2)).toEqual(['error', 'response.failed']);
    expect(types).not.toContain('response.completed');
    // The message it cut is incomplete, not completed.
    const failed = JSON.parse(sse.trimEnd().split('\n').at(-1)!.slice(6)) as {
      response: { status: string; output: Array<{ type: string; status: string }> };
    };
    expect(failed.response.status).toBe('failed');
    expect(failed.response.output).toMatchObject([{ type: 'message', status: 'incomplete' }]);
  });
});

describe("Responses codec: Codex's tool namespaces", () => {
  const body = {
    input: [
      {
        type: 'additional_tools',
        role: 'developer',
        tools: [
          { type: 'namespace', name: 'functions', tools: [{ type: 'custom', name: 'exec' }] },
          { type: 'namespace', name: 'clock', tools: [{ type: 'function', name: 'sleep', parameters: {} }] },
        ],
      },
      { type: 'message', role: 'user', content: 'wait a bit' },
      { type: 'function_call', call_id: 'c1', namespace: 'clock', name: 'sleep', arguments: '{"ms":5}' },
      { type: 'function_call_output', call_id: 'c1', output: 'slept' },
    ],
  };

  it('gives a translated backend the flat tools, and history calls by their flat names', () => {
    const req = createResponsesCodec().decodeRequest(body, { model: 'm', stream: false });
    expect(req.tools?.map((t) => t.name)).toEqual(['exec', 'clock__sleep']);
    expect(req.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'wait a bit' }] },
      {
        role: 'assistant',
        content: [{ type: 'tool_call', id: 'c1', name: 'clock__sleep', arguments: '{"ms":5}' }],
      },
      { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'c1', content: 'slept' }] },
    ]);
  });

  it('refuses a tool that is no object with a 400, and builds its context without failing', () => {
    const bad = { model: 'm', input: 'hi', tools: [null] };
    expect(() => responsesContext(bad)).not.toThrow();
    let error: unknown;
    try {
      createResponsesCodec().decodeRequest(bad, { model: 'm', stream: false });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProxyError);
    expect((error as ProxyError).status).toBe(400);
  });

  it('answers a call of a namespaced tool with its name and namespace, whole and streamed', () => {
    const calls = [
      { type: 'tool_call' as const, id: 'c2', name: 'clock__sleep', arguments: '{"ms":5}' },
      { type: 'tool_call' as const, id: 'c3', name: 'exec', arguments: '{"input":"text(1)"}' },
    ];
    const res = createResponsesCodec({ context: ctx(body) }).encodeResponse({
      id: 'x',
      model: 'm',
      content: calls,
      stopReason: 'tool_use',
      usage: { inputTokens: 1, outputTokens: 1 },
    });
    const expected = [
      { type: 'function_call', call_id: 'c2', name: 'sleep', namespace: 'clock', arguments: '{"ms":5}' },
      { type: 'custom_tool_call', call_id: 'c3', name: 'exec', input: 'text(1)' },
    ];
    expect(res.output).toMatchObject(expected);
    expect((res.output as Array<Record<string, unknown>>)[1]).not.toHaveProperty('namespace');

    const encoder = createResponsesCodec({ context: ctx(body) }).createStreamEncoder({ model: 'm', id: 'r' });
    const sse = [
      { type: 'tool_call_start', index: 0, id: 'c2', name: 'clock__sleep' },
      { type: 'tool_call_delta', index: 0, arguments: '{"ms":5}' },
      { type: 'finish', stopReason: 'tool_use' },
    ]
      .map((e) => encoder.encode(e as StreamEvent))
      .join('');
    const added = sse
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as { type: string; item?: unknown })
      .find((d) => d.type === 'response.output_item.added');
    expect(added?.item).toMatchObject({ type: 'function_call', name: 'sleep', namespace: 'clock' });
  });
});

describe('newResponseId', () => {
  it("is `resp_` and a random UUID's 32 hex digits, a new one each time", () => {
    const ids = Array.from({ length: 200 }, newResponseId);
    for (const id of ids) expect(id).toMatch(/^resp_[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
