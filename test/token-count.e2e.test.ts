import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { backendsAt } from './reliability/support.js';

/**
 * Token counting (README): Anthropic `POST /anthropic/v1/messages/count_tokens` and Gemini
 * `POST /v1beta/models/{model}:countTokens` pass through to a backend of the same protocol (the fake
 * provider answers 1000 + the characters of the turns' text, a number no estimate gives) and are estimated
 * locally for any other, in each protocol's shape; through exact HTTP and the official SDKs.
 */
const KEY = 'token-count-proxy-key-0123456789';
const TEXT = 'Count the tokens of this short English sentence, please.';

let upstream: FakeProvider;
let proxy: ProxyProcess;

beforeAll(async () => {
  upstream = await startFakeProvider();
  proxy = await startProxyProcess(['--default-backend', 'openai'], backendsAt(upstream.url, KEY));
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
});

async function post(path: string, body: unknown, headers: Record<string, string> = { 'x-api-key': KEY }) {
  const res = await fetch(`${proxy.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

const anthropicBody = (model: string) => ({ model, messages: [{ role: 'user', content: TEXT }] });
const geminiBody = { contents: [{ role: 'user', parts: [{ text: TEXT }] }] };

describe('Anthropic count_tokens', () => {
  it('passes through to an Anthropic backend, headers allowed and the provider key in place of the proxy key', async () => {
    const before = upstream.requests.length;
    const got = await post('/anthropic/v1/messages/count_tokens', anthropicBody('anthropic:claude-mock-1'), {
      'x-api-key': KEY,
      'anthropic-beta': 'token-counting-2024-11-01',
    });
    expect(got).toMatchObject({ status: 200, body: { input_tokens: 1000 + TEXT.length } });
    expect(got.headers.get('x-proxy-token-count')).toBeNull();
    expect(upstream.requests.length).toBe(before + 1);
    const sent = upstream.requests.at(-1)!;
    expect(sent.url).toBe('/v1/messages/count_tokens');
    expect(sent.body).toEqual(anthropicBody('claude-mock-1'));
    expect(sent.headers['x-api-key']).toBe('sk-ant-provider-000');
    expect(sent.headers['anthropic-beta']).toBe('token-counting-2024-11-01');
  });

  it('is estimated locally for a backend of another protocol, never reaching it', async () => {
    const before = upstream.requests.length;
    const toOpenAI = await post('/anthropic/v1/messages/count_tokens', anthropicBody('gpt-4o-mini'));
    expect(toOpenAI).toMatchObject({ status: 200, body: { input_tokens: 17 } });
    expect(toOpenAI.headers.get('x-proxy-token-count')).toBe('estimate');
    const toGemini = await post(
      '/anthropic/v1/messages/count_tokens',
      anthropicBody('gemini:gemini-mock-flash'),
    );
    expect(toGemini.body).toEqual({ input_tokens: 13 });
    expect(upstream.requests.length).toBe(before);
  });

  it('works through the official SDK, both ways', async () => {
    const client = new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: KEY, maxRetries: 0 });
    const passed = await client.messages.countTokens({
      model: 'anthropic:claude-mock-1',
      messages: [{ role: 'user', content: TEXT }],
    });
    expect(passed.input_tokens).toBe(1000 + TEXT.length);
    const estimated = await client.messages.countTokens({
      model: 'openai:gpt-4o-mini',
      system: 'You are terse.',
      messages: [{ role: 'user', content: TEXT }],
      tools: [
        { name: 'lookup', description: 'Look a word up', input_schema: { type: 'object', properties: {} } },
      ],
    });
    expect(estimated.input_tokens).toBe(46);
  });

  it('needs a key, as chat does', async () => {
    const got = await post(
      '/anthropic/v1/messages/count_tokens',
      anthropicBody('anthropic:claude-mock-1'),
      {},
    );
    expect(got.status).toBe(401);
    expect(got.body).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
  });

  it('answers 400 for a request with nothing to count, as the provider does, rather than 0', async () => {
    for (const model of ['anthropic:claude-mock-1', 'openai:gpt-4o-mini']) {
      const got = await post('/anthropic/v1/messages/count_tokens', { model });
      expect(got.status).toBe(400);
      expect(got.body).toMatchObject({
        type: 'error',
        error: { type: 'invalid_request_error', message: 'Missing required parameter: messages' },
      });
    }
  });
});

describe('Gemini countTokens', () => {
  it('passes through to a Gemini backend', async () => {
    const got = await post('/v1beta/models/gemini:gemini-mock-flash:countTokens', geminiBody);
    expect(got).toMatchObject({ status: 200, body: { totalTokens: 1000 + TEXT.length } });
    const sent = upstream.requests.at(-1)!;
    expect(sent.url).toBe('/v1beta/models/gemini-mock-flash:countTokens');
    expect(sent.headers['x-goog-api-key']).toBe('AIza-provider-000');
    expect(sent.body).toEqual(geminiBody);
  });

  it('is estimated locally for a backend of another protocol', async () => {
    const before = upstream.requests.length;
    const toAnthropic = await post('/v1beta/models/anthropic:claude-mock-1:countTokens', geminiBody);
    expect(toAnthropic).toMatchObject({ status: 200, body: { totalTokens: 19 } });
    expect(toAnthropic.headers.get('x-proxy-token-count')).toBe('estimate');
    expect(upstream.requests.length).toBe(before);
  });

  it('works through the official SDK, both ways', async () => {
    const client = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: proxy.url } });
    const passed = await client.models.countTokens({ model: 'gemini:gemini-mock-flash', contents: TEXT });
    expect(passed.totalTokens).toBe(1000 + TEXT.length);
    const estimated = await client.models.countTokens({ model: 'gpt-4o-mini', contents: TEXT });
    expect(estimated.totalTokens).toBe(17);
  });

  it('needs a key, and a model in the path', async () => {
    const refused = await post('/v1beta/models/gemini:gemini-mock-flash:countTokens', geminiBody, {});
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ error: { status: 'UNAUTHENTICATED' } });
    const noModel = await post('/v1beta/models/:countTokens', geminiBody);
    expect(noModel.status).toBe(404);
  });

  it('answers 400 for a request with nothing to count, rather than 0', async () => {
    for (const model of ['gemini:gemini-mock-flash', 'openai:gpt-4o-mini']) {
      const got = await post(`/v1beta/models/${model}:countTokens`, {});
      expect(got.status).toBe(400);
      expect(got.body).toMatchObject({
        error: { status: 'INVALID_ARGUMENT', message: 'Missing required parameter: contents' },
      });
    }
  });
});
