import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

/**
 * Usage against the real CLI (README, Teams: usage): the tokens of every protocol's answer, streamed and not,
 * passed through and translated, as each official SDK gets it; counted in /metrics and in /admin/usage.
 * The fake provider counts a prompt's tokens as its last user text's characters and an answer's as its
 * text's (`echo: <text>`), so every count here is exact.
 */
const ALICE_KEY = 'usage-alice-key-0123456789abcdef';
const BOB_KEY = 'usage-bob-key-0123456789abcdefgh';
const CAROL_KEY = 'usage-carol-key-0123456789abcdef';
const ADMIN_KEY = 'usage-admin-key-0123456789abcdef';
const PROVIDER_KEY = 'sk-usage-provider-key-abcdefghijkl';

/** Faults of the fake provider that break a stream after its head (test/fake-provider/README.md). */
const FAULTS = ['error-before-content', 'error-mid-stream', 'reset-mid-stream'] as const;

let dir: string;
let provider: FakeProvider;
let proxy: ProxyProcess;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lip-usage-'));
  provider = await startFakeProvider();
  const config = join(dir, 'usage.yaml');
  writeFileSync(
    config,
    [
      'auth:',
      '  api_keys:',
      `    - {name: alice, key: ${ALICE_KEY}, labels: [team-a]}`,
      `    - {name: bob, key: ${BOB_KEY}, labels: [team-a, team-b]}`,
      `    - {name: carol, key: ${CAROL_KEY}, labels: [team-a], budget: {usd: 1000, per: day}, tpm: 10000000}`,
      'prices:',
      '  "anthropic:claude-3-5-haiku": {input: 1, output: 2}',
      ...FAULTS.map((fault) => `  fault-${fault}: {input: 1, output: 2}`),
      '',
    ].join('\n'),
  );
  proxy = await startProxyProcess(['--config', config, '--default-backend', 'openai'], {
    LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
    OPENAI_API_KEY: PROVIDER_KEY,
    OPENAI_API_BASE_URL: provider.baseUrls.openai,
    ANTHROPIC_API_KEY: PROVIDER_KEY,
    ANTHROPIC_API_BASE_URL: provider.baseUrls.anthropic,
    GEMINI_API_KEY: PROVIDER_KEY,
    GEMINI_API_BASE_URL: provider.baseUrls.gemini,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await provider?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Client = 'openai' | 'responses' | 'anthropic' | 'gemini';

/** Asks through `client`'s SDK; answers the text the SDK put together. */
async function ask(
  client: Client,
  model: string,
  text: string,
  stream: boolean,
  key = ALICE_KEY,
): Promise<string> {
  switch (client) {
    case 'openai': {
      const c = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: key, maxRetries: 0 });
      const messages = [{ role: 'user' as const, content: text }];
      if (!stream)
        return (await c.chat.completions.create({ model, messages })).choices[0]?.message.content ?? '';
      let out = '';
      for await (const chunk of await c.chat.completions.create({ model, messages, stream: true }))
        out += chunk.choices[0]?.delta.content ?? '';
      return out;
    }
    case 'responses': {
      const c = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: key, maxRetries: 0 });
      if (!stream) return (await c.responses.create({ model, input: text, store: false })).output_text;
      return (await c.responses.stream({ model, input: text, store: false }).finalResponse()).output_text;
    }
    case 'anthropic': {
      const c = new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: key, maxRetries: 0 });
      const params = { model, max_tokens: 256, messages: [{ role: 'user' as const, content: text }] };
      const message = stream
        ? await c.messages.stream(params).finalMessage()
        : await c.messages.create(params);
      return message.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
    }
    case 'gemini': {
      const c = new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: proxy.url } });
      if (!stream) return (await c.models.generateContent({ model, contents: text })).text ?? '';
      let out = '';
      for await (const chunk of await c.models.generateContentStream({ model, contents: text }))
        out += chunk.text ?? '';
      return out;
    }
  }
}

interface Group {
  requests: number;
  tokens: { input: number; output: number; cache_read: number; cache_write: number; total: number };
  cost_usd: number;
  unpriced_requests: number;
}

async function usage(
  query: string,
): Promise<{ groups: Array<Group & Record<string, unknown>>; total: Group; budgets: unknown[] }> {
  const res = await fetch(`${proxy.url}/admin/usage?${query}`, {
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    groups: Array<Group & Record<string, unknown>>;
    total: Group;
    budgets: unknown[];
  };
}

async function modelUsage(element: string): Promise<Group | undefined> {
  return (await usage('group_by=model')).groups.find((g) => g.model === element);
}

/** Each front-end, passed through (a backend of its protocol) and translated (another's), by model. */
const CASES: ReadonlyArray<{ client: Client; passed: string; translated: string }> = [
  { client: 'openai', passed: 'openai:gpt-4o-mini', translated: 'anthropic:claude-3-5-haiku' },
  { client: 'responses', passed: 'openai:gpt-4o-mini', translated: 'anthropic:claude-3-5-haiku' },
  { client: 'anthropic', passed: 'anthropic:claude-3-5-haiku', translated: 'gemini:gemini-2.0-flash' },
  { client: 'gemini', passed: 'gemini:gemini-2.0-flash', translated: 'openai:gpt-4o-mini' },
];

describe('usage of every front-end, streamed and not, passed through and translated', () => {
  for (const { client, passed, translated } of CASES) {
    for (const [how, element] of [
      ['passed through', passed],
      ['translated', translated],
    ] as const) {
      for (const stream of [false, true]) {
        it(`${client} SDK → ${element} (${how}${stream ? ', streamed' : ''})`, async () => {
          const text = `count ${client} ${how} ${stream ? 'stream' : 'whole'}`;
          const before = await modelUsage(element);
          expect((await ask(client, element, text, stream)).toLowerCase()).toBe(`echo: ${text}`);
          // Settled when the answer ended: read once it shows.
          let after: Group | undefined;
          for (let tries = 0; tries < 50; tries++) {
            after = await modelUsage(element);
            if ((after?.requests ?? 0) > (before?.requests ?? 0)) break;
            await new Promise((r) => setImmediate(r));
          }
          expect((after?.requests ?? 0) - (before?.requests ?? 0)).toBe(1);
          expect((after?.tokens.input ?? 0) - (before?.tokens.input ?? 0)).toBe(text.length);
          expect((after?.tokens.output ?? 0) - (before?.tokens.output ?? 0)).toBe(`echo: ${text}`.length);
        });
      }
    }
  }
});

describe('usage of a request tried by failover', () => {
  it('counts the element that answered, never the failed attempts', async () => {
    const chain = 'openai:fault-status-503|anthropic:claude-3-5-haiku';
    const text = 'count the failover';
    const before = await modelUsage('anthropic:claude-3-5-haiku');
    expect((await ask('openai', chain, text, true)).toLowerCase()).toBe(`echo: ${text}`);
    let after: Group | undefined;
    for (let tries = 0; tries < 50; tries++) {
      after = await modelUsage('anthropic:claude-3-5-haiku');
      if ((after?.requests ?? 0) > (before?.requests ?? 0)) break;
      await new Promise((r) => setImmediate(r));
    }
    expect((after?.requests ?? 0) - (before?.requests ?? 0)).toBe(1);
    expect((after?.tokens.input ?? 0) - (before?.tokens.input ?? 0)).toBe(text.length);
    expect(await modelUsage('openai:fault-status-503')).toBeUndefined();
  });
});

/**
 * A stream the backend failed — its error event before any content or after some, or the connection reset
 * mid-way — is a failed attempt, and failed attempts are never counted as usage (README, Teams: usage):
 * whatever the stream reported before it failed (Anthropic's `message_start` holds the prompt's tokens,
 * Gemini's every chunk its usage so far; an OpenAI stream's usage comes last, so it never has any), every
 * protocol alike, passed through or translated, one attempt or a chain's.
 */
describe('a stream the backend failed counts no usage, whatever its protocol', () => {
  /** A streamed request of each client protocol, to `model`. */
  const streamed: Record<Client, (model: string) => { path: string; body: unknown }> = {
    openai: (model) => ({
      path: '/v1/chat/completions',
      body: { model, stream: true, messages: [{ role: 'user', content: 'fail me' }] },
    }),
    responses: (model) => ({
      path: '/v1/responses',
      body: { model, stream: true, store: false, input: 'fail me' },
    }),
    anthropic: (model) => ({
      path: '/anthropic/v1/messages',
      body: { model, stream: true, max_tokens: 64, messages: [{ role: 'user', content: 'fail me' }] },
    }),
    gemini: (model) => ({
      path: `/v1beta/models/${model.replace(':', '%3A')}:streamGenerateContent?alt=sse`,
      body: { contents: [{ role: 'user', parts: [{ text: 'fail me' }] }] },
    }),
  };
  const send = async (client: Client, model: string) => {
    const { path, body } = streamed[client](model);
    const res = await fetch(`${proxy.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${CAROL_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    // The stream began (its head went out) and ended failing; read to its end, or to its cut.
    expect(res.status, `${client} → ${model}`).toBe(200);
    await res.text().catch(() => '');
  };
  const carol = async () => {
    const { total, budgets } = await usage('key=carol');
    return {
      requests: total.requests,
      tokens: total.tokens.total,
      spent: (budgets[0] as { spent_usd: number }).spent_usd,
    };
  };

  it('counts nothing for any client × backend; counts a stream the client left, and an answer', async () => {
    for (const fault of FAULTS) {
      for (const backend of ['openai', 'anthropic', 'gemini']) {
        for (const client of ['openai', 'responses', 'anthropic', 'gemini'] as const) {
          const model = `${backend}:fault-${fault}`;
          await send(client, model);
          // Through failover's attempts too: the first element fails after the answer began, or fails over.
          if (fault !== 'error-before-content') await send(client, `${model}|${model}`);
          expect.soft(await carol(), `${client} → ${model}`).toEqual({ requests: 0, tokens: 0, spent: 0 });
        }
      }
    }
    // A stream the client left is no failed attempt: the backend did its part, and it is counted.
    const left = new AbortController();
    const { path, body } = streamed.anthropic('anthropic:fault-hold');
    const res = await fetch(`${proxy.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${CAROL_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: left.signal,
    });
    await res.body?.getReader().read();
    left.abort();
    let cut = await carol();
    for (let tries = 0; tries < 200 && cut.requests === 0; tries++) {
      await new Promise((r) => setTimeout(r, 5));
      cut = await carol();
    }
    provider.release();
    expect(cut.requests).toBe(1);
    // The key's usage is counted at all: an answer that ends well is.
    expect(
      (await ask('anthropic', 'anthropic:claude-3-5-haiku', 'then count me', true, CAROL_KEY)).toLowerCase(),
    ).toBe('echo: then count me');
    let after = await carol();
    for (let tries = 0; tries < 50 && after.requests === 1; tries++) {
      await new Promise((r) => setImmediate(r));
      after = await carol();
    }
    expect(after.requests - cut.requests).toBe(1);
    expect(after.tokens - cut.tokens).toBe('then count me'.length + 'echo: then count me'.length);
  });
});

describe('OpenAI streams: the proxy asks for usage, and strips it when the client did not', () => {
  it('asks the backend with stream_options.include_usage, and the client sees no usage chunk', async () => {
    const c = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: ALICE_KEY, maxRetries: 0 });
    const chunks = [];
    for await (const chunk of await c.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'strip me' }],
      stream: true,
    }))
      chunks.push(chunk);
    const sent = provider.requests.filter((r) => r.url === '/v1/chat/completions').at(-1)?.body as Record<
      string,
      unknown
    >;
    expect(sent.stream_options).toEqual({ include_usage: true });
    expect(chunks.filter((chunk) => chunk.usage != null)).toEqual([]);
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe('echo: strip me');
  });

  it('keeps the usage chunk for a client that asked, its body forwarded as it is', async () => {
    const c = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: ALICE_KEY, maxRetries: 0 });
    const chunks = [];
    for await (const chunk of await c.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'keep me' }],
      stream: true,
      stream_options: { include_usage: true },
    }))
      chunks.push(chunk);
    expect(chunks.filter((chunk) => chunk.usage != null).map((chunk) => chunk.usage)).toEqual([
      { prompt_tokens: 7, completion_tokens: 13, total_tokens: 20 },
    ]);
  });
});

describe('the usage metrics and /admin/usage', () => {
  it('counts tokens and cost per key, backend, model and direction in /metrics', async () => {
    await ask('anthropic', 'anthropic:claude-3-5-haiku', 'metric me', false, BOB_KEY);
    const res = await fetch(`${proxy.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const text = await res.text();
    // The YAML price: 1 USD per million input tokens, 2 per million output.
    expect(text).toContain(
      'llm_proxy_tokens_total{key="bob",backend="anthropic",model="claude-3-5-haiku",direction="input"} 9',
    );
    expect(text).toContain(
      'llm_proxy_tokens_total{key="bob",backend="anthropic",model="claude-3-5-haiku",direction="output"} 15',
    );
    expect(text).toContain(
      `llm_proxy_cost_usd_total{key="bob",backend="anthropic",model="claude-3-5-haiku"} ${(9 * 1 + 15 * 2) / 1e6}`,
    );
  });

  it('groups by key, label, model and day, filtered by key and label; admin key only', async () => {
    const day = new Date().toISOString().slice(0, 10);
    const byKey = await usage(`group_by=key&key=bob`);
    expect(byKey.groups.map((g) => g.key)).toEqual(['bob']);
    const bobs = {
      requests: 1,
      tokens: { input: 9, output: 15, cache_read: 0, cache_write: 0, total: 24 },
      cost_usd: 39e-6,
      unpriced_requests: 0,
    };
    expect(byKey.groups).toEqual([{ key: 'bob', ...bobs }]);
    const byLabel = await usage('group_by=label');
    const labels = byLabel.groups.map((g) => g.label);
    expect(labels).toEqual(['team-a', 'team-b']);
    // bob's request counts under both his labels; team-b is bob alone.
    expect(byLabel.groups[1]).toEqual({ label: 'team-b', ...bobs });
    expect(byLabel.groups[0]?.requests).toBe(byLabel.total.requests);
    const teamB = await usage('group_by=key&label=team-b');
    expect(teamB.groups.map((g) => g.key)).toEqual(['bob']);
    const byDay = await usage(`group_by=day&from=${day}&to=${day}`);
    expect(byDay.groups.map((g) => g.day)).toEqual([day]);
    expect(byDay.groups[0]?.requests).toBe(byDay.total.requests);
    const bad = await fetch(`${proxy.url}/admin/usage?group_by=week`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    });
    expect(bad.status).toBe(400);
    const asClient = await fetch(`${proxy.url}/admin/usage`, {
      headers: { authorization: `Bearer ${ALICE_KEY}` },
    });
    expect(asClient.status).toBe(403);
  });
});
