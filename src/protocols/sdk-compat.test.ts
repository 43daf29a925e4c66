/**
 * End to end through the official SDKs: each SDK talks to the proxy's own chat lane and pipeline, in process,
 * in front of real backend classes and a fake provider over HTTP (the client's protocol translated to
 * another backend's and back). If an SDK reassembles the text and tool calls and raises its own error type
 * on failure, our wire output satisfies it.
 */
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI, type FunctionDeclaration } from '@google/genai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBackend } from '../backends/http-backend.js';
import { UpstreamHttp } from '../backends/http.js';
import { HTTP_PROFILES } from '../backends/profiles.js';
import { BackendRegistry } from '../backends/registry.js';
import type { Backend } from '../backends/types.js';
import { Redactor } from '../redaction/redactor.js';
import { NO_POLICIES } from '../teams/policies.js';
import { answerFailure } from '../server/failures.js';
import { createChatLane, type ChatLane } from '../server/chat-lane.js';
import { laneHeaders } from '../server/cors.js';
import { SECURITY_HEADERS } from '../pipeline/respond.js';
import { createChatRoutes } from '../server/routes.js';
import type { Protocol } from './types.js';
import { startFakeProvider, type FakeProvider } from '../../test/fake-provider/index.mjs';

let anthropicUp: FakeProvider;
let geminiUp: FakeProvider;
let openaiUp: FakeProvider;
const backends = {} as Record<Protocol, Backend>;
const upstreamHttp = new UpstreamHttp({ timeoutMs: 30_000 });
let server: Server;
let baseUrl: string;
/** Which backend the next requests go to (tests run sequentially within this file). */
let target: Protocol = 'anthropic';

beforeAll(async () => {
  [anthropicUp, geminiUp, openaiUp] = await Promise.all([
    startFakeProvider(),
    startFakeProvider(),
    startFakeProvider(),
  ]);
  backends.anthropic = new HttpBackend(
    HTTP_PROFILES.anthropic,
    {
      name: 'anthropic',
      baseUrl: anthropicUp.baseUrls.anthropic,
      apiKey: 'k',
      apiKeyEnv: 'ANTHROPIC_API_KEY',
    },
    upstreamHttp,
  );
  backends.gemini = new HttpBackend(
    HTTP_PROFILES.gemini,
    {
      name: 'gemini',
      baseUrl: geminiUp.baseUrls.gemini,
      apiKey: 'k',
      apiKeyEnv: 'GEMINI_API_KEY',
    },
    upstreamHttp,
  );
  backends.openai = new HttpBackend(
    HTTP_PROFILES.openai,
    {
      name: 'openai',
      baseUrl: openaiUp.baseUrls.openai,
      apiKey: 'k',
      apiKeyEnv: 'OPENAI_API_KEY',
    },
    upstreamHttp,
  );
  // The real chat lane and pipeline, in process, one per backend the tests aim at (target).
  const lanes = {} as Record<Protocol, ChatLane>;
  for (const protocol of ['anthropic', 'gemini', 'openai'] as const) {
    const registry = new BackendRegistry(Object.values(backends), protocol);
    const redactor = new Redactor([]);
    lanes[protocol] = createChatLane({
      routes: createChatRoutes({
        registry,
        redactor: () => redactor,
        scrubPrompts: false,
        sessions: null,
        loopRepeats: 0,
        shellGuard: null,
        policies: () => NO_POLICIES,
        capture: null,
        log: { error: () => undefined },
        answerFailure: (to, err) =>
          answerFailure(to, err, { error: () => undefined }, (t) => redactor.redact(t)),
      }),
      auth: null,
      hostCheck: null,
      trustProxy: false,
      maxBodyBytes: 10 * 1024 * 1024,
      recordAccess: () => undefined,
      headers: laneHeaders(SECURITY_HEADERS, null),
      isOpen: () => true,
      log: { error: () => undefined },
      redact: (text) => redactor.redact(text),
    });
  }
  server = createServer((req, res) => {
    if (lanes[target](req, res)) return;
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await Promise.all([anthropicUp.close(), geminiUp.close(), openaiUp.close(), upstreamHttp.close()]);
});

const openai = () => new OpenAI({ apiKey: 'proxy-key', baseURL: `${baseUrl}/v1`, maxRetries: 0 });
const anthropic = () =>
  new Anthropic({ apiKey: 'proxy-key', baseURL: `${baseUrl}/anthropic`, maxRetries: 0 });
const genai = () => new GoogleGenAI({ apiKey: 'proxy-key', httpOptions: { baseUrl } });

/** Backend model names that echo text, and that fail mid-stream, per backend. */
const MODELS: Record<Protocol, { ok: string; midstream: string }> = {
  anthropic: { ok: 'claude-mock-1', midstream: 'fault-error-mid-stream' },
  gemini: { ok: 'gemini-mock-flash', midstream: 'fault-error-mid-stream' },
  openai: { ok: 'gpt-4o-mini', midstream: 'fault-reset-mid-stream' },
  responses: { ok: 'gpt-4o-mini', midstream: 'fault-reset-mid-stream' },
};
const echo = (_b: Protocol, text: string): string => `echo: ${text}`;
const QUESTION = 'Grüße 👋 aus Zürich';
const weatherParams = {
  type: 'object',
  properties: { query: { type: 'string' }, units: { type: 'string' } },
};

describe.each(['anthropic', 'gemini'] as const)('openai SDK → %s backend', (b) => {
  beforeAll(() => {
    target = b;
  });

  it('gets a completion, streamed text and streamed tool-call arguments', async () => {
    const client = openai();
    const plain = await client.chat.completions.create({
      model: MODELS[b].ok,
      messages: [{ role: 'user', content: QUESTION }],
    });
    expect(plain.choices[0]?.message.content).toBe(echo(b, QUESTION));
    expect(plain.choices[0]?.finish_reason).toBe('stop');

    // Without `stream_options.include_usage` every chunk has a choice, as from OpenAI: the common
    // `chunk.choices[0].delta` read does not throw.
    let text = '';
    for await (const chunk of await client.chat.completions.create({
      model: MODELS[b].ok,
      stream: true,
      messages: [{ role: 'user', content: QUESTION }],
    })) {
      expect(chunk.choices).toHaveLength(1);
      expect(chunk.usage ?? null).toBeNull();
      text += chunk.choices[0]!.delta.content ?? '';
    }
    expect(text).toBe(echo(b, QUESTION));

    const runner = client.chat.completions.stream({
      model: MODELS[b].ok,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Paris' }],
      tools: [{ type: 'function', function: { name: 'weather', parameters: weatherParams } }],
    });
    const final = await runner.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function.name).toBe('weather');
    expect(call?.type === 'function' && JSON.parse(call.function.arguments)).toEqual({
      query: 'Paris',
      units: 'metric',
    });
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    expect(final.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('raises the SDK error for a backend failure before and during the stream', async () => {
    const client = openai();
    await expect(
      client.chat.completions.create({
        model: 'fault-status-429',
        messages: [{ role: 'user', content: 'x' }],
      }),
    ).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    const consume = async () => {
      for await (const _ of await client.chat.completions.create({
        model: MODELS[b].midstream,
        stream: true,
        messages: [{ role: 'user', content: QUESTION }],
      })) {
        // drain
      }
    };
    await expect(consume()).rejects.toBeInstanceOf(OpenAI.APIError);
  });
});

describe.each(['openai', 'gemini'] as const)('anthropic SDK → %s backend', (b) => {
  beforeAll(() => {
    target = b;
  });

  it('gets a message and a streamed message', async () => {
    const client = anthropic();
    const msg = await client.messages.create({
      model: MODELS[b].ok,
      max_tokens: 100,
      messages: [{ role: 'user', content: QUESTION }],
    });
    expect(msg.content).toEqual([{ type: 'text', text: echo(b, QUESTION) }]);
    const final = await client.messages
      .stream({ model: MODELS[b].ok, max_tokens: 100, messages: [{ role: 'user', content: QUESTION }] })
      .finalMessage();
    expect(final.content).toMatchObject([{ type: 'text', text: echo(b, QUESTION) }]);
    expect(final.stop_reason).toBe('end_turn');
  });

  it('raises the SDK error for a backend failure during the stream', async () => {
    const stream = anthropic().messages.stream({
      model: MODELS[b].midstream,
      max_tokens: 100,
      messages: [{ role: 'user', content: QUESTION }],
    });
    await expect(stream.finalMessage()).rejects.toBeInstanceOf(Anthropic.APIError);
  });
});

describe('anthropic SDK → gemini backend, tools', () => {
  beforeAll(() => {
    target = 'gemini';
  });

  it('reassembles a tool_use block and finishes a tool round trip', async () => {
    const client = anthropic();
    const tools = [{ name: 'weather', input_schema: weatherParams as Anthropic.Tool.InputSchema }];
    const first = await client.messages
      .stream({
        model: 'gemini-mock-flash',
        max_tokens: 100,
        tools,
        messages: [{ role: 'user', content: 'Oslo' }],
      })
      .finalMessage();
    const use = first.content.find((c) => c.type === 'tool_use');
    expect(use).toMatchObject({
      type: 'tool_use',
      name: 'weather',
      input: { query: 'Oslo', units: 'metric' },
    });
    expect(first.stop_reason).toBe('tool_use');
    const second = await client.messages.create({
      model: 'gemini-mock-flash',
      max_tokens: 100,
      tools,
      messages: [
        { role: 'user', content: 'Oslo' },
        { role: 'assistant', content: first.content },
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: (use as { id: string }).id, content: 'snow' }],
        },
      ],
    });
    expect(second.content).toEqual([{ type: 'text', text: 'Tool said: {"output":"snow"}' }]);
    // The function response reached Gemini named after its call, though Anthropic only gave the call id.
    const sent = geminiUp.requests.at(-1)?.body as { contents: Array<{ parts: unknown[] }> };
    expect(sent.contents.at(-1)?.parts).toEqual([
      { functionResponse: { id: 'call_fakeResponse1_0', name: 'weather', response: { output: 'snow' } } },
    ]);
  });
});

describe.each(['openai', 'anthropic'] as const)('@google/genai SDK → %s backend', (b) => {
  beforeAll(() => {
    target = b;
  });

  it('gets generateContent and streamed chunks', async () => {
    const ai = genai();
    const res = await ai.models.generateContent({ model: MODELS[b].ok, contents: QUESTION });
    expect(res.text).toBe(echo(b, QUESTION));
    let text = '';
    for await (const chunk of await ai.models.generateContentStream({
      model: MODELS[b].ok,
      contents: QUESTION,
    }))
      text += chunk.text ?? '';
    expect(text).toBe(echo(b, QUESTION));
  });

  it('raises the SDK error for a failure during the stream', async () => {
    const consume = async () => {
      for await (const _ of await genai().models.generateContentStream({
        model: MODELS[b].midstream,
        contents: QUESTION,
      })) {
        // drain
      }
    };
    await expect(consume()).rejects.toMatchObject({ name: 'ApiError', status: expect.any(Number) });
  });
});

describe('@google/genai SDK → anthropic backend, tools', () => {
  beforeAll(() => {
    target = 'anthropic';
  });

  it('receives a whole function call assembled from streamed input_json deltas', async () => {
    const decl: FunctionDeclaration = { name: 'weather', parametersJsonSchema: weatherParams };
    const calls = [];
    for await (const chunk of await genai().models.generateContentStream({
      model: 'claude-mock-1',
      contents: 'Lima',
      config: { tools: [{ functionDeclarations: [decl] }] },
    })) {
      calls.push(...(chunk.functionCalls ?? []));
    }
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ name: 'weather', args: { query: 'Lima', units: 'metric' } });
    const sent = anthropicUp.requests.at(-1)?.body as Record<string, unknown>;
    expect(sent).toMatchObject({
      max_tokens: 4096,
      stream: true,
      tools: [{ name: 'weather', input_schema: weatherParams }],
    });
  });
});
