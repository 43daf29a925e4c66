/**
 * Reasoning controls through the running proxy (README, "Reasoning controls"): the official `openai` SDK's
 * `responses.create({ reasoning })` translated to an Anthropic, a Gemini and a chat-completions backend, and
 * a chat client's `reasoning_effort` to a Responses-only backend, each checked by what the fake provider
 * received.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { backendsAt } from './reliability/support.js';

const KEY = 'responses-reasoning-proxy-key-0123456789';

let upstream: FakeProvider;
let proxy: ProxyProcess;
let dir: string;

beforeAll(async () => {
  upstream = await startFakeProvider();
  dir = mkdtempSync(path.join(tmpdir(), 'responses-reasoning-e2e-'));
  const config = path.join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      'backends:',
      `  chat:\n    type: openai\n    base_url: ${upstream.baseUrls.openai}\n    api_key_env: OPENAI_API_KEY`,
      `  resp:\n    type: responses\n    base_url: ${upstream.baseUrls.responses}\n    api_key_env: OPENAI_API_KEY`,
      '',
    ].join('\n'),
  );
  proxy = await startProxyProcess(
    ['--config', config, '--default-backend', 'openai'],
    backendsAt(upstream.url, KEY),
  );
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Body = Record<string, unknown>;

const openai = () => new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 });

/** Runs `turn` and returns what it answered with the one request the backend received for it. */
async function recorded<T>(turn: () => Promise<T>): Promise<{ answer: T; sent: Body; url: string }> {
  const before = upstream.requests.length;
  const answer = await turn();
  expect(upstream.requests.length).toBe(before + 1);
  const request = upstream.requests[before];
  return { answer, sent: request?.body as Body, url: request?.url ?? '' };
}

describe('the openai SDK, responses.create({ reasoning })', () => {
  it('to an Anthropic backend: reasoning.effort becomes a thinking budget', async () => {
    const { answer, sent, url } = await recorded(() =>
      openai()
        .responses.create({ model: 'anthropic:claude-mock-1', input: 'hi', reasoning: { effort: 'low' } })
        .withResponse(),
    );
    expect(url).toBe('/v1/messages');
    expect(sent.thinking).toEqual({ type: 'enabled', budget_tokens: 4096 });
    expect(sent.max_tokens).toBe(8192);
    expect(answer.response.headers.get('x-proxy-dropped')).toBeNull();
    expect(answer.data.reasoning).toEqual({ effort: 'low', summary: null });
  });

  it('to an Anthropic backend beside a temperature it refuses thinking with: dropped with notice', async () => {
    const { answer, sent } = await recorded(() =>
      openai()
        .responses.create({
          model: 'anthropic:claude-mock-1',
          input: 'hi',
          temperature: 0.2,
          reasoning: { effort: 'high', summary: 'auto' },
        })
        .withResponse(),
    );
    expect(sent).not.toHaveProperty('thinking');
    expect(sent.temperature).toBe(0.2);
    expect(answer.response.headers.get('x-proxy-dropped')).toBe('reasoning.effort, reasoning.summary');
  });

  it('to a Gemini backend, streamed: thinkingConfig with the level’s budget, thoughts asked for', async () => {
    const { answer, sent, url } = await recorded(() =>
      openai()
        .responses.stream({
          model: 'gemini:gemini-mock-flash',
          input: 'hi',
          reasoning: { effort: 'high', summary: 'auto' },
        })
        .finalResponse(),
    );
    expect(url).toBe('/v1beta/models/gemini-mock-flash:streamGenerateContent?alt=sse');
    expect(sent.generationConfig).toEqual({
      thinkingConfig: { thinkingBudget: 24576, includeThoughts: true },
    });
    expect(answer.status).toBe('completed');
  });

  it('to a chat-completions backend: reasoning_effort, the summary not dropped', async () => {
    const { answer, sent } = await recorded(() =>
      openai()
        .responses.create({
          model: 'chat:gpt-4o-mini',
          input: 'hi',
          reasoning: { effort: 'minimal', summary: 'detailed' },
        })
        .withResponse(),
    );
    expect(sent.reasoning_effort).toBe('minimal');
    expect(answer.response.headers.get('x-proxy-dropped')).toBeNull();
  });

  it('effort none, or no reasoning at all: nothing reaches the backend', async () => {
    for (const reasoning of [{ effort: 'none' as const }, undefined]) {
      const { answer, sent } = await recorded(() =>
        openai()
          .responses.create({
            model: 'anthropic:claude-mock-1',
            input: 'hi',
            ...(reasoning ? { reasoning } : {}),
          })
          .withResponse(),
      );
      expect(sent).not.toHaveProperty('thinking');
      expect(answer.response.headers.get('x-proxy-dropped')).toBeNull();
    }
  });

  it('an effort the table does not know is a 400 naming reasoning.effort', async () => {
    const before = upstream.requests.length;
    const failure = await openai()
      .responses.create({
        model: 'anthropic:claude-mock-1',
        input: 'hi',
        reasoning: { effort: 'extreme' as 'high' },
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(failure).toBeInstanceOf(OpenAI.BadRequestError);
    expect((failure as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('reasoning.effort');
    expect(upstream.requests.length).toBe(before);
  });
});

describe('a chat client’s reasoning_effort to a Responses-only backend', () => {
  it.each([
    ['whole', false],
    ['streamed', true],
  ])('becomes reasoning.effort (%s)', async (_, stream) => {
    const messages = [{ role: 'user' as const, content: 'hi' }];
    const { sent, url } = await recorded(async () => {
      if (!stream)
        return openai().chat.completions.create({
          model: 'resp:gpt-4o-mini',
          messages,
          reasoning_effort: 'medium',
        });
      const chunks = await openai().chat.completions.create({
        model: 'resp:gpt-4o-mini',
        messages,
        reasoning_effort: 'medium',
        stream: true,
      });
      for await (const chunk of chunks) void chunk;
      return undefined;
    });
    expect(url).toBe('/v1/responses');
    expect(sent.reasoning).toEqual({ effort: 'medium' });
    expect(sent).not.toHaveProperty('reasoning_effort');
  });

  it('without reasoning_effort sends no reasoning', async () => {
    const { sent } = await recorded(() =>
      openai().chat.completions.create({
        model: 'resp:gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
      }),
    );
    expect(sent).not.toHaveProperty('reasoning');
  });
});
