import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createOpenAI } from '@ai-sdk/openai';
import { HumanMessage, type AIMessageChunk } from '@langchain/core/messages';
import { tool as langchainTool } from '@langchain/core/tools';
import { ChatOpenAI } from '@langchain/openai';
import {
  Agent,
  OpenAIChatCompletionsModel,
  run,
  setDefaultOpenAIClient,
  setTracingDisabled,
  tool as agentTool,
  user,
} from '@openai/agents';
import { generateText, stepCountIs, streamText, tool as aiTool, type ModelMessage } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startFakeProvider, type FakeProvider, type RecordedRequest } from './fake-provider/index.mjs';

/**
 * The README's recipes for the SDKs built on the OpenAI API (README, "The OpenAI Agents SDK, the Vercel AI
 * SDK and LangChain"), each configured exactly as the README says — base URL at the proxy's `/v1`, the proxy
 * key as the API key — and driven through the real CLI to the fake provider of every protocol, over both of
 * each SDK's APIs (Responses, chat completions): a plain answer, a streamed one, a tool-call round trip and a
 * second turn. The SDKs' telemetry is off (Agents SDK tracing; LangSmith; the AI SDK records nothing unless
 * asked) and nothing leaves loopback.
 */

const KEY = 'sdk-recipes-proxy-key-0123456789';
const OTHER_KEY = 'sdk-recipes-other-key-9876543210';
const OPENAI_KEY = 'sk-openai-provider-key-abcdefghijkl';
const ANTHROPIC_KEY = 'sk-ant-provider-key-abcdefghijkl';
const GEMINI_KEY = 'AIzaProviderKeyForGeminiTests0123456789';

let proxy: ProxyProcess;
let openaiUp: FakeProvider;
let anthropicUp: FakeProvider;
let geminiUp: FakeProvider;
let dir: string;

beforeAll(async () => {
  [openaiUp, anthropicUp, geminiUp] = await Promise.all([
    startFakeProvider({ keys: { openai: OPENAI_KEY } }),
    startFakeProvider({ keys: { anthropic: ANTHROPIC_KEY } }),
    startFakeProvider({ keys: { gemini: GEMINI_KEY } }),
  ]);
  dir = mkdtempSync(path.join(tmpdir(), 'sdk-recipes-'));
  const config = path.join(dir, 'config.yaml');
  const base = openaiUp.baseUrls.openai;
  writeFileSync(
    config,
    [
      'backends:',
      // A chat-completions server: a Responses client's requests are translated to it.
      `  chat:\n    type: openai\n    base_url: ${base}\n    api_key_env: OPENAI_API_KEY`,
      // A Responses-only server: a chat-completions client's requests are translated to it.
      `  resp:\n    type: responses\n    base_url: ${base}\n    api_key_env: OPENAI_API_KEY`,
      '',
    ].join('\n'),
  );
  proxy = await startProxyProcess(['--config', config, '--default-backend', 'openai'], {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    API_KEYS: OTHER_KEY,
    OPENAI_API_KEY: OPENAI_KEY,
    OPENAI_API_BASE_URL: base,
    ANTHROPIC_API_KEY: ANTHROPIC_KEY,
    ANTHROPIC_API_BASE_URL: anthropicUp.baseUrls.anthropic,
    GEMINI_API_KEY: GEMINI_KEY,
    GEMINI_API_BASE_URL: geminiUp.baseUrls.gemini,
  });
  // Telemetry off: the Agents SDK would export traces to OpenAI; LangSmith traces only when asked to.
  setTracingDisabled(true);
  process.env.LANGSMITH_TRACING = 'false';
  process.env.LANGCHAIN_TRACING_V2 = 'false';
});

afterAll(async () => {
  await proxy?.stop();
  await Promise.all([openaiUp, anthropicUp, geminiUp].map((u) => u?.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Json = Record<string, unknown>;
type Wire = 'openai' | 'responses' | 'anthropic' | 'gemini';

/** The text of a content value: a string, or parts / blocks with `text`. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((p: Json) => (typeof p?.text === 'string' && p.thought !== true ? p.text : '')).join('');
}

const list = (value: unknown): Json[] => (Array.isArray(value) ? (value as Json[]) : []);

/**
 * What a provider of each protocol was sent, read from its request: the chat path, the tools offered, the
 * assistant's earlier text, the tool results given back, and whether it was asked to stream.
 */
const WIRES: Record<
  Wire,
  {
    path: RegExp;
    tools(body: Json): string[];
    assistantText(body: Json): string[];
    toolResults(body: Json): string[];
    streamed(req: RecordedRequest): boolean;
  }
> = {
  openai: {
    path: /^\/v1\/chat\/completions$/,
    tools: (b) => list(b.tools).map((t) => (t.function as Json).name as string),
    assistantText: (b) =>
      list(b.messages)
        .filter((m) => m.role === 'assistant' && textOf(m.content) !== '')
        .map((m) => textOf(m.content)),
    toolResults: (b) =>
      list(b.messages)
        .filter((m) => m.role === 'tool')
        .map((m) => textOf(m.content)),
    streamed: (r) => (r.body as Json).stream === true,
  },
  responses: {
    path: /^\/v1\/responses$/,
    tools: (b) => list(b.tools).map((t) => t.name as string),
    assistantText: (b) =>
      list(b.input)
        .filter((i) => i.role === 'assistant')
        .map((i) => textOf(i.content)),
    toolResults: (b) =>
      list(b.input)
        .filter((i) => i.type === 'function_call_output')
        .map((i) => textOf(i.output)),
    streamed: (r) => (r.body as Json).stream === true,
  },
  anthropic: {
    path: /^\/v1\/messages$/,
    tools: (b) => list(b.tools).map((t) => t.name as string),
    assistantText: (b) =>
      list(b.messages)
        .filter((m) => m.role === 'assistant' && textOf(m.content) !== '')
        .map((m) => textOf(m.content)),
    toolResults: (b) =>
      list(b.messages)
        .flatMap((m) => list(m.content))
        .filter((c) => c.type === 'tool_result')
        .map((c) => textOf(c.content)),
    streamed: (r) => (r.body as Json).stream === true,
  },
  gemini: {
    path: /^\/v1beta\/models\/[^/:]+:(generateContent|streamGenerateContent\?alt=sse)$/,
    tools: (b) => list(b.tools).flatMap((t) => list(t.functionDeclarations).map((d) => d.name as string)),
    assistantText: (b) =>
      list(b.contents)
        .filter((c) => c.role === 'model' && textOf(c.parts) !== '')
        .map((c) => textOf(c.parts)),
    toolResults: (b) =>
      list(b.contents)
        .flatMap((c) => list(c.parts))
        .filter((p) => p.functionResponse !== undefined)
        .map((p) => JSON.stringify((p.functionResponse as Json).response)),
    streamed: (r) => r.url.includes(':streamGenerateContent'),
  },
};

interface BackendCase {
  model: string;
  /** The provider that answers, and the protocol it is spoken to in, for a client of each API. */
  up: () => FakeProvider;
  wire: { responses: Wire; chat: Wire };
  /** What the fake provider says after the tool result `sunny in Paris (metric)`. */
  toolSaid: string;
}

const SAID = 'Tool said: sunny in Paris (metric)';
/** Every kind of backend, for the Responses API and chat completions alike. */
const BACKENDS: BackendCase[] = [
  // The built-in `openai` backend: both APIs passed through.
  {
    model: 'openai:gpt-4o-mini',
    up: () => openaiUp,
    wire: { responses: 'responses', chat: 'openai' },
    toolSaid: SAID,
  },
  // A chat-completions server: the Responses API translated, chat completions passed through.
  {
    model: 'chat:gpt-4o-mini',
    up: () => openaiUp,
    wire: { responses: 'openai', chat: 'openai' },
    toolSaid: SAID,
  },
  // A Responses-only server: the Responses API passed through, chat completions translated.
  {
    model: 'resp:gpt-4o-mini',
    up: () => openaiUp,
    wire: { responses: 'responses', chat: 'responses' },
    toolSaid: SAID,
  },
  {
    model: 'anthropic:claude-mock-1',
    up: () => anthropicUp,
    wire: { responses: 'anthropic', chat: 'anthropic' },
    toolSaid: SAID,
  },
  {
    model: 'gemini:gemini-mock-flash',
    up: () => geminiUp,
    wire: { responses: 'gemini', chat: 'gemini' },
    // A Gemini function response is an object: the tool's text travels as its `output`.
    toolSaid: 'Tool said: {"output":"sunny in Paris (metric)"}',
  },
];

/** The chat calls a provider received while `work` ran (model lists left out). */
async function sentDuring(
  up: FakeProvider,
  wire: Wire,
  work: () => Promise<void>,
): Promise<RecordedRequest[]> {
  const from = up.requests.length;
  await work();
  const sent = up.requests.slice(from).filter((r) => r.method === 'POST' && WIRES[wire].path.test(r.url));
  // Every call carried the provider's key, never the proxy's.
  for (const r of sent) expect(JSON.stringify(r.headers)).not.toContain(KEY);
  return sent;
}

/** The arguments each SDK's tool was run with. */
type Ran = Array<{ query: string; units: string }>;
const WEATHER = 'Weather for a city';
const weatherSchema = z.object({ query: z.string(), units: z.string() });
const weatherResult = ({ query, units }: { query: string; units: string }) => `sunny in ${query} (${units})`;

/** The two calls of a tool round trip: the tool offered, then its result given back. */
function expectRoundTrip(sent: RecordedRequest[], wire: Wire, streamed: boolean): void {
  expect(sent).toHaveLength(2);
  const [first, second] = sent.map((r) => r.body as Json) as [Json, Json];
  expect(WIRES[wire].tools(first)).toEqual(['weather']);
  expect(WIRES[wire].toolResults(first)).toEqual([]);
  expect(WIRES[wire].toolResults(second)).toEqual([
    wire === 'gemini' ? '{"output":"sunny in Paris (metric)"}' : 'sunny in Paris (metric)',
  ]);
  expect(sent.map((r) => WIRES[wire].streamed(r))).toEqual([streamed, streamed]);
}

// --- OpenAI Agents SDK ------------------------------------------------------------------------------------

/** The README's recipe: the SDK's default client, at the proxy. */
const agentsClient = () => new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY });

/** The Agents SDK's two models: its default (Responses) and the chat-completions one. */
const AGENT_APIS = [
  { api: 'responses' as const, model: (name: string) => name },
  {
    api: 'chat' as const,
    model: (name: string) => new OpenAIChatCompletionsModel(agentsClient(), name),
  },
];

describe.each(BACKENDS)('OpenAI Agents SDK → $model', (backend) => {
  describe.each(AGENT_APIS)('its $api model', ({ api, model }) => {
    const wire = backend.wire[api];
    const weatherAgent = (ran: Ran) =>
      new Agent({
        name: 'weather',
        instructions: 'Answer with the weather tool.',
        model: model(backend.model),
        tools: [
          agentTool({
            name: 'weather',
            description: WEATHER,
            parameters: weatherSchema,
            execute: (args) => {
              ran.push(args);
              return weatherResult(args);
            },
          }),
        ],
      });
    const plainAgent = () =>
      new Agent({ name: 'plain', instructions: 'Be brief.', model: model(backend.model) });

    beforeAll(() => setDefaultOpenAIClient(agentsClient()));

    it('runs to a plain answer', async () => {
      let output: unknown;
      const sent = await sentDuring(backend.up(), wire, async () => {
        output = (await run(plainAgent(), 'hello there')).finalOutput;
      });
      expect(output).toBe('echo: hello there');
      expect(sent).toHaveLength(1);
      expect(WIRES[wire].streamed(sent[0] as RecordedRequest)).toBe(false);
    });

    it('streams the answer piece by piece', async () => {
      const deltas: string[] = [];
      let output: unknown;
      const sent = await sentDuring(backend.up(), wire, async () => {
        const result = await run(plainAgent(), 'hello there', { stream: true });
        for await (const event of result) {
          if (event.type === 'raw_model_stream_event' && event.data.type === 'output_text_delta')
            deltas.push(event.data.delta);
        }
        await result.completed;
        output = result.finalOutput;
      });
      expect(output).toBe('echo: hello there');
      expect(deltas.join('')).toBe('echo: hello there');
      expect(deltas.length).toBeGreaterThan(1);
      expect(sent.map((r) => WIRES[wire].streamed(r))).toEqual([true]);
    });

    it.each([false, true])('runs a function tool to completion (streamed: %s)', async (stream) => {
      const ran: Ran = [];
      let output: unknown;
      const sent = await sentDuring(backend.up(), wire, async () => {
        if (stream) {
          const result = await run(weatherAgent(ran), 'Paris', { stream: true });
          await result.completed;
          output = result.finalOutput;
        } else output = (await run(weatherAgent(ran), 'Paris')).finalOutput;
      });
      expect(ran).toEqual([{ query: 'Paris', units: 'metric' }]);
      expect(output).toBe(backend.toolSaid);
      expectRoundTrip(sent, wire, stream);
    });

    it('goes on with its history in a second turn', async () => {
      const agent = plainAgent();
      const first = await run(agent, 'hello there');
      let output: unknown;
      const sent = await sentDuring(backend.up(), wire, async () => {
        output = (await run(agent, first.history.concat(user('and again')))).finalOutput;
      });
      expect(output).toBe('echo: and again');
      expect(sent.map((r) => WIRES[wire].assistantText(r.body as Json))).toEqual([['echo: hello there']]);
    });

    if (api === 'responses') {
      it('goes on from previousResponseId in a second turn', async () => {
        const agent = plainAgent();
        const first = await run(agent, 'hello there');
        let output: unknown;
        const sent = await sentDuring(backend.up(), wire, async () => {
          output = (await run(agent, 'and again', { previousResponseId: first.lastResponseId })).finalOutput;
        });
        expect(output).toBe('echo: and again');
        expect(sent).toHaveLength(1);
        const body = (sent[0] as RecordedRequest).body as Json;
        // Passed through, the backend holds the conversation; translated, the proxy gives it whole.
        if (wire === 'responses') expect(body.previous_response_id).toBe(first.lastResponseId);
        else expect(WIRES[wire].assistantText(body)).toEqual(['echo: hello there']);
      });
    }
  });
});

// --- Vercel AI SDK ----------------------------------------------------------------------------------------

/** The README's recipe. */
const vercel = () => createOpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY });

/** `openai(model)` speaks the Responses API, `openai.chat(model)` chat completions. */
const VERCEL_APIS = [
  { api: 'responses' as const, call: 'openai(model)', model: (name: string) => vercel()(name) },
  { api: 'chat' as const, call: 'openai.chat(model)', model: (name: string) => vercel().chat(name) },
];

describe.each(BACKENDS)('Vercel AI SDK → $model', (backend) => {
  describe.each(VERCEL_APIS)('$call', ({ api, model }) => {
    const wire = backend.wire[api];
    const weatherTools = (ran: Ran) => ({
      weather: aiTool({
        description: WEATHER,
        inputSchema: weatherSchema,
        execute: (args) => {
          ran.push(args);
          return Promise.resolve(weatherResult(args));
        },
      }),
    });

    it('generateText answers', async () => {
      let text = '';
      const sent = await sentDuring(backend.up(), wire, async () => {
        ({ text } = await generateText({
          model: model(backend.model),
          prompt: 'hello there',
          maxRetries: 0,
        }));
      });
      expect(text).toBe('echo: hello there');
      expect(sent).toHaveLength(1);
    });

    it('streamText streams the answer piece by piece', async () => {
      const deltas: string[] = [];
      const errors: unknown[] = [];
      const sent = await sentDuring(backend.up(), wire, async () => {
        const result = streamText({
          model: model(backend.model),
          prompt: 'hello there',
          maxRetries: 0,
          onError: ({ error }) => void errors.push(error),
        });
        for await (const delta of result.textStream) deltas.push(delta);
      });
      expect(errors).toEqual([]);
      expect(deltas.join('')).toBe('echo: hello there');
      expect(deltas.length).toBeGreaterThan(1);
      expect(sent.map((r) => WIRES[wire].streamed(r))).toEqual([true]);
    });

    it.each([false, true])('runs a tool and answers with its result (streamText: %s)', async (stream) => {
      const ran: Ran = [];
      const errors: unknown[] = [];
      let text = '';
      let calls: unknown[] = [];
      const sent = await sentDuring(backend.up(), wire, async () => {
        const params = {
          model: model(backend.model),
          prompt: 'Paris',
          tools: weatherTools(ran),
          stopWhen: stepCountIs(3),
          maxRetries: 0,
        };
        if (stream) {
          const result = streamText({ ...params, onError: ({ error }) => void errors.push(error) });
          text = await result.text;
          calls = (await result.steps).flatMap((s) => s.toolCalls.map((c) => [c.toolName, c.input]));
        } else {
          const result = await generateText(params);
          text = result.text;
          calls = result.steps.flatMap((s) => s.toolCalls.map((c) => [c.toolName, c.input]));
        }
      });
      expect(errors).toEqual([]);
      expect(calls).toEqual([['weather', { query: 'Paris', units: 'metric' }]]);
      expect(ran).toEqual([{ query: 'Paris', units: 'metric' }]);
      expect(text).toBe(backend.toolSaid);
      expectRoundTrip(sent, wire, stream);
    });

    it('goes on with the response messages in a second turn', async () => {
      const messages: ModelMessage[] = [{ role: 'user', content: 'hello there' }];
      const first = await generateText({ model: model(backend.model), messages, maxRetries: 0 });
      messages.push(...first.response.messages, { role: 'user', content: 'and again' });
      let text = '';
      const sent = await sentDuring(backend.up(), wire, async () => {
        ({ text } = await generateText({ model: model(backend.model), messages, maxRetries: 0 }));
      });
      expect(text).toBe('echo: and again');
      expect(sent).toHaveLength(1);
      const body = (sent[0] as RecordedRequest).body as Json;
      if (api === 'responses' && wire === 'responses') {
        // Passed through: the backend made the first answer, and is given the SDK's reference to it.
        expect(list(body.input).filter((i) => i.type === 'item_reference')).toHaveLength(1);
      } else expect(WIRES[wire].assistantText(body)).toEqual(['echo: hello there']);
    });
  });
});

/**
 * With `store` on (its default) `openai(model)` sends each earlier item of its own — text, reasoning — as an
 * `item_reference` to its id: the proxy replaces a reference to an item it made by the item (README,
 * "Responses API"), for the key that made it only.
 */
describe('Vercel AI SDK: item references', () => {
  const weatherTools = {
    weather: aiTool({
      description: WEATHER,
      inputSchema: weatherSchema,
      execute: (args) => Promise.resolve(weatherResult(args)),
    }),
  };

  it.each([
    ['anthropic:claude-thinking-1', () => anthropicUp],
    ['gemini:gemini-thinking-flash', () => geminiUp],
  ] as const)(
    'a tool loop with reasoning gives %s back its signed reasoning, referenced by id',
    async (model, up) => {
      const wire = model.startsWith('anthropic') ? 'anthropic' : 'gemini';
      let text = '';
      const sent = await sentDuring(up(), wire, async () => {
        ({ text } = await generateText({
          model: vercel()(model),
          prompt: 'Paris',
          tools: weatherTools,
          stopWhen: stepCountIs(3),
          maxRetries: 0,
        }));
      });
      expect(text).toBe(wire === 'gemini' ? 'Tool said: {"output":"sunny in Paris (metric)"}' : SAID);
      expect(sent).toHaveLength(2);
      // The provider checks the signature it made, byte for byte, as the real API does (and 400s otherwise).
      const second = (sent[1] as RecordedRequest).body as Json;
      const signatures =
        wire === 'anthropic'
          ? list(list(second.messages)[1]?.content)
              .filter((b) => b.type === 'thinking')
              .map((b) => b.signature)
          : list(list(second.contents)[1]?.parts)
              .filter((p) => p.functionCall)
              .map((p) => p.thoughtSignature);
      expect(signatures).toHaveLength(1);
      expect(up().issuedSignatures.has(signatures[0] as string)).toBe(true);
    },
  );

  it('a turn on a passed-through backend gets the text of an answer a translated one gave', async () => {
    const messages: ModelMessage[] = [{ role: 'user', content: 'hello there' }];
    const first = await generateText({ model: vercel()('anthropic:claude-mock-1'), messages, maxRetries: 0 });
    messages.push(...first.response.messages, { role: 'user', content: 'and again' });
    let text = '';
    const sent = await sentDuring(openaiUp, 'responses', async () => {
      ({ text } = await generateText({ model: vercel()('openai:gpt-4o-mini'), messages, maxRetries: 0 }));
    });
    expect(text).toBe('echo: and again');
    const input = list(((sent[0] as RecordedRequest).body as Json).input);
    expect(input.filter((i) => i.type === 'item_reference')).toEqual([]);
    expect(WIRES.responses.assistantText({ input })).toEqual(['echo: hello there']);
  });

  it('with store: false the SDK sends the items themselves, and the proxy keeps nothing', async () => {
    const noStore = { openai: { store: false } };
    const messages: ModelMessage[] = [{ role: 'user', content: 'hello there' }];
    const model = vercel()('anthropic:claude-mock-1');
    const first = await generateText({ model, messages, providerOptions: noStore, maxRetries: 0 });
    messages.push(...first.response.messages, { role: 'user', content: 'and again' });
    let text = '';
    const sent = await sentDuring(anthropicUp, 'anthropic', async () => {
      ({ text } = await generateText({ model, messages, providerOptions: noStore, maxRetries: 0 }));
    });
    expect(text).toBe('echo: and again');
    expect(WIRES.anthropic.assistantText((sent[0] as RecordedRequest).body as Json)).toEqual([
      'echo: hello there',
    ]);
    const stored = (id: string) =>
      fetch(`${proxy.url}/v1/responses/${id}`, { headers: { authorization: `Bearer ${KEY}` } }).then(
        (res) => res.status,
      );
    expect(await stored(first.response.id)).toBe(404);
    // With `store` on (the default) the same answer is kept.
    const kept = await generateText({ model, messages: [messages[0] as ModelMessage], maxRetries: 0 });
    expect(await stored(kept.response.id)).toBe(200);
  });

  it("another key's reference resolves to nothing: a 400 naming it, and nothing sent", async () => {
    const messages: ModelMessage[] = [{ role: 'user', content: 'hello there' }];
    const first = await generateText({ model: vercel()('anthropic:claude-mock-1'), messages, maxRetries: 0 });
    messages.push(...first.response.messages, { role: 'user', content: 'and again' });
    const other = createOpenAI({ baseURL: `${proxy.url}/v1`, apiKey: OTHER_KEY });
    let failure: unknown;
    const sent = await sentDuring(anthropicUp, 'anthropic', async () => {
      failure = await generateText({ model: other('anthropic:claude-mock-1'), messages, maxRetries: 0 }).then(
        () => null,
        (err: unknown) => err,
      );
    });
    expect(sent).toEqual([]);
    expect(failure).toMatchObject({ statusCode: 400 });
    const body = JSON.parse((failure as { responseBody: string }).responseBody) as { error: Json };
    expect(body.error).toMatchObject({ type: 'invalid_request_error', param: 'input[1].id' });
  });
});

// --- LangChain --------------------------------------------------------------------------------------------

/** The README's recipe, with the Responses API or chat completions. */
const langchain = (model: string, useResponsesApi: boolean) =>
  new ChatOpenAI({
    model,
    useResponsesApi,
    configuration: { baseURL: `${proxy.url}/v1` },
    apiKey: KEY,
    maxRetries: 0,
  });

const LANGCHAIN_APIS = [
  { api: 'responses' as const, useResponsesApi: true },
  { api: 'chat' as const, useResponsesApi: false },
];

describe.each(BACKENDS)('LangChain ChatOpenAI → $model', (backend) => {
  describe.each(LANGCHAIN_APIS)('useResponsesApi: $useResponsesApi', ({ api, useResponsesApi }) => {
    const wire = backend.wire[api];
    const weather = (ran: Ran) =>
      langchainTool(
        (args: { query: string; units: string }) => {
          ran.push(args);
          return weatherResult(args);
        },
        { name: 'weather', description: WEATHER, schema: weatherSchema },
      );

    it('invoke answers', async () => {
      let text = '';
      const sent = await sentDuring(backend.up(), wire, async () => {
        text = (await langchain(backend.model, useResponsesApi).invoke('hello there')).text;
      });
      expect(text).toBe('echo: hello there');
      expect(sent).toHaveLength(1);
    });

    it('stream streams the answer piece by piece', async () => {
      const deltas: string[] = [];
      const sent = await sentDuring(backend.up(), wire, async () => {
        for await (const chunk of await langchain(backend.model, useResponsesApi).stream('hello there'))
          if (chunk.text !== '') deltas.push(chunk.text);
      });
      expect(deltas.join('')).toBe('echo: hello there');
      expect(deltas.length).toBeGreaterThan(1);
      expect(sent.map((r) => WIRES[wire].streamed(r))).toEqual([true]);
    });

    it.each([false, true])(
      'bindTools calls the tool; a ToolMessage turn gets the answer (streamed: %s)',
      async (stream) => {
        const ran: Ran = [];
        const weatherTool = weather(ran);
        const bound = langchain(backend.model, useResponsesApi).bindTools([weatherTool]);
        const ask = async (messages: Parameters<typeof bound.invoke>[0]) => {
          if (!stream) return bound.invoke(messages);
          let whole: AIMessageChunk | undefined;
          for await (const chunk of await bound.stream(messages)) whole = whole ? whole.concat(chunk) : chunk;
          if (whole === undefined) throw new Error('no chunk streamed');
          return whole;
        };
        let text = '';
        let args: unknown;
        const sent = await sentDuring(backend.up(), wire, async () => {
          const human = new HumanMessage('Paris');
          const ai = await ask([human]);
          const call = ai.tool_calls?.[0];
          if (call === undefined) throw new Error(`no tool call in ${JSON.stringify(ai)}`);
          args = call.args;
          const result = await weatherTool.invoke(call);
          text = (await ask([human, ai, result])).text;
        });
        expect(args).toEqual({ query: 'Paris', units: 'metric' });
        expect(ran).toEqual([{ query: 'Paris', units: 'metric' }]);
        expect(text).toBe(backend.toolSaid);
        expectRoundTrip(sent, wire, stream);
      },
    );

    it('goes on with its messages in a second turn', async () => {
      const llm = langchain(backend.model, useResponsesApi);
      const human = new HumanMessage('hello there');
      const first = await llm.invoke([human]);
      let text = '';
      const sent = await sentDuring(backend.up(), wire, async () => {
        text = (await llm.invoke([human, first, new HumanMessage('and again')])).text;
      });
      expect(text).toBe('echo: and again');
      expect(sent.map((r) => WIRES[wire].assistantText(r.body as Json))).toEqual([['echo: hello there']]);
    });
  });
});
