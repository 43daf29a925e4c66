import Anthropic from '@anthropic-ai/sdk';
import { ApiError, GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startFakeProvider } from './fake-provider/index.mjs';

const KEY = 'matrix-proxy-key-0123456789';
const KEYS = {
  openai: 'sk-openai-provider-key-abcdefghijkl',
  anthropic: 'sk-ant-provider-key-abcdefghijkl',
  gemini: 'AIzaProviderKeyForGeminiTests0123456789',
};
const MODELS = {
  openai: 'openai:gpt-4o-mini',
  anthropic: 'anthropic:claude-3-5-haiku',
  gemini: 'gemini:gemini-2.0-flash',
};
type Side = keyof typeof MODELS;
const SIDES: Side[] = ['openai', 'anthropic', 'gemini'];

let proxy: ProxyProcess;
const upstreams: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  const [openai, anthropic, gemini] = await Promise.all([
    startFakeProvider(),
    startFakeProvider({ keys: { anthropic: KEYS.anthropic } }),
    startFakeProvider({ keys: { gemini: KEYS.gemini } }),
  ]);
  upstreams.push(openai, anthropic, gemini);
  proxy = await startProxyProcess(['--default-backend', 'openai'], {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    OPENAI_API_KEY: KEYS.openai,
    OPENAI_API_BASE_URL: openai.baseUrls.openai,
    ANTHROPIC_API_KEY: KEYS.anthropic,
    ANTHROPIC_API_BASE_URL: anthropic.baseUrls.anthropic,
    GEMINI_API_KEY: KEYS.gemini,
    GEMINI_API_BASE_URL: gemini.baseUrls.gemini,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await Promise.all(upstreams.map((u) => u.close()));
});

/** Each SDK, pointed at the proxy with only its base URL changed, authenticating its own default way. */
const clients = {
  openai: () => new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 }),
  anthropic: () => new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: KEY, maxRetries: 0 }),
  gemini: () => new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: proxy.url } }),
};

async function ask(client: Side, model: string, text: string, stream: boolean): Promise<string> {
  if (client === 'openai') {
    const c = clients.openai();
    if (!stream) {
      const res = await c.chat.completions.create({ model, messages: [{ role: 'user', content: text }] });
      return res.choices[0]?.message.content ?? '';
    }
    let out = '';
    const s = await c.chat.completions.create({
      model,
      stream: true,
      messages: [{ role: 'user', content: text }],
    });
    for await (const chunk of s) out += chunk.choices[0]?.delta.content ?? '';
    return out;
  }
  if (client === 'anthropic') {
    const c = clients.anthropic();
    const params = { model, max_tokens: 256, messages: [{ role: 'user' as const, content: text }] };
    if (!stream) {
      const res = await c.messages.create(params);
      return res.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
    }
    const s = c.messages.stream(params);
    return (await s.finalMessage()).content.map((b) => (b.type === 'text' ? b.text : '')).join('');
  }
  const c = clients.gemini();
  if (!stream) return (await c.models.generateContent({ model, contents: text })).text ?? '';
  let out = '';
  for await (const chunk of await c.models.generateContentStream({ model, contents: text }))
    out += chunk.text ?? '';
  return out;
}

describe('every SDK reaches every backend (the 3×3 matrix), streaming and not', () => {
  for (const client of SIDES) {
    for (const backend of SIDES) {
      for (const stream of [false, true]) {
        it(`${client} SDK → ${backend} backend${stream ? ', streamed' : ''}`, async () => {
          const text = `hello from ${client} to ${backend}`;
          expect((await ask(client, MODELS[backend], text, stream)).toLowerCase()).toBe(`echo: ${text}`);
        });
      }
    }
  }
});

describe('per-protocol errors reach each SDK as its own typed error', () => {
  it('a wrong proxy key raises each SDK’s authentication error', async () => {
    const openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'wrong-key-openai', maxRetries: 0 });
    await expect(openai.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);

    const anthropic = new Anthropic({
      baseURL: `${proxy.url}/anthropic`,
      apiKey: 'wrong-key-anthropic',
      maxRetries: 0,
    });
    const err = await anthropic.messages
      .create({ model: 'x', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((err as InstanceType<typeof Anthropic.AuthenticationError>).error).toEqual({
      type: 'error',
      error: {
        type: 'authentication_error',
        message:
          'Invalid API key: use the proxy API key, not a provider key. Send it in the "x-api-key: <key>" header (or as "Authorization: Bearer <key>").',
      },
    });

    const gemini = new GoogleGenAI({ apiKey: 'wrong-key-gemini', httpOptions: { baseUrl: proxy.url } });
    const gerr = await gemini.models
      .generateContent({ model: 'gemini-2.0-flash', contents: 'x' })
      .catch((e: unknown) => e);
    expect(gerr).toBeInstanceOf(ApiError);
    expect((gerr as ApiError).status).toBe(401);
    expect((gerr as ApiError).message).toContain('UNAUTHENTICATED');
  });

  it('a backend error keeps its status through translation', async () => {
    const err = await clients
      .anthropic()
      .messages.create({
        model: 'gemini:fault-status-429',
        max_tokens: 5,
        messages: [{ role: 'user', content: 'x' }],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
  });

  it('a mid-stream backend failure becomes the client protocol’s error', async () => {
    const c = clients.openai();
    const s = await c.chat.completions.create({
      model: 'anthropic:fault-error-mid-stream',
      stream: true,
      messages: [{ role: 'user', content: 'x' }],
    });
    await expect(
      (async () => {
        for await (const _ of s) void _;
      })(),
    ).rejects.toThrow();
  });

  it('an untranslatable field is a 400 naming it', async () => {
    const err = await clients
      .openai()
      .chat.completions.create({
        model: 'anthropic:claude',
        messages: [{ role: 'user', content: 'x' }],
        logit_bias: { '50256': -100 },
      })
      .catch((e: unknown) => e);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toContain('logit_bias');
  });
});

describe('tools round trip through translation', () => {
  it('OpenAI SDK against the Anthropic backend: tool call, then the tool result', async () => {
    const c = clients.openai();
    const tools = [
      {
        type: 'function' as const,
        function: {
          name: 'get_weather',
          description: 'Weather for a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        },
      },
    ];
    const first = await c.chat.completions.create({
      model: MODELS.anthropic,
      tools,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
    });
    const call = first.choices[0]?.message.tool_calls?.[0];
    expect(first.choices[0]?.finish_reason).toBe('tool_calls');
    expect(call?.type === 'function' && call.function.name).toBe('get_weather');
    const second = await c.chat.completions.create({
      model: MODELS.anthropic,
      tools,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        first.choices[0]!.message,
        { role: 'tool', tool_call_id: call!.id, content: 'sunny' },
      ],
    });
    expect(second.choices[0]?.message.content).toContain('sunny');
  });

  describe('an OpenAI-protocol backend streaming two tool calls that both carry wire index 0', () => {
    // Some OpenAI-compatible servers number every call 0; the new id is what starts the second call.
    const model = 'openai:fault-tools-reused-index';
    const prompt = 'Weather and time in Paris?';

    it('reaches an Anthropic SDK client as two tool_use blocks with their own arguments', async () => {
      const final = await clients
        .anthropic()
        .messages.stream({
          model,
          max_tokens: 256,
          tools: [
            { name: 'weather', input_schema: { type: 'object' } },
            { name: 'clock', input_schema: { type: 'object' } },
          ],
          messages: [{ role: 'user', content: prompt }],
        })
        .finalMessage();
      expect(final.stop_reason).toBe('tool_use');
      expect(final.content).toEqual([
        { type: 'tool_use', id: 'call_city', name: 'weather', input: { city: 'Paris' } },
        { type: 'tool_use', id: 'call_tz', name: 'clock', input: { tz: 'CET' } },
      ]);
    });

    it('reaches a Gemini SDK client as two function calls with their own arguments', async () => {
      const calls: unknown[] = [];
      for await (const chunk of await clients.gemini().models.generateContentStream({
        model,
        contents: prompt,
        config: {
          tools: [{ functionDeclarations: [{ name: 'weather' }, { name: 'clock' }] }],
        },
      })) {
        calls.push(...(chunk.functionCalls ?? []));
      }
      expect(calls).toEqual([
        { id: 'call_city', name: 'weather', args: { city: 'Paris' } },
        { id: 'call_tz', name: 'clock', args: { tz: 'CET' } },
      ]);
    });
  });

  it('Gemini SDK against the OpenAI-protocol mock backend keeps a model name containing ":"', async () => {
    const text = await ask('gemini', 'mock:some-model', 'colons survive', false);
    expect(text).toBe('colons survive');
  });

  it('lists models in each protocol', async () => {
    const list = await clients.anthropic().models.list();
    expect(list.data.map((m) => m.id)).toContain('gpt-4o-mini');
    const pager = await clients.gemini().models.list();
    const names: string[] = [];
    for await (const m of pager) names.push(m.name ?? '');
    expect(names.join(',')).toContain('gpt-4o-mini');
  });
});
