import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { backendsAt } from './reliability/support.js';

/**
 * Headers on the same protocol (README): an Anthropic client's `anthropic-version` and `anthropic-beta`
 * reach an Anthropic backend, an OpenAI client's `OpenAI-Beta` an OpenAI backend; nothing else the client
 * sent does — not its credentials, cookies, hop-by-hop or forwarding headers — and a translated request
 * carries none of the client's protocol headers. Asserted on exactly what the fake provider received.
 */
const KEY = 'forwarded-headers-proxy-key-0123456789';

/** What the client sends besides its protocol headers: none of it may reach a backend. */
const NOISE = {
  cookie: 'session=client-cookie',
  'x-forwarded-for': '203.0.113.9',
  'x-forwarded-host': 'evil.example',
  'x-forwarded-proto': 'https',
  forwarded: 'for=203.0.113.9',
  'proxy-authorization': 'Basic Y2xpZW50',
  'x-goog-api-key': 'client-goog-key',
  'x-custom-client': 'not-forwarded',
};

/** What undici adds to every call: the transport's own, not the client's. */
const TRANSPORT = ['host', 'connection', 'content-length'];

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

/** Sends one request through the proxy and returns the headers the provider received for it. */
async function upstreamHeadersOf(
  path: string,
  headers: Record<string, string>,
  body: unknown,
): Promise<Record<string, string | string[] | undefined>> {
  const before = upstream.requests.length;
  const res = await fetch(`${proxy.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...NOISE, ...headers },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  await res.text();
  expect(upstream.requests.length).toBe(before + 1);
  return upstream.requests.at(-1)!.headers;
}

const sorted = (headers: Record<string, unknown>) => Object.keys(headers).sort();
const anthropicBody = (model: string) => ({
  model,
  max_tokens: 50,
  messages: [{ role: 'user', content: 'hi' }],
});
const openaiBody = (model: string) => ({ model, messages: [{ role: 'user', content: 'hi' }] });

describe('headers on the same protocol', () => {
  it("Anthropic pass-through forwards the client's anthropic-version and anthropic-beta, nothing else", async () => {
    const got = await upstreamHeadersOf(
      '/anthropic/v1/messages',
      {
        'x-api-key': KEY,
        'anthropic-version': '2023-06-01',
        'anthropic-beta': 'interleaved-thinking-2025-05-14,context-1m-2025-08-07',
      },
      anthropicBody('anthropic:claude-mock-1'),
    );
    expect(sorted(got)).toEqual(
      [...TRANSPORT, 'accept', 'anthropic-beta', 'anthropic-version', 'content-type', 'x-api-key'].sort(),
    );
    expect(got['anthropic-beta']).toBe('interleaved-thinking-2025-05-14,context-1m-2025-08-07');
    expect(got['anthropic-version']).toBe('2023-06-01');
    expect(got['x-api-key']).toBe('sk-ant-provider-000');
  });

  it("Anthropic pass-through keeps the backend's API version when the client sends none", async () => {
    const got = await upstreamHeadersOf(
      '/anthropic/v1/messages',
      { authorization: `Bearer ${KEY}` },
      anthropicBody('anthropic:claude-mock-1'),
    );
    expect(sorted(got)).toEqual(
      [...TRANSPORT, 'accept', 'anthropic-version', 'content-type', 'x-api-key'].sort(),
    );
    expect(got['anthropic-version']).toBe('2023-06-01');
  });

  it("OpenAI pass-through forwards the client's OpenAI-Beta, nothing else", async () => {
    const got = await upstreamHeadersOf(
      '/v1/chat/completions',
      { authorization: `Bearer ${KEY}`, 'OpenAI-Beta': 'assistants=v2' },
      openaiBody('openai:gpt-4o-mini'),
    );
    expect(sorted(got)).toEqual(
      [...TRANSPORT, 'accept', 'authorization', 'content-type', 'openai-beta'].sort(),
    );
    expect(got['openai-beta']).toBe('assistants=v2');
    expect(got.authorization).toBe('Bearer sk-provider-openai-000');
  });

  it("a translated request carries none of the client's protocol headers", async () => {
    const protocolHeaders = {
      'anthropic-version': '2023-06-01',
      'anthropic-beta': 'tools-2024-04-04',
      'openai-beta': 'assistants=v2',
    };
    const toOpenAI = await upstreamHeadersOf(
      '/anthropic/v1/messages',
      { 'x-api-key': KEY, ...protocolHeaders },
      anthropicBody('openai:gpt-4o-mini'),
    );
    expect(sorted(toOpenAI)).toEqual([...TRANSPORT, 'accept', 'authorization', 'content-type'].sort());
    const toAnthropic = await upstreamHeadersOf(
      '/v1/chat/completions',
      { authorization: `Bearer ${KEY}`, ...protocolHeaders },
      openaiBody('anthropic:claude-mock-1'),
    );
    expect(sorted(toAnthropic)).toEqual(
      [...TRANSPORT, 'accept', 'anthropic-version', 'content-type', 'x-api-key'].sort(),
    );
    // The backend's own API version, not the client's beta flags.
    expect(toAnthropic['anthropic-beta']).toBeUndefined();
    const toGemini = await upstreamHeadersOf(
      '/anthropic/v1/messages',
      { 'x-api-key': KEY, ...protocolHeaders },
      anthropicBody('gemini:gemini-mock-flash'),
    );
    expect(sorted(toGemini)).toEqual([...TRANSPORT, 'accept', 'content-type', 'x-goog-api-key'].sort());
    expect(toGemini['x-goog-api-key']).toBe('AIza-provider-000');
  });

  it('the official SDKs: the Anthropic beta flags and OpenAI-Beta arrive as the SDKs send them', async () => {
    let sent: Headers | undefined;
    const anthropic = new Anthropic({
      baseURL: `${proxy.url}/anthropic`,
      apiKey: KEY,
      maxRetries: 0,
      fetch: (input, init) => {
        sent = new Headers(init?.headers);
        return fetch(input, init);
      },
    });
    await anthropic.beta.messages.create({
      model: 'anthropic:claude-mock-1',
      max_tokens: 50,
      messages: [{ role: 'user', content: 'hi' }],
      betas: ['token-efficient-tools-2025-02-19'],
    });
    const sdkCall = upstream.requests.at(-1)!.headers;
    expect(sdkCall['anthropic-beta']).toBe('token-efficient-tools-2025-02-19');
    // The SDK's own API version, whatever it is, not the backend's default.
    expect(sent?.get('anthropic-version')).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(sdkCall['anthropic-version']).toBe(sent?.get('anthropic-version'));
    expect(sdkCall['x-api-key']).toBe('sk-ant-provider-000');
    expect(Object.keys(sdkCall).filter((name) => name.startsWith('x-stainless'))).toEqual([]);
    const openai = new OpenAI({
      baseURL: `${proxy.url}/v1`,
      apiKey: KEY,
      maxRetries: 0,
      defaultHeaders: { 'OpenAI-Beta': 'responses=experimental' },
    });
    await openai.chat.completions.create({
      model: 'openai:gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    const openaiCall = upstream.requests.at(-1)!.headers;
    expect(openaiCall['openai-beta']).toBe('responses=experimental');
    expect(openaiCall.authorization).toBe('Bearer sk-provider-openai-000');
  });
});
