/**
 * Translation fidelity through the running proxy with the official SDKs (README, "Fields that do not
 * translate"): Claude Code's and Gemini CLI's default shapes reach other backends with their hints dropped
 * with notice (x-proxy-dropped, the capture, a debug log line of names only), reasoning controls and
 * structured output translated, and what would change the answer still a 400 naming the field.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI, HarmBlockThreshold, HarmCategory, ThinkingLevel } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { backendsAt } from './reliability/support.js';

const KEY = 'fidelity-proxy-key-0123456789';
const ANSWER_TOOL = 'lip_structured_answer';
/** A value the client sends in a dropped field: it must reach no log and no backend. */
const SECRET_HINT = 'user-hint-value-7f3a9c';

let upstream: FakeProvider;
let proxy: ProxyProcess;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lip-fidelity-'));
  upstream = await startFakeProvider();
  proxy = await startProxyProcess(
    ['--default-backend', 'openai', '--log-level', 'debug', '--capture-file', join(dir, 'cap.jsonl')],
    backendsAt(upstream.url, KEY),
  );
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

const anthropic = () => new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: KEY, maxRetries: 0 });
const openai = () => new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 });
const gemini = () => new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: proxy.url } });
/** What the fake provider last received. */
const received = () => upstream.requests.at(-1)?.body as Record<string, unknown>;

/** Claude Code 2.1's default request: thinking, effort, context management, a system message, cache hints. */
function claudeCodeParams(maxTokens: number) {
  return {
    model: 'openai:gpt-4o-mini',
    max_tokens: maxTokens,
    system: [{ type: 'text', text: 'You are Claude Code.', cache_control: { type: 'ephemeral' } }],
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'Fix it', cache_control: { type: 'ephemeral' } }] },
      { role: 'system', content: 'Plan mode is on.' },
      { role: 'user', content: 'Go' },
    ],
    thinking: { type: 'enabled', budget_tokens: maxTokens - 1 },
    output_config: { effort: 'high' },
    context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
    metadata: { user_id: SECRET_HINT },
  } as unknown as Anthropic.MessageCreateParamsNonStreaming;
}

const CLAUDE_CODE_DROPPED =
  'context_management, metadata, system[0].cache_control, messages[0].content[0].cache_control';

function expectClaudeCodeMapped(maxTokens: number): void {
  const body = received();
  expect(body.reasoning_effort).toBe('high');
  expect(body.max_completion_tokens).toBe(maxTokens);
  expect(body.messages).toEqual([
    { role: 'system', content: 'You are Claude Code.\n\nPlan mode is on.' },
    { role: 'user', content: 'Fix it' },
    { role: 'user', content: 'Go' },
  ]);
  for (const field of ['thinking', 'output_config', 'context_management', 'metadata', 'max_tokens'])
    expect(body).not.toHaveProperty(field);
}

const dropIds: string[] = [];

describe("Claude Code's default request, Anthropic SDK → OpenAI-protocol backend", () => {
  it('answers 200, names exactly the dropped fields, and the backend gets the mapped request', async () => {
    const { data, response } = await anthropic().messages.create(claudeCodeParams(16000)).withResponse();
    expect(data.content).toEqual([{ type: 'text', text: 'echo: Go' }]);
    expect(response.headers.get('x-proxy-dropped')).toBe(CLAUDE_CODE_DROPPED);
    expectClaudeCodeMapped(16000);
    dropIds.push(String(response.headers.get('x-request-id')));
  });

  it('streamed too', async () => {
    const params = { ...claudeCodeParams(32000), stream: true } as Anthropic.MessageCreateParamsStreaming;
    const { data: stream, response } = await anthropic().messages.create(params).withResponse();
    let text = '';
    for await (const event of stream)
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    expect(text).toBe('echo: Go');
    expect(response.headers.get('x-proxy-dropped')).toBe(CLAUDE_CODE_DROPPED);
    expectClaudeCodeMapped(32000);
  });

  it('to a Gemini backend: the thinking budget', async () => {
    const { response } = await anthropic()
      .messages.create({ ...claudeCodeParams(16000), model: 'gemini:gemini-2.5-flash' })
      .withResponse();
    expect(response.headers.get('x-proxy-dropped')).toBe(CLAUDE_CODE_DROPPED);
    expect(received().generationConfig).toEqual({
      maxOutputTokens: 16000,
      thinkingConfig: { thinkingBudget: 15999 },
    });
  });
});

describe('Gemini CLI thinkingConfig, @google/genai → OpenAI-protocol backend', () => {
  it('maps a thinking budget to reasoning_effort and names safetySettings and topK as dropped', async () => {
    const res = await gemini().models.generateContent({
      model: 'openai:gpt-4o-mini',
      contents: 'hello',
      config: {
        thinkingConfig: { includeThoughts: true, thinkingBudget: 8192 },
        safetySettings: [
          { category: HarmCategory.HARM_CATEGORY_HARASSMENT, threshold: HarmBlockThreshold.BLOCK_NONE },
        ],
        topK: 40,
      },
    });
    expect(res.text).toBe('echo: hello');
    expect(res.sdkHttpResponse?.headers?.['x-proxy-dropped']).toBe('safetySettings, generationConfig.topK');
    expect(received()).toMatchObject({ reasoning_effort: 'medium' });
    expect(received()).not.toHaveProperty('top_k');
  });

  it('maps a thinking level, streamed', async () => {
    let text = '';
    for await (const chunk of await gemini().models.generateContentStream({
      model: 'openai:gpt-4o-mini',
      contents: 'think hard',
      config: { thinkingConfig: { includeThoughts: true, thinkingLevel: ThinkingLevel.HIGH } },
    }))
      text += chunk.text ?? '';
    expect(text).toBe('echo: think hard');
    expect(received()).toMatchObject({ reasoning_effort: 'high', stream: true });
  });
});

describe('structured output across every pair', () => {
  const schema = {
    type: 'object',
    properties: { query: { type: 'string' }, units: { type: 'string' } },
    required: ['query', 'units'],
  };
  const answer = (text: string) => JSON.stringify({ query: text, units: 'metric' });

  it('OpenAI SDK → Anthropic backend: a forced answer tool, back as JSON text, whole and streamed', async () => {
    const params = {
      model: 'anthropic:claude-x',
      messages: [{ role: 'user' as const, content: 'Oslo' }],
      response_format: {
        type: 'json_schema' as const,
        json_schema: { name: 'place', schema, strict: true },
      },
    };
    const res = await openai().chat.completions.create(params);
    expect(res.choices[0]?.message.content).toBe(answer('Oslo'));
    expect(res.choices[0]?.finish_reason).toBe('stop');
    expect(received()).toMatchObject({
      tools: [{ name: ANSWER_TOOL, input_schema: schema }],
      tool_choice: { type: 'tool', name: ANSWER_TOOL },
    });

    let text = '';
    let finish: string | null | undefined;
    for await (const chunk of await openai().chat.completions.create({ ...params, stream: true })) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(answer('Oslo'));
    expect(finish).toBe('stop');
  });

  it('OpenAI SDK → Gemini backend: responseMimeType + responseJsonSchema', async () => {
    await openai().chat.completions.create({
      model: 'gemini:gemini-x',
      messages: [{ role: 'user', content: 'x' }],
      response_format: { type: 'json_schema', json_schema: { name: 'place', schema } },
    });
    expect(received().generationConfig).toEqual({
      responseMimeType: 'application/json',
      responseJsonSchema: schema,
    });
  });

  it.each([
    ['openai:gpt-x', (b: Record<string, unknown>) => b.response_format],
    ['gemini:gemini-x', (b: Record<string, unknown>) => b.generationConfig],
  ])('Anthropic SDK output_config.format → %s', async (model, read) => {
    const res = await anthropic().messages.create({
      model,
      max_tokens: 100,
      messages: [{ role: 'user', content: 'x' }],
      output_config: { format: { type: 'json_schema', schema } },
    });
    expect(res.stop_reason).toBe('end_turn');
    expect(read(received())).toEqual(
      model.startsWith('openai')
        ? { type: 'json_schema', json_schema: { name: 'response', schema } }
        : { maxOutputTokens: 100, responseMimeType: 'application/json', responseJsonSchema: schema },
    );
  });

  it('@google/genai responseSchema → OpenAI backend', async () => {
    await gemini().models.generateContent({
      model: 'openai:gpt-x',
      contents: 'x',
      config: { responseMimeType: 'application/json', responseJsonSchema: schema },
    });
    expect(received().response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'response', schema },
    });
  });

  it('@google/genai responseSchema → Anthropic backend: JSON text, whole and streamed', async () => {
    const params = {
      model: 'anthropic:claude-x',
      contents: 'Rome',
      config: { responseMimeType: 'application/json', responseJsonSchema: schema },
    };
    const res = await gemini().models.generateContent(params);
    expect(res.text).toBe(answer('Rome'));
    expect(res.candidates?.[0]?.finishReason).toBe('STOP');
    let text = '';
    for await (const chunk of await gemini().models.generateContentStream(params)) text += chunk.text ?? '';
    expect(text).toBe(answer('Rome'));
  });
});

describe('what would change the answer is still a 400 naming the field', () => {
  it('n > 1 to Anthropic', async () => {
    const err = await openai()
      .chat.completions.create({
        model: 'anthropic:claude-x',
        n: 2,
        messages: [{ role: 'user', content: 'x' }],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).message).toContain("'n'");
  });
});

describe('the notice reaches the debug log and the capture, names only', () => {
  it('after the proxy has stopped and flushed', async () => {
    expect(await proxy.stop()).toBe(0);
    const [id] = dropIds;
    const logged = proxy
      .stdout()
      .split('\n')
      .filter((line) => line.includes('"msg":"Request fields dropped with notice"'))
      .map((line) => JSON.parse(line) as { request_id: string; dropped: string[] });
    expect(logged.find((l) => l.request_id === id)?.dropped).toEqual(CLAUDE_CODE_DROPPED.split(', '));
    expect(proxy.stdout()).not.toContain(SECRET_HINT);

    const outbound = readFileSync(join(dir, 'cap.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { request_id: string; direction: string; metadata?: unknown })
      .find((e) => e.request_id === id && e.direction === 'outbound_request');
    expect(outbound?.metadata).toMatchObject({ dropped: CLAUDE_CODE_DROPPED.split(', ') });
  });
});
