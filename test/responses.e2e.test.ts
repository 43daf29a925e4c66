import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import type {
  Response as OpenAIResponse,
  ResponseCreateParamsNonStreaming,
} from 'openai/resources/responses/responses';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';

/**
 * The Responses API front-end (README, "Responses API") through the real CLI, with the official `openai` SDK
 * as the client, against the fake provider of every protocol: passed through to a backend that speaks
 * Responses, translated to every other one.
 */

const KEY = 'responses-proxy-key-0123456789';
const OTHER_KEY = 'responses-other-key-9876543210';
const OPENAI_KEY = 'sk-openai-provider-key-abcdefghijkl';
const ANTHROPIC_KEY = 'sk-ant-provider-key-abcdefghijkl';
const GEMINI_KEY = 'AIzaProviderKeyForGeminiTests0123456789';

let proxy: ProxyProcess;
let openaiUp: FakeProvider;
/** A second Responses server (`resp2`), whose ids never collide with the first's. */
let secondUp: FakeProvider;
let anthropicUp: FakeProvider;
let geminiUp: FakeProvider;
let dir: string;

beforeAll(async () => {
  [openaiUp, secondUp, anthropicUp, geminiUp] = await Promise.all([
    startFakeProvider({ keys: { openai: OPENAI_KEY } }),
    startFakeProvider({ keys: { openai: OPENAI_KEY }, responseIdPrefix: 'resp_second_' }),
    startFakeProvider({ keys: { anthropic: ANTHROPIC_KEY } }),
    startFakeProvider({ keys: { gemini: GEMINI_KEY } }),
  ]);
  dir = mkdtempSync(path.join(tmpdir(), 'responses-e2e-'));
  const config = path.join(dir, 'config.yaml');
  const base = openaiUp.baseUrls.openai;
  writeFileSync(
    config,
    [
      'backends:',
      // A chat-completions server: Responses requests are translated.
      `  chat:\n    type: openai\n    base_url: ${base}\n    api_key_env: OPENAI_API_KEY`,
      // The same server declared to serve the Responses API too: passed through.
      `  compat:\n    type: openai\n    base_url: ${base}\n    api_key_env: OPENAI_API_KEY\n    responses: true`,
      // A Responses-only server: chat clients reach it by translation.
      `  resp:\n    type: responses\n    base_url: ${base}\n    api_key_env: OPENAI_API_KEY`,
      // Another Responses server: what it made is read back from it, not from the default backend.
      `  resp2:\n    type: responses\n    base_url: ${secondUp.baseUrls.responses}\n    api_key_env: OPENAI_API_KEY`,
      // Routes: the first element fails, the next answers (translated, or passed through).
      'routes:',
      '  to-anthropic:\n    chain: [chat:fault-status-503, anthropic:claude-mock-1]\n    retries: 0',
      '  to-openai:\n    chain: [chat:fault-status-503, openai:gpt-4o-mini]\n    retries: 0',
      '  second-first:\n    chain: [resp2:gpt-4o-mini, openai:gpt-4o-mini]\n    retries: 0',
      '  cut-short:\n    chain: [openai:fault-reset-mid-stream]\n    retries: 0',
      '',
    ].join('\n'),
  );
  proxy = await startProxyProcess(['--config', config, '--default-backend', 'openai'], {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    API_KEYS: OTHER_KEY,
    OPENAI_API_KEY: OPENAI_KEY,
    OPENAI_API_BASE_URL: base,
    OPENROUTER_API_KEY: OPENAI_KEY,
    OPENROUTER_API_BASE_URL: base,
    ANTHROPIC_API_KEY: ANTHROPIC_KEY,
    ANTHROPIC_API_BASE_URL: anthropicUp.baseUrls.anthropic,
    GEMINI_API_KEY: GEMINI_KEY,
    GEMINI_API_BASE_URL: geminiUp.baseUrls.gemini,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await Promise.all([openaiUp, secondUp, anthropicUp, geminiUp].map((u) => u?.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const client = (key = KEY) => new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: key, maxRetries: 0 });

/** Every kind of backend: passed through (openai, compat, resp) or translated (the rest). */
const BACKENDS = [
  { model: 'openai:gpt-4o-mini', passThrough: true },
  { model: 'compat:gpt-4o-mini', passThrough: true },
  { model: 'resp:gpt-4o-mini', passThrough: true },
  { model: 'chat:gpt-4o-mini', passThrough: false },
  { model: 'openrouter:gpt-4o-mini', passThrough: false },
  { model: 'anthropic:claude-mock-1', passThrough: false },
  { model: 'gemini:gemini-mock-flash', passThrough: false },
  { model: 'mock:mock-model', passThrough: false },
] as const;

const weather = {
  type: 'function' as const,
  name: 'weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { query: { type: 'string' }, units: { type: 'string' } } },
  strict: false,
};

/** A response with what differs between two calls (ids, creation time) named the same way. */
function comparable(res: OpenAIResponse): unknown {
  const base = res.id.replace(/^resp_/, '');
  const text = JSON.stringify(res)
    .replaceAll(res.id, 'resp_ID')
    .replaceAll(`_${base}_`, '_ID_')
    .replace(/"created_at":\d+/g, '"created_at":0');
  // What the SDK's stream helper adds when it parses the final response.
  return JSON.parse(text, (key, value: unknown) =>
    key === 'parsed' || key === 'output_parsed' ? undefined : value,
  );
}

describe('headers on the pass-through', () => {
  it("forwards the client's OpenAI-Beta to a Responses backend, and never its key", async () => {
    await client()
      .responses.create(
        { model: 'resp:gpt-4o-mini', input: 'hi', store: false },
        { headers: { 'OpenAI-Beta': 'responses=v1' } },
      )
      .withResponse();
    const headers = openaiUp.requests.at(-1)?.headers;
    expect(headers?.['openai-beta']).toBe('responses=v1');
    expect(JSON.stringify(headers)).not.toContain(KEY);
  });
});

async function streamed(params: Parameters<OpenAI['responses']['stream']>[0], key = KEY) {
  const stream = client(key).responses.stream(params);
  const types: string[] = [];
  const sequence: number[] = [];
  stream.on('event', (event) => {
    types.push(event.type);
    sequence.push(event.sequence_number);
  });
  const final = await stream.finalResponse();
  return { final, types, sequence };
}

describe.each(BACKENDS)('POST /v1/responses → $model', ({ model }) => {
  const echo = model.startsWith('mock:') ? 'hello there' : 'echo: hello there';

  it('answers create() and assembles the same Response from stream()', async () => {
    const params = { model, input: 'hello there', store: false };
    const whole = await client().responses.create(params);
    expect(whole.object).toBe('response');
    expect(whole.status).toBe('completed');
    expect(whole.output_text).toBe(echo);
    expect(whole.id).toMatch(/^resp_/);
    expect(whole.usage?.total_tokens).toBe(
      (whole.usage?.input_tokens ?? 0) + (whole.usage?.output_tokens ?? 0),
    );
    const { final, types, sequence } = await streamed(params);
    expect(comparable(final)).toEqual(comparable(whole));
    expect(sequence).toEqual(sequence.map((_, i) => i));
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');
    expect(types).toContain('response.output_text.delta');
    expect(types).toContain('response.output_item.done');
  });
});

describe("every streamed event is numbered, the proxy's own error events too", () => {
  /** The `data:` of each event of a raw stream, parsed. */
  async function events(model: string): Promise<Array<{ type: string; sequence_number: number }>> {
    const res = await fetch(`${proxy.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, input: 'numbered', stream: true, store: false }),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    return text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)) as { type: string; sequence_number: number });
  }

  it.each([
    // Passed through: the backend's connection reset mid-way, its stream ended short, or (routed) reset.
    ['openai:fault-reset-mid-stream', 'upstream_stream_error'],
    ['openai:fault-truncated-stream', 'upstream_incomplete'],
    ['cut-short', 'upstream_stream_error'],
  ])('%s ends in an error event numbered after the last one, then response.failed', async (model, code) => {
    const seen = await events(model);
    expect(seen.length).toBeGreaterThan(3);
    expect(seen.map((e) => e.sequence_number)).toEqual(seen.map((_, i) => i));
    expect(seen.at(-2)).toMatchObject({ type: 'error', code });
    expect(seen.at(-1)).toMatchObject({
      type: 'response.failed',
      response: { status: 'failed', error: { code } },
    });
  });
});

/**
 * A stream that breaks after it began ends the same way passed through (the backend's own events) and
 * translated (the proxy's encoder): the `error` event, then `response.failed`, the response failed. The `openai` SDK's stream helper rejects with the error event; a stream read event by event sees
 * both, the last a response whose status is `failed` — never one left `in_progress`.
 */
describe('a stream broken mid-way ends alike passed through and translated', () => {
  it.each([
    [
      'openai:fault-reset-mid-stream',
      'passed through',
      'upstream_stream_error',
      "Backend 'openai' failed mid-stream",
    ],
    [
      'anthropic:fault-reset-mid-stream',
      'translated',
      'upstream_interrupted',
      'Backend stream was interrupted',
    ],
  ])('%s (%s)', async (model, how, code, message) => {
    const input = 'broken mid-way';
    const stream = await client().responses.create({ model, input, store: false, stream: true });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events.slice(-2).map((e) => e.type)).toEqual(['error', 'response.failed']);
    expect(events.at(-2)).toEqual({
      type: 'error',
      sequence_number: events.length - 2,
      code,
      message,
      param: null,
    });
    const created = events[0] as OpenAI.Responses.ResponseCreatedEvent;
    const failed = (events.at(-1) as OpenAI.Responses.ResponseFailedEvent).response;
    expect(failed.id).toBe(created.response.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toEqual({ code, message });
    // The text the client read (the fake's first of 4 pieces), in the one message as far as it went.
    const said = events
      .filter((e) => e.type === 'response.output_text.delta')
      .map((e) => (e as OpenAI.Responses.ResponseTextDeltaEvent).delta)
      .join('');
    expect(said).toBe(`echo: ${input}`.slice(0, Math.ceil(`echo: ${input}`.length / 4)));
    // Translated, the proxy's encoder knows the output as far as it went; passed through, it is not repeated.
    const output = failed.output.map((item) =>
      item.type === 'message' ? item.content.map((p) => ('text' in p ? p.text : '')) : [],
    );
    expect(output).toEqual(how === 'translated' ? [[said]] : []);
    const rejected = await client()
      .responses.stream({ model, input, store: false })
      .finalResponse()
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(rejected).toEqual({
      type: 'error',
      sequence_number: events.length - 2,
      code,
      message,
      param: null,
    });
  });
});

describe('backend errors carry the OpenAI codes agents act on', () => {
  const fails = async (model: string, stream: boolean) => {
    const params = { model, input: 'x', store: false };
    const err = await (stream ? streamed(params) : client().responses.create(params)).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpenAI.APIError);
    const { status, code, type } = err as InstanceType<typeof OpenAI.APIError>;
    return { status, code, type };
  };

  it.each(['chat', 'anthropic', 'gemini'])(
    '%s: a prompt too long is context_length_exceeded',
    async (prefix) => {
      for (const stream of [false, true]) {
        expect(await fails(`${prefix}:fault-context-length-exceeded`, stream)).toEqual({
          status: 400,
          code: 'context_length_exceeded',
          type: 'invalid_request_error',
        });
      }
    },
  );

  it.each(['anthropic', 'gemini'])('%s: 429 is rate_limit_exceeded, a 5xx a server_error', async (prefix) => {
    expect(await fails(`${prefix}:fault-status-429`, true)).toEqual({
      status: 429,
      code: 'rate_limit_exceeded',
      type: 'rate_limit_exceeded',
    });
    const { status, type } = await fails(`${prefix}:fault-status-503`, false);
    expect({ status, type }).toEqual({ status: 503, type: 'server_error' });
  });

  /** A chat-completions client's error for `model`, as the `openai` SDK raises it. */
  const chatFails = async (model: string, stream: boolean) => {
    const messages = [{ role: 'user' as const, content: 'x' }];
    const err = await (async () => {
      if (!stream) return client().chat.completions.create({ model, messages });
      for await (const chunk of await client().chat.completions.create({ model, messages, stream }))
        void chunk;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    const { status, code, type } = err as InstanceType<typeof OpenAI.APIError>;
    return { status, code, type };
  };

  it.each(['anthropic', 'gemini'])(
    "%s: a provider's 5xx is code server_error, on both OpenAI front-ends, streamed and not",
    async (prefix) => {
      for (const status of [500, 503]) {
        for (const stream of [false, true]) {
          const expected = { status, code: 'server_error', type: 'server_error' };
          expect(await fails(`${prefix}:fault-status-${status}`, stream)).toEqual(expected);
          expect(await chatFails(`${prefix}:fault-status-${status}`, stream)).toEqual(expected);
        }
      }
      // A failure with a code of its own keeps it: Anthropic's overload.
      if (prefix === 'anthropic') {
        expect(await fails('anthropic:fault-status-529', false)).toMatchObject({ code: 'overloaded' });
      }
    },
  );

  it("gemini: a provider's error mid-stream is server_error in the error and response.failed events", async () => {
    const res = await fetch(`${proxy.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gemini:fault-error-mid-stream',
        input: 'x',
        stream: true,
        store: false,
      }),
    });
    const seen = (await res.text())
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)) as { type: string });
    expect(seen.at(-2)).toMatchObject({ type: 'error', code: 'server_error' });
    expect(seen.at(-1)).toMatchObject({
      type: 'response.failed',
      response: { error: { code: 'server_error' } },
    });
    expect(
      await chatFails('gemini:fault-error-mid-stream', true).then(({ code, type }) => ({ code, type })),
    ).toEqual({ code: 'server_error', type: 'server_error' });
  });
});

/** What the fake provider answers after a tool result: Gemini's codec carries a text result as `{output}`. */
const toolSaid = (model: string, text: string) =>
  model.startsWith('gemini:') ? `Tool said: ${JSON.stringify({ output: text })}` : `Tool said: ${text}`;

/** The fake provider calls the first offered tool (the embedded mock only echoes). */
const TOOL_BACKENDS = BACKENDS.filter((b) => !b.model.startsWith('mock:'));

describe.each(TOOL_BACKENDS)('tools through /v1/responses → $model', ({ model, passThrough }) => {
  it('runs a two-turn function tool loop, by previous_response_id and by resending the input', async () => {
    const first = await client().responses.create({ model, input: 'Paris', tools: [weather] });
    const call = first.output.find((item) => item.type === 'function_call');
    expect(call?.type === 'function_call' && call.name).toBe('weather');
    expect(call?.type === 'function_call' && JSON.parse(call.arguments)).toEqual({
      query: 'Paris',
      units: 'metric',
    });
    if (call?.type !== 'function_call') return;
    const output = { type: 'function_call_output' as const, call_id: call.call_id, output: 'sunny, 21°C' };
    const chained = await client().responses.create({
      model,
      previous_response_id: first.id,
      input: [output],
      tools: [weather],
    });
    const resent = await client().responses.create({
      model,
      input: [{ role: 'user', content: 'Paris' }, call, output],
      tools: [weather],
      store: false,
    });
    expect(chained.output_text).toBe(toolSaid(model, 'sunny, 21°C'));
    expect(chained.previous_response_id).toBe(first.id);
    expect(resent.output_text).toBe(toolSaid(model, 'sunny, 21°C'));
    const streamedTurn = await streamed({ model, input: 'Paris', tools: [weather], store: false });
    const streamedCall = streamedTurn.final.output.find((item) => item.type === 'function_call');
    expect(streamedCall?.type === 'function_call' && streamedCall.arguments).toBe(call.arguments);
    expect(streamedTurn.types).toContain('response.function_call_arguments.delta');
  });

  it('round-trips a freeform (custom) tool call', async () => {
    const apply = { type: 'custom' as const, name: 'apply_patch', description: 'Apply a patch' };
    const first = await client().responses.create({
      model,
      input: '*** Begin Patch',
      tools: [apply],
      store: false,
    });
    const call = first.output.find((item) => item.type === 'custom_tool_call');
    expect(call?.type === 'custom_tool_call' && call.name).toBe('apply_patch');
    const second = await streamed({ model, input: '*** Begin Patch', tools: [apply], store: false });
    const streamedCall = second.final.output.find((item) => item.type === 'custom_tool_call');
    expect(streamedCall?.type === 'custom_tool_call' && streamedCall.input).toBe(
      call?.type === 'custom_tool_call' ? call.input : 'missing',
    );
    if (call?.type !== 'custom_tool_call') return;
    const done = await client().responses.create({
      model,
      input: [
        { role: 'user', content: '*** Begin Patch' },
        call,
        { type: 'custom_tool_call_output', call_id: call.call_id, output: 'Done!' },
      ],
      tools: [apply],
      store: false,
    });
    expect(done.output_text).toBe(toolSaid(model, 'Done!'));
    if (!passThrough) {
      // Translated: the freeform tool's input is one string argument, and a call carries it back.
      expect(call.input).toContain('Begin Patch');
    }
  });
});

describe('hosted tools, structured output and fields that do not translate', () => {
  it('drops hosted tools with notice on a translated backend, and the request goes on', async () => {
    const { data, response } = await client()
      .responses.create({
        model: 'chat:gpt-4o-mini',
        input: 'hello there',
        tools: [{ type: 'web_search' }, weather],
        tool_choice: 'auto',
        store: false,
      })
      .withResponse();
    expect(response.headers.get('x-proxy-dropped')).toBe('tools[].web_search');
    expect(data.output.find((i) => i.type === 'function_call')?.type).toBe('function_call');
    const sent = openaiUp.requests.at(-1)?.body as { tools: Array<{ function: { name: string } }> };
    expect(sent.tools.map((t) => t.function.name)).toEqual(['weather']);
  });

  it('passes hosted tools through to a Responses backend untouched', async () => {
    const { response } = await client()
      .responses.create({
        model: 'openai:gpt-4o-mini',
        input: 'hi',
        tools: [{ type: 'web_search' }],
        store: false,
      })
      .withResponse();
    expect(response.headers.get('x-proxy-dropped')).toBeNull();
    expect((openaiUp.requests.at(-1)?.body as { tools: unknown }).tools).toEqual([{ type: 'web_search' }]);
    expect(openaiUp.requests.at(-1)?.url).toBe('/v1/responses');
  });

  it('refuses a tool_choice that forces a dropped hosted tool, naming the field', async () => {
    const err = await client()
      .responses.create({
        model: 'anthropic:claude-mock-1',
        input: 'hi',
        tools: [{ type: 'web_search_preview' }],
        tool_choice: { type: 'web_search_preview' },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('tool_choice');
  });

  it('translates text.format json_schema to a chat backend as response_format', async () => {
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    await client().responses.create({
      model: 'chat:gpt-4o-mini',
      input: 'hi',
      text: { format: { type: 'json_schema', name: 'place', schema, strict: true } },
      store: false,
    });
    expect((openaiUp.requests.at(-1)?.body as { response_format: unknown }).response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'place', schema, strict: true },
    });
  });
});

describe('structured output (text.format) from a Responses client', () => {
  const schema = {
    type: 'object',
    properties: { query: { type: 'string' }, units: { type: 'string' } },
    required: ['query', 'units'],
    additionalProperties: false,
  };
  const format = { type: 'json_schema' as const, name: 'place', schema, strict: true };

  it('anthropic: a forced answer tool, back as JSON output_text, create() and stream() alike', async () => {
    const params = { model: 'anthropic:claude-mock-1', input: 'Oslo', text: { format }, store: false };
    const whole = await client().responses.parse(params);
    expect(whole.output_text).toBe(JSON.stringify({ query: 'Oslo', units: 'metric' }));
    expect(whole.output_parsed).toEqual({ query: 'Oslo', units: 'metric' });
    const sent = anthropicUp.requests.at(-1)?.body as { tools: unknown; tool_choice: unknown };
    expect(sent.tools).toEqual([
      {
        name: 'lip_structured_answer',
        description: 'Give your final answer by calling this tool: its input is the answer.',
        input_schema: schema,
      },
    ]);
    expect(sent.tool_choice).toEqual({ type: 'tool', name: 'lip_structured_answer' });
    const { final } = await streamed(params);
    expect(final.output_text).toBe(whole.output_text);
    expect(comparable(final)).toEqual(comparable(whole));
  });

  it('gemini: responseMimeType and responseJsonSchema; json_object as JSON mime type alone', async () => {
    const made = await client().responses.create({
      model: 'gemini:gemini-mock-flash',
      input: 'x',
      text: { format },
      store: false,
    });
    expect(made.status).toBe('completed');
    expect((geminiUp.requests.at(-1)?.body as { generationConfig: unknown }).generationConfig).toEqual({
      responseMimeType: 'application/json',
      responseJsonSchema: schema,
    });
    await client().responses.create({
      model: 'gemini:gemini-mock-flash',
      input: 'x',
      text: { format: { type: 'json_object' } },
      store: false,
    });
    expect((geminiUp.requests.at(-1)?.body as { generationConfig: unknown }).generationConfig).toEqual({
      responseMimeType: 'application/json',
    });
  });

  it('a schema Anthropic cannot take is a 400 naming text.format', async () => {
    const err = await client()
      .responses.create({
        model: 'anthropic:claude-mock-1',
        input: 'x',
        text: { format: { type: 'json_schema', name: 'list', schema: { type: 'array' } } },
        store: false,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('text.format');
  });
});

describe('stored responses belong to the key that made them', () => {
  const other = () => client(OTHER_KEY);
  const notFound = (p: Promise<unknown>) => expect(p).rejects.toBeInstanceOf(OpenAI.NotFoundError);

  it.each(['chat:gpt-4o-mini', 'openai:gpt-4o-mini'])(
    '%s: GET, DELETE and previous_response_id for the owner only',
    async (model) => {
      const made = await client().responses.create({ model, input: 'remember me' });
      expect((await client().responses.retrieve(made.id)).output_text).toBe('echo: remember me');
      await notFound(other().responses.retrieve(made.id));
      await notFound(other().responses.delete(made.id));
      await notFound(other().responses.create({ model, input: 'x', previous_response_id: made.id }));
      const next = await client().responses.create({ model, input: 'again', previous_response_id: made.id });
      expect(next.output_text).toBe('echo: again');
      await client().responses.delete(made.id);
      await notFound(client().responses.retrieve(made.id));
    },
  );

  it.each(['chat:gpt-4o-mini', 'openai:gpt-4o-mini'])(
    '%s: keeps nothing with store: false',
    async (model) => {
      const made = await client().responses.create({ model, input: 'forget me', store: false });
      const before = openaiUp.requests.length;
      await notFound(client().responses.retrieve(made.id));
      await notFound(client().responses.inputItems.list(made.id));
      await notFound(client().responses.create({ model, input: 'x', previous_response_id: made.id }));
      // Nothing was asked of the backend: the proxy holds no record of the id.
      expect(openaiUp.requests.length).toBe(before);
    },
  );

  it('continues a conversation on another backend: the proxy rebuilds the history', async () => {
    const made = await client().responses.create({
      model: 'anthropic:claude-mock-1',
      input: 'first question',
    });
    await client().responses.create({
      model: 'gemini:gemini-mock-flash',
      input: 'second',
      previous_response_id: made.id,
    });
    const sent = geminiUp.requests.at(-1)?.body as {
      contents: Array<{ role: string; parts: Array<{ text: string }> }>;
    };
    expect(sent.contents.map((c) => [c.role, c.parts.map((p) => p.text).join('')])).toEqual([
      ['user', 'first question'],
      ['model', 'echo: first question'],
      ['user', 'second'],
    ]);
  });
});

describe('a passed-through response stays with the backend that made it, and with its key', () => {
  const other = () => client(OTHER_KEY);

  it('GET, input_items and DELETE go to that backend; another key gets 404 in the OpenAI envelope', async () => {
    const made = await client().responses.create({
      model: 'resp2:gpt-4o-mini',
      input: [
        { role: 'user', content: 'one' },
        { role: 'user', content: 'two' },
        { role: 'user', content: 'three' },
      ],
    });
    expect(made.id).toMatch(/^resp_second_/);
    const before = openaiUp.requests.length;
    expect((await client().responses.retrieve(made.id)).output_text).toBe('echo: three');
    expect(secondUp.requests.at(-1)?.url).toBe(`/v1/responses/${made.id}`);
    const ids: string[] = [];
    for await (const item of client().responses.inputItems.list(made.id, { order: 'asc', limit: 2 }))
      ids.push(item.id);
    expect(ids).toEqual([0, 1, 2].map((i) => `in_${made.id}_${i}`));
    expect(secondUp.requests.at(-1)?.url).toBe(
      `/v1/responses/${made.id}/input_items?after=in_${made.id}_1&limit=2&order=asc`,
    );
    // Only the list's parameters go on: a proxy key given in the query (`?key=`) never reaches a backend.
    const listed = await fetch(
      `${proxy.url}/v1/responses/${made.id}/input_items?key=${KEY}&limit=1&include[]=message.input_image.image_url&extra=1`,
    );
    expect(listed.status).toBe(200);
    expect(secondUp.requests.at(-1)?.url).toBe(
      `/v1/responses/${made.id}/input_items?limit=1&include%5B%5D=message.input_image.image_url`,
    );
    const refused = await other()
      .responses.inputItems.list(made.id)
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.NotFoundError);
    expect((refused as InstanceType<typeof OpenAI.NotFoundError>).error).toEqual({
      message: `Response with id '${made.id}' not found.`,
      type: 'invalid_request_error',
      param: null,
      code: 'not_found',
    });
    await expect(other().responses.retrieve(made.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(other().responses.delete(made.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await client().responses.delete(made.id);
    expect(secondUp.requests.at(-1)).toMatchObject({ method: 'DELETE', url: `/v1/responses/${made.id}` });
    await expect(client().responses.retrieve(made.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    // Nothing of it ever reached the default Responses backend.
    expect(openaiUp.requests.slice(before).map((r) => r.url)).toEqual([]);
  });

  it('previous_response_id continues it on that backend only: another one is a 400 naming it', async () => {
    const made = await client().responses.create({ model: 'resp2:gpt-4o-mini', input: 'first' });
    const next = await client().responses.create({
      model: 'resp2:gpt-4o-mini',
      input: 'second',
      previous_response_id: made.id,
    });
    expect(next.output_text).toBe('echo: second');
    expect((secondUp.requests.at(-1)?.body as { previous_response_id: string }).previous_response_id).toBe(
      made.id,
    );
    for (const model of ['openai:gpt-4o-mini', 'chat:gpt-4o-mini']) {
      const err = await client()
        .responses.create({ model, input: 'x', previous_response_id: made.id })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).error).toEqual({
        message: `Response '${made.id}' is held by backend 'resp2': continue it with a model of that backend`,
        type: 'invalid_request_error',
        param: 'previous_response_id',
        code: 'invalid_request',
      });
    }
  });
});

describe('input_items of a response the proxy keeps', () => {
  it('lists the whole conversation that led to it, a page at a time, for its key only', async () => {
    const first = await client().responses.create({ model: 'chat:gpt-4o-mini', input: 'hello' });
    const second = await client().responses.create({
      model: 'anthropic:claude-mock-1',
      input: [{ role: 'user', content: 'and again' }],
      previous_response_id: first.id,
    });
    const base = second.id.replace(/^resp_/, '');
    const items: unknown[] = [];
    for await (const item of client().responses.inputItems.list(second.id, { limit: 1 })) items.push(item);
    const reply = first.output[0] as { id: string };
    expect(items).toEqual([
      {
        id: `msg_${base}_2`,
        type: 'message',
        role: 'user',
        status: 'completed',
        content: [{ type: 'input_text', text: 'and again' }],
      },
      { ...first.output[0], id: reply.id },
      {
        id: `msg_${base}_0`,
        type: 'message',
        role: 'user',
        status: 'completed',
        content: [{ type: 'input_text', text: 'hello' }],
      },
    ]);
    const page = await client().responses.inputItems.list(second.id, { order: 'asc', limit: 2 });
    expect(page.data.map((i) => i.id)).toEqual([`msg_${base}_0`, reply.id]);
    expect(page.has_more).toBe(true);
    await expect(client(OTHER_KEY).responses.inputItems.list(second.id)).rejects.toBeInstanceOf(
      OpenAI.NotFoundError,
    );
    const bad = await client()
      .responses.inputItems.list(second.id, { limit: 500 })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('limit');
  });
});

describe('routed requests (failover) keep the Responses state', () => {
  it('a translated element that answers stores the response; previous_response_id goes on by route', async () => {
    const { data: made, response } = await client()
      .responses.create({ model: 'to-anthropic', input: 'routed question' })
      .withResponse();
    expect(response.headers.get('x-proxy-attempts')).toBe('2');
    expect(made.output_text).toBe('echo: routed question');
    expect((await client().responses.retrieve(made.id)).output_text).toBe('echo: routed question');
    const next = await client().responses.create({
      model: 'to-anthropic',
      input: 'routed follow-up',
      previous_response_id: made.id,
    });
    expect(next.output_text).toBe('echo: routed follow-up');
    const sent = anthropicUp.requests.at(-1)?.body as { messages: Array<{ role: string; content: unknown }> };
    expect(sent.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    await expect(
      client(OTHER_KEY).responses.create({
        model: 'to-anthropic',
        input: 'x',
        previous_response_id: made.id,
      }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('a passed-through element records its id with its backend; a chain skips the elements that cannot continue it', async () => {
    const { final } = await streamed({ model: 'to-openai', input: 'streamed by route' });
    expect(final.output_text).toBe('echo: streamed by route');
    expect(openaiUp.requests.at(-1)?.url).toBe('/v1/responses');
    expect((await client().responses.retrieve(final.id)).id).toBe(final.id);
    await expect(client(OTHER_KEY).responses.retrieve(final.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const secondBefore = secondUp.requests.length;
    // resp2 comes first in the chain but cannot continue a response openai holds: openai answers.
    const { data: next, response } = await client()
      .responses.create({ model: 'second-first', input: 'go on', previous_response_id: final.id })
      .withResponse();
    expect(next.output_text).toBe('echo: go on');
    expect(response.headers.get('x-proxy-backend')).toBe('openai');
    expect(secondUp.requests.length).toBe(secondBefore);
    expect((openaiUp.requests.at(-1)?.body as { previous_response_id: string }).previous_response_id).toBe(
      final.id,
    );
  });
});

describe('the loop guard reads the conversation a previous_response_id continues', () => {
  it.each([
    ['one backend', 'chat:tool-loop'],
    ['failover', 'chat:fault-status-503|chat:tool-loop'],
  ])('%s: steers the 7th repeat though each request sends only the newest tool output', async (_, model) => {
    const calls = () => openaiUp.requests.filter((r) => r.model === 'tool-loop').length;
    const before = calls();
    let res = await client().responses.create({ model, input: 'make the tests pass', tools: [weather] });
    for (let turn = 0; turn < 12; turn++) {
      const call = res.output.find((item) => item.type === 'function_call');
      if (call?.type !== 'function_call') break;
      res = await client().responses.create({
        model,
        previous_response_id: res.id,
        input: [{ type: 'function_call_output', call_id: call.call_id, output: '1 test failed' }],
        tools: [weather],
      });
    }
    expect(res.output_text).toContain(
      '[proxy: tool-call loop] This conversation has made the same tool call 7 times in a row (weather ',
    );
    expect(calls() - before).toBe(7);
    // The steering is an answer like any other: kept.
    expect((await client().responses.retrieve(res.id)).output_text).toBe(res.output_text);
  });
});

describe("the proxy's own answers are kept like any other", () => {
  const sentMessages = () =>
    (openaiUp.requests.at(-1)?.body as { messages: Array<{ role: string; content: unknown }> }).messages;

  it.each([false, true])(
    'a command reply (streamed: %s) is stored; previous_response_id goes on without the command',
    async (stream) => {
      const model = 'chat:gpt-4o-mini';
      const first = await client().responses.create({ model, input: 'first question' });
      const before = openaiUp.requests.length;
      const params = { model, input: '!/help', previous_response_id: first.id };
      const help = stream ? (await streamed(params)).final : await client().responses.create(params);
      expect(openaiUp.requests.length).toBe(before);
      expect(help.id).toMatch(/^resp_/);
      expect(help.output_text).toContain('!/set(model=backend:model)');
      const kept = await client().responses.retrieve(help.id);
      expect(kept.id).toBe(help.id);
      expect(kept.output_text).toBe(help.output_text);
      await expect(client(OTHER_KEY).responses.retrieve(help.id)).rejects.toBeInstanceOf(
        OpenAI.NotFoundError,
      );

      const next = await client().responses.create({
        model,
        input: 'what now',
        previous_response_id: help.id,
      });
      expect(next.output_text).toBe('echo: what now');
      expect(next.previous_response_id).toBe(help.id);
      // The conversation before the command goes on; the command and its reply are not in it.
      expect(sentMessages()).toEqual([
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: 'echo: first question' },
        { role: 'user', content: 'what now' },
      ]);
    },
  );

  it('a command reply that starts a conversation leaves nothing of it to the next turn', async () => {
    const model = 'chat:gpt-4o-mini';
    const session = await client().responses.create({ model, input: '!/session' });
    const next = await client().responses.create({ model, input: 'hello', previous_response_id: session.id });
    expect(next.output_text).toBe('echo: hello');
    expect(sentMessages()).toEqual([{ role: 'user', content: 'hello' }]);
    // store: false keeps nothing, as for any answer.
    const unkept = await client().responses.create({ model, input: '!/session', store: false });
    await expect(client().responses.retrieve(unkept.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe('chat clients reach a Responses-only backend by translation', () => {
  it('answers chat completions, whole and streamed, through POST {base}/responses', async () => {
    const whole = await client().chat.completions.create({
      model: 'resp:gpt-4o-mini',
      messages: [{ role: 'user', content: 'hello there' }],
    });
    expect(whole.choices[0]?.message.content).toBe('echo: hello there');
    expect(openaiUp.requests.at(-1)?.url).toBe('/v1/responses');
    let text = '';
    const stream = await client().chat.completions.create({
      model: 'resp:gpt-4o-mini',
      messages: [{ role: 'user', content: 'hello there' }],
      stream: true,
    });
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('echo: hello there');
  });
});

describe('Codex CLI requests (recorded: test/fixtures/responses/codex-exec.json)', () => {
  const fixture = JSON.parse(
    readFileSync(new URL('./fixtures/responses/codex-exec.json', import.meta.url), 'utf8'),
  ) as { requests: Array<Record<string, unknown>> };
  const [firstTurn, toolTurn] = fixture.requests as [Record<string, unknown>, Record<string, unknown>];

  it.each(['chat:gpt-4o-mini', 'anthropic:claude-mock-1', 'gemini:gemini-mock-flash', 'openai:gpt-4o-mini'])(
    '%s: a Codex turn and its tool turn stream to completion',
    async (model) => {
      const stream = client().responses.stream({ ...firstTurn, model } as Parameters<
        OpenAI['responses']['stream']
      >[0]);
      const first = await stream.finalResponse();
      expect(first.status).toBe('completed');
      const call = first.output.find((item) => item.type === 'function_call');
      expect(call?.type === 'function_call' && call.name).toBe('exec_command');
      if (model.startsWith('anthropic:')) {
        // The sub-agent tools of Codex's `multi_agent_v1` namespace reach a translated backend by flat names.
        const tools = (anthropicUp.requests.at(-1)?.body as { tools: Array<{ name: string }> }).tools;
        expect(tools.map((t) => t.name)).toContain('multi_agent_v1__spawn_agent');
      }
      const { data, response } = await client()
        .responses.create({ ...toolTurn, model, stream: false } as ResponseCreateParamsNonStreaming)
        .withResponse();
      expect(data.output_text).toMatch(/^Tool said: /);
      const dropped = response.headers.get('x-proxy-dropped');
      if (model.startsWith('openai:')) expect(dropped).toBeNull();
      else {
        // `reasoning.summary` is a reasoning control (README, "Reasoning controls"): Anthropic refuses thinking
        // in a tool loop whose earlier turn has none, so there it is dropped with notice.
        expect(dropped?.split(', ').sort()).toEqual([
          'client_metadata',
          'include',
          'prompt_cache_key',
          ...(model.startsWith('anthropic:') ? ['reasoning.summary'] : []),
          'tools[].web_search',
        ]);
      }
    },
  );
});
