import Anthropic from '@anthropic-ai/sdk';
import { ApiError, GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';

// A backend that reaches its output limit inside a tool call (the fake's `cut-call` model): every client,
// whole or streamed, is told the answer failed — never handed the cut call as a whole one (SPEC §9.2).
// A client of the backend's own protocol gets the backend's answer as it is (pass-through): not here; the
// `openai` backend speaks the Responses API too.
const KEY = 'output-limit-proxy-key-0123456789';
const CUT = "Backend reached its output token limit inside a tool call's arguments: the call is incomplete";

let proxy: ProxyProcess;
let provider: FakeProvider;

beforeAll(async () => {
  provider = await startFakeProvider();
  proxy = await startProxyProcess(['--default-backend', 'openai'], {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    OPENAI_API_KEY: 'sk-openai-provider-key-abcdefghijkl',
    OPENAI_API_BASE_URL: provider.baseUrls.openai,
    ANTHROPIC_API_KEY: 'sk-ant-provider-key-abcdefghijkl',
    ANTHROPIC_API_BASE_URL: provider.baseUrls.anthropic,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await provider?.close();
});

const BACKENDS = ['anthropic:claude-cut-call', 'openai:gpt-cut-call'] as const;
const WRITE_FILE = {
  name: 'write_file',
  description: 'Writes a file',
  parameters: {
    type: 'object' as const,
    properties: { file_path: { type: 'string' }, content: { type: 'string' } },
    required: ['file_path', 'content'],
  },
};

const openai = () => new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 });
const anthropic = () => new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: KEY, maxRetries: 0 });
const gemini = () => new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: proxy.url } });

const chatParams = (model: string) => ({
  model,
  messages: [{ role: 'user' as const, content: 'write the file' }],
  tools: [{ type: 'function' as const, function: WRITE_FILE }],
});
const messagesParams = (model: string) => ({
  model,
  max_tokens: 1024,
  messages: [{ role: 'user' as const, content: 'write the file' }],
  tools: [
    { name: WRITE_FILE.name, description: WRITE_FILE.description, input_schema: WRITE_FILE.parameters },
  ],
});
const responsesParams = (model: string) => ({
  model,
  input: 'write the file',
  tools: [{ type: 'function' as const, strict: false, ...WRITE_FILE }],
});
const geminiParams = (model: string) => ({
  model,
  contents: 'write the file',
  config: {
    tools: [
      { functionDeclarations: [{ name: WRITE_FILE.name, parametersJsonSchema: WRITE_FILE.parameters }] },
    ],
  },
});

describe.each(BACKENDS)('%s: the output limit inside a tool call', (model) => {
  it('whole: a 502 in every client protocol', async () => {
    const refusal = { status: 502, message: expect.stringContaining(CUT) as string };
    if (!model.startsWith('openai:'))
      await expect(openai().chat.completions.create(chatParams(model))).rejects.toMatchObject(refusal);
    if (!model.startsWith('anthropic:'))
      await expect(anthropic().messages.create(messagesParams(model))).rejects.toMatchObject(refusal);
    if (!model.startsWith('openai:'))
      await expect(openai().responses.create(responsesParams(model))).rejects.toMatchObject(refusal);
    const refused = await gemini()
      .models.generateContent(geminiParams(model))
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).status).toBe(502);
    expect((refused as ApiError).message).toContain(CUT);
  });

  it('streamed: the SDKs raise the error event instead of handing on the cut call', async () => {
    const chat = async () => {
      const stream = await openai().chat.completions.create({ ...chatParams(model), stream: true });
      for await (const chunk of stream) void chunk;
    };
    if (!model.startsWith('openai:')) await expect(chat()).rejects.toThrow(CUT);
    if (!model.startsWith('anthropic:'))
      await expect(anthropic().messages.stream(messagesParams(model)).finalMessage()).rejects.toThrow(CUT);
    if (!model.startsWith('openai:'))
      await expect(openai().responses.stream(responsesParams(model)).finalResponse()).rejects.toThrow(CUT);
  });
});

describe('a Gemini client that names no output limit, to an Anthropic backend', () => {
  it.each([
    ['anthropic:claude-sonnet-4-5-20250929', 64000],
    ['anthropic:claude-opus-4-1-20250805', 32000],
    ['anthropic:claude-3-5-haiku-20241022', 8192],
    ['anthropic:compatible-model', 4096],
  ])('%s is sent max_tokens %i, and the answer is whole', async (model, maxTokens) => {
    const res = await gemini().models.generateContent({ model, contents: 'hello' });
    expect(res.text).toBe('echo: hello');
    const sent = provider.requests.filter((r) => r.url.startsWith('/v1/messages')).at(-1);
    expect((sent?.body as { max_tokens?: number }).max_tokens).toBe(maxTokens);
  });
});
