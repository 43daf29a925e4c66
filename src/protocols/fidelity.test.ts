/**
 * Translation fidelity (README, "Fields that do not translate"): hints dropped with notice, structured output
 * and reasoning controls translated between every pair of protocols, the rest still a 400 naming the field.
 */
import { describe, expect, it } from 'vitest';
import { ANSWER_TOOL } from './anthropic/codec.js';
import type { ChatRequest, StreamEvent } from './canonical.js';
import { codecs } from './registry.js';
import type { Protocol } from './types.js';

const ctx = { model: 'm', stream: false };
const decode = (from: Protocol, body: unknown): ChatRequest => codecs[from].decodeRequest(body, ctx);
const translate = (from: Protocol, to: Protocol, body: unknown) => {
  const req = decode(from, body);
  return { req, wire: codecs[to].encodeRequest(req) };
};

/** The shapes Claude Code 2.1 sends by default. */
const claudeCode = {
  model: 'claude-sonnet-4-5',
  max_tokens: 32000,
  system: [
    { type: 'text', text: 'You are Claude Code.' },
    { type: 'text', text: 'Be careful.', cache_control: { type: 'ephemeral' } },
  ],
  messages: [
    { role: 'user', content: [{ type: 'text', text: 'Fix the bug', cache_control: { type: 'ephemeral' } }] },
    {
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: 'Look first.', signature: 'EqQBCkYIBhgC' },
        { type: 'text', text: 'Looking.' },
      ],
    },
    { role: 'system', content: 'The user switched to plan mode.' },
    { role: 'user', content: 'Go on' },
  ],
  tools: [{ name: 'Bash', input_schema: { type: 'object' }, cache_control: { type: 'ephemeral' } }],
  thinking: { type: 'enabled', budget_tokens: 31999 },
  output_config: { effort: 'high' },
  context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
  metadata: { user_id: 'user_abc' },
  stream: true,
};

describe("Claude Code's default request to other backends", () => {
  it('decodes: system messages join the system prompt, hints are named, reasoning is read', () => {
    const req = decode('anthropic', claudeCode);
    expect(req.system).toBe('You are Claude Code.\n\nBe careful.\n\nThe user switched to plan mode.');
    expect(req.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    // Earlier thinking is a reasoning part with its Anthropic signature (README, "Reasoning between families").
    expect(req.messages[1]?.content).toEqual([
      {
        type: 'reasoning',
        text: 'Look first.',
        signature: { family: 'anthropic', value: 'EqQBCkYIBhgC' },
      },
      { type: 'text', text: 'Looking.' },
    ]);
    expect(req.reasoning).toEqual({ mode: 'enabled', budgetTokens: 31999, effort: 'high' });
    expect(req.dropped).toEqual([
      'context_management',
      'metadata',
      'system[1].cache_control',
      'messages[0].content[0].cache_control',
      'tools[0].cache_control',
    ]);
  });

  it('reaches an OpenAI backend with reasoning_effort and max_completion_tokens', () => {
    const { wire, req } = translate('anthropic', 'openai', claudeCode);
    expect(wire).toMatchObject({ reasoning_effort: 'high', max_completion_tokens: 32000 });
    expect(wire).not.toHaveProperty('max_tokens');
    expect((wire.messages as unknown[])[0]).toEqual({
      role: 'system',
      content: 'You are Claude Code.\n\nBe careful.\n\nThe user switched to plan mode.',
    });
    expect(req.dropped).toHaveLength(5);
    // Anthropic's thinking is not OpenAI's: it does not reach the OpenAI backend.
    expect((wire.messages as Array<Record<string, unknown>>)[2]).toEqual({
      role: 'assistant',
      content: 'Looking.',
    });
  });

  it('reaches a Gemini backend with a thinking budget', () => {
    const { wire } = translate('anthropic', 'gemini', claudeCode);
    expect(wire.generationConfig).toEqual({
      maxOutputTokens: 32000,
      thinkingConfig: { thinkingBudget: 31999 },
    });
  });

  it('names output_config.effort as dropped when thinking is turned off', () => {
    const req = decode('anthropic', {
      ...claudeCode,
      thinking: { type: 'disabled' },
      context_management: undefined,
      metadata: undefined,
      messages: [{ role: 'user', content: 'hi' }],
      system: undefined,
      tools: undefined,
    });
    expect(req.reasoning).toBeUndefined();
    expect(req.dropped).toEqual(['output_config.effort']);
  });

  it('reads adaptive thinking with an effort, and adaptive alone as the model’s choice', () => {
    const base = { model: 'm', max_tokens: 5000, messages: [{ role: 'user', content: 'hi' }] };
    const adaptive = decode('anthropic', { ...base, thinking: { type: 'adaptive' } });
    expect(codecs.openai.encodeRequest(adaptive).reasoning_effort).toBe('medium');
    expect(codecs.gemini.encodeRequest(adaptive).generationConfig).toEqual({
      maxOutputTokens: 5000,
      thinkingConfig: { thinkingBudget: -1 },
    });
    const withEffort = decode('anthropic', {
      ...base,
      thinking: { type: 'adaptive' },
      output_config: { effort: 'low' },
    });
    expect(withEffort.reasoning).toEqual({ mode: 'adaptive', effort: 'low' });
    expect(withEffort.sourcePaths?.reasoning).toEqual(['thinking', 'output_config.effort']);
  });
});

describe('Gemini CLI thinkingConfig to other backends', () => {
  const body = (thinkingConfig: object) => ({
    contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
    generationConfig: { temperature: 1, thinkingConfig },
  });

  it.each([
    [{ includeThoughts: true, thinkingBudget: 8192 }, 'medium', 8192],
    [{ includeThoughts: true, thinkingLevel: 'HIGH' }, 'high', 24576],
    [{ thinkingBudget: -1 }, 'medium', 12288],
  ])('%j → OpenAI reasoning_effort %s, Anthropic budget %i', (config, effort, budget) => {
    expect(translate('gemini', 'openai', body(config)).wire.reasoning_effort).toBe(effort);
    const { wire, req } = translate('gemini', 'anthropic', body(config));
    expect(wire.thinking).toEqual({ type: 'enabled', budget_tokens: budget });
    expect(wire.max_tokens).toBe(budget + 4096);
    expect(req.dropped).toBeUndefined();
  });

  it('a budget under Anthropic’s smallest is raised to it there, minimal effort to OpenAI', () => {
    expect(translate('gemini', 'openai', body({ thinkingBudget: 512 })).wire.reasoning_effort).toBe(
      'minimal',
    );
    const { wire } = translate('gemini', 'anthropic', body({ thinkingBudget: 512 }));
    expect(wire.thinking).toEqual({ type: 'enabled', budget_tokens: 1024 });
  });

  it('turned off (budget 0) sends nothing', () => {
    const { wire } = translate('gemini', 'openai', body({ thinkingBudget: 0 }));
    expect(wire).not.toHaveProperty('reasoning_effort');
  });
});

describe('Responses reasoning to other backends, and reasoning_effort to a Responses backend', () => {
  const body = (reasoning: object) => ({ model: 'm', input: 'hi', reasoning });

  it.each([
    [{ effort: 'minimal' }, 'minimal', 1024],
    [{ effort: 'low' }, 'low', 4096],
    [{ effort: 'medium' }, 'medium', 12288],
    [{ effort: 'high' }, 'high', 24576],
  ])('%j → OpenAI reasoning_effort %s, Anthropic and Gemini budget %i', (reasoning, effort, budget) => {
    expect(translate('responses', 'openai', body(reasoning)).wire.reasoning_effort).toBe(effort);
    const anthropic = translate('responses', 'anthropic', body(reasoning));
    expect(anthropic.wire.thinking).toEqual({ type: 'enabled', budget_tokens: budget });
    expect(anthropic.req.dropped).toBeUndefined();
    const gemini = translate('responses', 'gemini', body(reasoning)).wire;
    expect(gemini.generationConfig).toEqual({ thinkingConfig: { thinkingBudget: budget } });
  });

  it('a summary asks Gemini for its thoughts; the others give theirs anyway (no notice)', () => {
    const asked = body({ effort: 'low', summary: 'auto' });
    expect(translate('responses', 'gemini', asked).wire.generationConfig).toEqual({
      thinkingConfig: { thinkingBudget: 4096, includeThoughts: true },
    });
    const openai = translate('responses', 'openai', asked);
    expect(openai.wire.reasoning_effort).toBe('low');
    expect(openai.req.dropped).toBeUndefined();
    expect(translate('responses', 'anthropic', asked).req.dropped).toBeUndefined();
  });

  it('where Anthropic refuses thinking, the notice names the client’s reasoning fields', () => {
    const { wire, req } = translate('responses', 'anthropic', {
      ...body({ effort: 'high', summary: 'auto' }),
      temperature: 0.2,
    });
    expect(wire).not.toHaveProperty('thinking');
    expect(req.dropped).toEqual(['reasoning.effort', 'reasoning.summary']);
  });

  it('effort none sends nothing', () => {
    for (const to of ['openai', 'anthropic', 'gemini'] as const) {
      const { wire, req } = translate('responses', to, body({ effort: 'none' }));
      expect(JSON.stringify(wire)).not.toMatch(/reasoning|thinking/);
      expect(req.dropped).toBeUndefined();
    }
  });

  it.each([
    ['openai', { model: 'm', messages: [{ role: 'user', content: 'hi' }], reasoning_effort: 'high' }, 'high'],
    [
      'anthropic',
      {
        model: 'm',
        max_tokens: 9000,
        messages: [{ role: 'user', content: 'hi' }],
        thinking: { type: 'enabled', budget_tokens: 5000 },
      },
      'medium',
    ],
    [
      'gemini',
      {
        contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
        generationConfig: { thinkingConfig: { thinkingLevel: 'LOW' } },
      },
      'low',
    ],
  ] as const)('%s → Responses reasoning.effort %s', (from, asked, effort) => {
    const { wire, req } = translate(from, 'responses', asked);
    expect(wire.reasoning).toEqual({ effort });
    expect(req.dropped).toBeUndefined();
  });
});

describe('reasoning to an Anthropic backend is dropped with notice where Anthropic refuses thinking', () => {
  const ask = (extra: object) => ({
    model: 'm',
    reasoning_effort: 'low',
    messages: [{ role: 'user', content: 'hi' }],
    ...extra,
  });
  it.each([
    [{ temperature: 0.2 }],
    [{ top_p: 0.5 }],
    [{ max_completion_tokens: 500 }],
    [{ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: 'required' }],
    [
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f' } }] },
          { role: 'tool', tool_call_id: 'c', content: 'ok' },
        ],
      },
    ],
  ])('%j', (extra) => {
    const { wire, req } = translate('openai', 'anthropic', ask(extra));
    expect(wire).not.toHaveProperty('thinking');
    expect(req.dropped).toEqual(['reasoning_effort']);
  });

  it('and sent as a budget inside max_tokens otherwise', () => {
    const { wire } = translate('openai', 'anthropic', ask({ max_completion_tokens: 3000, temperature: 1 }));
    expect(wire).toMatchObject({ max_tokens: 3000, thinking: { type: 'enabled', budget_tokens: 2999 } });
  });
});

describe('structured output across every pair', () => {
  const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
  const asked: Record<Protocol, object> = {
    openai: {
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      response_format: { type: 'json_schema', json_schema: { name: 'place', schema, strict: true } },
    },
    anthropic: {
      model: 'm',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'hi' }],
      output_config: { format: { type: 'json_schema', schema } },
    },
    gemini: {
      contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
      generationConfig: {
        responseMimeType: 'application/json',
        responseSchema: { type: 'OBJECT', properties: { city: { type: 'STRING' } }, required: ['city'] },
      },
    },
    responses: {
      model: 'm',
      input: 'hi',
      text: { format: { type: 'json_schema', name: 'place', schema, strict: true } },
    },
  };
  const sent: Record<Protocol, (wire: Record<string, unknown>) => unknown> = {
    openai: (w) => (w.response_format as { json_schema: { schema: unknown } }).json_schema.schema,
    responses: (w) => (w.text as { format: { schema: unknown } }).format.schema,
    anthropic: (w) => {
      expect(w.tool_choice).toEqual({ type: 'tool', name: ANSWER_TOOL });
      return (w.tools as Array<{ name: string; input_schema: unknown }>).find((t) => t.name === ANSWER_TOOL)
        ?.input_schema;
    },
    gemini: (w) => {
      const gen = w.generationConfig as Record<string, unknown>;
      expect(gen.responseMimeType).toBe('application/json');
      return gen.responseJsonSchema;
    },
  };
  const PROTOCOLS: Protocol[] = ['openai', 'anthropic', 'gemini'];
  for (const from of PROTOCOLS) {
    for (const to of PROTOCOLS.filter((p) => p !== from)) {
      it(`${from} → ${to}`, () => {
        const { wire, req } = translate(from, to, asked[from]);
        expect(sent[to](wire)).toEqual(schema);
        expect(req.dropped).toBeUndefined();
      });
    }
  }

  it('json_object without a schema', () => {
    const body = {
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      response_format: { type: 'json_object' },
    };
    expect(translate('openai', 'gemini', body).wire.generationConfig).toEqual({
      responseMimeType: 'application/json',
    });
    const anthropic = translate('openai', 'anthropic', body).wire;
    expect(anthropic.tools).toEqual([
      {
        name: ANSWER_TOOL,
        description: 'Give your final answer by calling this tool: its input is the answer.',
        input_schema: { type: 'object' },
      },
    ]);
    const gemini = {
      contents: [{ parts: [{ text: 'hi' }] }],
      generationConfig: { responseMimeType: 'application/json' },
    };
    expect(translate('gemini', 'openai', gemini).wire.response_format).toEqual({ type: 'json_object' });
  });

  it('lets the model call the client’s tools or answer, when tools are offered', () => {
    const body = {
      ...asked.openai,
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }],
    };
    const { wire } = translate('openai', 'anthropic', body);
    expect(wire.tool_choice).toEqual({ type: 'any' });
    expect((wire.tools as Array<{ name: string }>).map((t) => t.name)).toEqual(['lookup', ANSWER_TOOL]);
  });

  it('refuses a client tool that takes the answer tool’s name', () => {
    const body = {
      ...asked.openai,
      tools: [{ type: 'function', function: { name: ANSWER_TOOL } }],
    };
    expect(() => translate('openai', 'anthropic', body)).toThrow(
      expect.objectContaining({ status: 400, param: 'tools' }),
    );
  });

  it('turns the Anthropic answer tool back into text, whole and streamed', () => {
    const whole = codecs.anthropic.decodeResponse({
      id: 'msg_1',
      model: 'claude',
      content: [{ type: 'tool_use', id: 'toolu_1', name: ANSWER_TOOL, input: { city: 'Oslo' } }],
      stop_reason: 'tool_use',
      usage: { input_tokens: 3, output_tokens: 4 },
    });
    expect(whole.content).toEqual([{ type: 'text', text: '{"city":"Oslo"}' }]);
    expect(whole.stopReason).toBe('end_turn');

    const decoder = codecs.anthropic.createStreamDecoder();
    const events: StreamEvent[] = [
      { type: 'message_start', message: { id: 'msg_1', usage: { input_tokens: 3 } } },
      {
        type: 'content_block_start',
        index: 0,
        content_block: { type: 'tool_use', id: 'toolu_1', name: ANSWER_TOOL, input: {} },
      },
      {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'input_json_delta', partial_json: '{"city":' },
      },
      { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '"Oslo"}' } },
      { type: 'content_block_stop', index: 0 },
      { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 4 } },
      { type: 'message_stop' },
    ].flatMap((data) => decoder.push({ data: JSON.stringify(data) }));
    expect(events).toEqual([
      { type: 'start', id: 'msg_1', model: undefined, inputTokens: 3 },
      { type: 'text', text: '{"city":' },
      { type: 'text', text: '"Oslo"}' },
      {
        type: 'finish',
        stopReason: 'end_turn',
        stopSequence: undefined,
        usage: { inputTokens: 3, outputTokens: 4 },
      },
    ]);
  });
});

describe('hints are dropped with notice, each protocol by its table', () => {
  it('Anthropic', () => {
    const req = decode('anthropic', {
      model: 'm',
      max_tokens: 5,
      messages: [{ role: 'user', content: 'hi' }],
      context_management: {},
      cache_control: { type: 'ephemeral' },
      metadata: { user_id: 'u' },
      service_tier: 'auto',
      container: 'c',
    });
    expect(req.dropped).toEqual([
      'context_management',
      'cache_control',
      'metadata',
      'service_tier',
      'container',
    ]);
  });

  it('OpenAI', () => {
    const req = decode('openai', {
      model: 'm',
      messages: [
        { role: 'developer', content: 'Be brief.' },
        { role: 'user', content: 'hi' },
      ],
      store: true,
      prompt_cache_key: 'k',
      metadata: { a: 'b' },
      service_tier: 'flex',
      user: 'u',
      safety_identifier: 's',
      stream_options: { include_usage: true },
      parallel_tool_calls: false,
    });
    expect(req.system).toBe('Be brief.');
    expect(req.dropped).toEqual([
      'store',
      'prompt_cache_key',
      'metadata',
      'service_tier',
      'user',
      'safety_identifier',
    ]);
    // Anthropic can take parallel_tool_calls; Gemini cannot.
    expect(codecs.anthropic.encodeRequest({ ...req, dropped: undefined }).tool_choice).toBeUndefined();
    const toGemini = { ...req, dropped: undefined };
    expect(codecs.gemini.encodeRequest(toGemini)).not.toHaveProperty('toolConfig');
    expect(toGemini.dropped).toEqual(['parallel_tool_calls']);
  });

  it('Gemini, with earlier thoughts of the model', () => {
    const req = decode('gemini', {
      contents: [
        { role: 'user', parts: [{ text: 'hi' }] },
        { role: 'model', parts: [{ text: 'Hmm.', thought: true }, { text: 'Hello' }] },
        { role: 'user', parts: [{ text: 'again' }] },
      ],
      safetySettings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_NONE' }],
      labels: { team: 'a' },
      generationConfig: { topK: 40 },
    });
    expect(req.messages[1]?.content).toEqual([
      { type: 'reasoning', text: 'Hmm.', signature: { family: 'gemini', value: '' } },
      { type: 'text', text: 'Hello' },
    ]);
    const wire = codecs.openai.encodeRequest(req);
    // Gemini's thoughts mean nothing to OpenAI: left out.
    expect((wire.messages as unknown[])[1]).toEqual({ role: 'assistant', content: 'Hello' });
    expect(req.dropped).toEqual(['safetySettings', 'labels', 'generationConfig.topK']);
  });
});

describe('a tool loop from another family to Gemini 3', () => {
  /** The model turn of an OpenAI client's tool loop with two parallel calls, as sent to a Gemini model. */
  const modelTurn = (model: string) => {
    const req = codecs.openai.decodeRequest(
      {
        model,
        messages: [
          { role: 'user', content: 'Weather and time?' },
          {
            role: 'assistant',
            tool_calls: [
              { id: 'a', type: 'function', function: { name: 'weather', arguments: '{}' } },
              { id: 'b', type: 'function', function: { name: 'clock', arguments: '{}' } },
            ],
          },
          { role: 'tool', tool_call_id: 'a', content: 'rain' },
          { role: 'tool', tool_call_id: 'b', content: 'noon' },
        ],
      },
      { model, stream: false },
    );
    const contents = codecs.gemini.encodeRequest(req).contents as Array<{
      role: string;
      parts: Array<Record<string, unknown>>;
    }>;
    expect(contents[1]?.role).toBe('model');
    return contents[1]?.parts ?? [];
  };

  it('signs the first call of each step with the documented sentinel', () => {
    expect(modelTurn('gemini-3-pro-preview').map((p) => p.thoughtSignature)).toEqual([
      'skip_thought_signature_validator',
      undefined,
    ]);
  });

  it('leaves other Gemini models without one', () => {
    expect(modelTurn('gemini-2.5-flash').some((p) => 'thoughtSignature' in p)).toBe(false);
  });
});

describe('what would change the answer is still a 400 naming the field', () => {
  it.each([
    ['openai', { n: 2 }, 'n'],
    ['openai', { logit_bias: { 1: 5 } }, 'logit_bias'],
    ['openai', { logprobs: true }, 'logprobs'],
  ] as const)('%s %j', (from, extra, param) => {
    const body = { model: 'm', messages: [{ role: 'user', content: 'hi' }], ...extra };
    expect(() => decode(from, body)).toThrow(expect.objectContaining({ status: 400, param }));
  });
});
