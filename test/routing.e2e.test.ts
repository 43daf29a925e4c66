import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

/**
 * Routes and failover as an operator sees them (README, Routes and failover): named routes in the model
 * lists and with their own settings, the answer's accounting, what a stream is owed, the circuit breaker
 * in /internal/health and /metrics, and the access line. The fault-by-fault conduct is the scorecard's
 * (test/reliability/failover-scorecard.e2e.test.ts).
 */

const KEY = 'routing-proxy-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
/** The operator endpoints (/internal/health, /metrics) need the admin key. */
const ADMIN_KEY = 'routing-admin-key-0123456789abcdef';
const PROVIDER_ANTHROPIC_KEY = 'sk-ant-routing-0123456789';
const ADMIN = { authorization: `Bearer ${ADMIN_KEY}` };

let fake: FakeProvider;
/** Takes only POOL_GOOD: POOL_BAD is refused with 401, POOL_BUSY rate-limited (429, Retry-After 30). */
let keyed: FakeProvider;
const POOL_GOOD = 'sk-ant-pool-good-0123456789abcdef';
const POOL_BAD = 'sk-ant-pool-revoked-0123456789abcd';
const POOL_BUSY = 'sk-ant-pool-busy-0123456789abcdefg';
/** The routes of the proxy's YAML below, in their order (every model list names them first). */
const ROUTE_NAMES = [
  'coder',
  'fragile',
  'patient',
  'capped',
  'hurried',
  'opening-error',
  'opening-silence',
  'lonely',
  'tripped',
];
let proxy: ProxyProcess;
let plain: ProxyProcess;
let dir: string;

beforeAll(async () => {
  fake = await startFakeProvider();
  keyed = await startFakeProvider({
    keys: { anthropic: POOL_GOOD },
    keyFaults: { [POOL_BUSY]: 'status-429-retry-after-30' },
  });
  dir = mkdtempSync(path.join(tmpdir(), 'routing-'));
  const config = path.join(dir, 'proxy.yaml');
  writeFileSync(
    config,
    [
      'routes:',
      '  coder:',
      '    chain: [openai:fault-status-503-coder, anthropic:claude-coder]',
      '    retries: 0',
      '  fragile:',
      '    chain: [openai:fault-status-500-fragile, gemini:gemini-fragile]',
      '    breaker: { failures: 2, cooldown_s: 1000 }',
      '  patient:',
      '    chain: [openai:fault-status-429-retry-after-30-patient]',
      // Three elements that would answer at the third, but three attempts are all the route allows.
      '  capped:',
      '    chain: [openai:fault-status-503-capped, anthropic:fault-status-503-capped, gemini:gemini-capped]',
      '    max_attempts: 3',
      // A Retry-After the route would wait out (90 s), but not within its deadline (60 s); scaled by
      // time_scale, the first attempt has 1.8 s, room enough on a loaded machine.
      '  hurried:',
      '    chain: [openai:fault-status-429-retry-after-90-hurried, anthropic:claude-hurried]',
      '    deadline_s: 60',
      '    max_retry_after_s: 100',
      // Before any answer: an error event in the stream, or an opening and then nothing.
      '  opening-error:',
      '    chain: [anthropic:fault-error-before-content-oe, gemini:gemini-oe]',
      '    retries: 0',
      '  opening-silence:',
      '    chain: [anthropic:fault-opening-then-silence-os, openai:gpt-os]',
      // One element, whose breaker the first request opens: the next is answered without trying it.
      '  lonely:',
      '    chain: [openai:fault-status-500-lonely]',
      '    breaker: { failures: 2, cooldown_s: 1000 }',
      // Retries left, but the second failure opens the breaker: no wait for a retry that cannot come.
      '  tripped:',
      '    chain: [openai:fault-status-503-tripped, gemini:gemini-tripped]',
      '    retries: 3',
      '    breaker: { failures: 2, cooldown_s: 1000 }',
      'resilience:',
      '  time_scale: 0.03',
      '',
    ].join('\n'),
  );
  const env = {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
    OPENAI_API_KEY: 'sk-routing-openai-0123456789',
    OPENAI_API_BASE_URL: fake.baseUrls.openai,
    ANTHROPIC_API_KEY: PROVIDER_ANTHROPIC_KEY,
    ANTHROPIC_API_BASE_URL: fake.baseUrls.anthropic,
    GEMINI_API_KEY: 'AIzaRoutingKey0123456789abcdef',
    GEMINI_API_BASE_URL: fake.baseUrls.gemini,
  };
  [proxy, plain] = await Promise.all([
    startProxyProcess(
      ['--config', config, '--default-backend', 'openai', '--capture-file', path.join(dir, 'capture.jsonl')],
      env,
    ),
    startProxyProcess(['--default-backend', 'openai'], {
      ...env,
      ANTHROPIC_API_KEY: undefined,
      ANTHROPIC_API_KEY_1: POOL_BAD,
      ANTHROPIC_API_KEY_2: POOL_BUSY,
      ANTHROPIC_API_KEY_3: POOL_GOOD,
      ANTHROPIC_API_BASE_URL: keyed.baseUrls.anthropic,
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([proxy?.stop(), plain?.stop()]);
  await Promise.all([fake?.close(), keyed?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const chat = (base: string, model: string, stream = false) =>
  fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: AUTH,
    body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
  });

describe('routes', () => {
  it('route names appear first in every front-end’s model list', async () => {
    const openai = (await (await fetch(`${proxy.url}/v1/models`, { headers: AUTH })).json()) as {
      data: Array<{ id: string }>;
    };
    expect(openai.data.map((m) => m.id).slice(0, ROUTE_NAMES.length + 1)).toEqual([
      ...ROUTE_NAMES,
      'gpt-4o-mini',
    ]);
    const anthropic = (await (
      await fetch(`${proxy.url}/anthropic/v1/models`, {
        headers: { ...AUTH, 'anthropic-version': '2023-06-01' },
      })
    ).json()) as { data: Array<{ id: string }> };
    expect(anthropic.data.map((m) => m.id).slice(0, ROUTE_NAMES.length)).toEqual(ROUTE_NAMES);
    const gemini = (await (await fetch(`${proxy.url}/v1beta/models`, { headers: AUTH })).json()) as {
      models: Array<{ name: string }>;
    };
    expect(gemini.models.map((m) => m.name).slice(0, ROUTE_NAMES.length)).toEqual(
      ROUTE_NAMES.map((name) => `models/${name}`),
    );
  });

  it('a named route takes its chain with its own retries, and says who answered', async () => {
    const before = fake.requests.length;
    const res = await chat(proxy.url, 'coder');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { model: string; choices: Array<{ message: { content: string } }> };
    expect(body.model).toBe('claude-coder');
    expect(body.choices[0]?.message.content).toBe('echo: hi');
    expect(res.headers.get('x-proxy-backend')).toBe('anthropic');
    expect(res.headers.get('x-proxy-model')).toBe('claude-coder');
    expect(res.headers.get('x-proxy-attempts')).toBe('2');
    expect(fake.requests.slice(before).map((r) => r.model)).toEqual([
      'fault-status-503-coder',
      'claude-coder',
    ]);
    // The capture has each attempt under its own backend and model, the failed one with its status.
    const id = res.headers.get('x-request-id');
    const records = async () =>
      (await readFile(path.join(dir, 'capture.jsonl'), 'utf8').catch(() => ''))
        .split('\n')
        .filter((l) => l.includes(`"${id}"`))
        .map(
          (l) => JSON.parse(l) as { backend: string; model: string; direction: string; metadata?: unknown },
        );
    while (!(await records()).some((r) => r.backend === 'anthropic' && r.direction === 'outbound_response')) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const seen = await records();
    expect(
      seen.filter((r) => r.direction === 'outbound_request').map((r) => `${r.backend}:${r.model}`),
    ).toEqual(['openai:fault-status-503-coder', 'anthropic:claude-coder']);
    expect(seen.find((r) => r.backend === 'openai' && r.direction === 'inbound_response')?.metadata).toEqual({
      status: 503,
      failure: 'status',
      failover: 'retry',
    });
  });

  it('a Retry-After longer than allowed on the last element: the 429 goes to the client with it, untried again', async () => {
    const before = fake.requests.length;
    const res = await chat(proxy.url, 'patient');
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('30');
    expect(fake.requests.length - before).toBe(1);
  });

  it('max_attempts: the chain stops at the cap, the last failure goes to the client', async () => {
    const before = fake.requests.length;
    const res = await chat(proxy.url, 'capped');
    expect(res.status).toBe(503);
    // The first element and its retry, then the second once: three attempts; the third element, which
    // would have answered, is never asked.
    expect(fake.requests.slice(before).map((r) => r.model)).toEqual([
      'fault-status-503-capped',
      'fault-status-503-capped',
      'fault-status-503-capped',
    ]);
    expect(fake.requests.slice(before).map((r) => r.url)).toEqual([
      '/v1/chat/completions',
      '/v1/chat/completions',
      '/v1/messages',
    ]);
  });

  it('deadline_s: a wait that would end past the deadline is not begun; the next element answers at once', async () => {
    const before = fake.requests.length;
    const res = await chat(proxy.url, 'hurried');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-proxy-backend')).toBe('anthropic');
    // No retry after the Retry-After (the deadline would be past), but the next element is tried.
    expect(fake.requests.slice(before).map((r) => r.model)).toEqual([
      'fault-status-429-retry-after-90-hurried',
      'claude-hurried',
    ]);
  });

  it('a failure that opens the breaker is not waited on for a retry: the next element at once', async () => {
    const before = fake.requests.length;
    const res = await chat(proxy.url, 'tripped');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-proxy-attempts')).toBe('3');
    expect(fake.requests.slice(before).map((r) => r.model)).toEqual([
      'fault-status-503-tripped',
      'fault-status-503-tripped',
      'gemini-tripped',
    ]);
    const line = () =>
      proxy
        .stdout()
        .split('\n')
        .find((l) => l.includes('"msg":"request"') && l.includes('gemini-tripped'));
    while (line() === undefined) await new Promise((resolve) => setImmediate(resolve));
    // The client sent its request once: one inbound_request in the capture, an outbound one per attempt.
    const id = res.headers.get('x-request-id');
    const records = async () =>
      (await readFile(path.join(dir, 'capture.jsonl'), 'utf8'))
        .split('\n')
        .filter((l) => l.includes(`"request_id":"${id}"`))
        .map((l) => (JSON.parse(l) as { direction: string }).direction);
    await expect.poll(async () => (await records()).filter((d) => d === 'outbound_request').length).toBe(3);
    expect((await records()).filter((d) => d === 'inbound_request')).toHaveLength(1);
    // Before, a backoff was slept after the second failure only to find the element skipped.
    expect(JSON.parse(line() ?? '{}')).toMatchObject({
      attempts: expect.stringMatching(
        /^openai:fault-status-503-tripped 503 retry \d+ms; openai:fault-status-503-tripped 503 retry \d+ms; gemini:gemini-tripped 200 ok \d+ms$/,
      ),
    });
  });

  it('without routes or resilience a plain request is one attempt, without failover headers', async () => {
    const res = await chat(plain.url, 'openai:fault-status-503-plain');
    expect(res.status).toBe(503);
    expect(res.headers.get('x-proxy-attempts')).toBeNull();
    expect(fake.requests.filter((r) => r.model === 'fault-status-503-plain')).toHaveLength(1);
  });
});

describe('provider key pools', () => {
  it('a key answered 401 leaves the rotation, one answered 429 rests; the request goes on with the next key', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await chat(plain.url, 'anthropic:claude-pool')).status);
    // The first request meets the revoked key, then the busy one, and is answered with the third.
    expect(statuses).toEqual([200, 200, 200]);
    expect(keyed.requests.map((r) => r.headers['x-api-key'])).toEqual([
      POOL_BAD,
      POOL_BUSY,
      POOL_GOOD,
      POOL_GOOD,
      POOL_GOOD,
    ]);
    const health = await (await fetch(`${plain.url}/internal/health`, { headers: ADMIN })).text();
    expect(JSON.parse(health)).toMatchObject({
      key_pools: {
        anthropic: [
          { key: 'ANTHROPIC_API_KEY_1', state: 'out' },
          { key: 'ANTHROPIC_API_KEY_2', state: 'resting' },
          { key: 'ANTHROPIC_API_KEY_3', state: 'ready' },
        ],
      },
    });
    // One warning per key leaving the rotation, naming the backend and the key's env var and place.
    const leaves = () =>
      plain
        .stdout()
        .split('\n')
        .filter((l) => l.includes('Provider key'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    while (leaves().length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(
      leaves().map(({ level, backend, key_name, position, status, rest_s, msg }) => ({
        level,
        backend,
        key_name,
        position,
        status,
        rest_s,
        msg,
      })),
    ).toEqual([
      {
        level: 40,
        backend: 'anthropic',
        key_name: 'ANTHROPIC_API_KEY_1',
        position: 1,
        status: 401,
        rest_s: undefined,
        msg: 'Provider key out of rotation',
      },
      {
        level: 40,
        backend: 'anthropic',
        key_name: 'ANTHROPIC_API_KEY_2',
        position: 2,
        status: 429,
        rest_s: 30,
        msg: 'Provider key resting',
      },
    ]);
    const metrics = await (await fetch(`${plain.url}/metrics`, { headers: ADMIN })).text();
    const poolLines = metrics.split('\n').filter((l) => l.startsWith('llm_proxy_key_pool_'));
    expect(poolLines).toEqual([
      'llm_proxy_key_pool_leaves_total{backend="anthropic",key="ANTHROPIC_API_KEY_1",state="out"} 1',
      'llm_proxy_key_pool_leaves_total{backend="anthropic",key="ANTHROPIC_API_KEY_2",state="resting"} 1',
      'llm_proxy_key_pool_key_state{backend="anthropic",key="ANTHROPIC_API_KEY_1",state="out"} 1',
      'llm_proxy_key_pool_key_state{backend="anthropic",key="ANTHROPIC_API_KEY_2",state="resting"} 1',
      'llm_proxy_key_pool_key_state{backend="anthropic",key="ANTHROPIC_API_KEY_3",state="ready"} 1',
    ]);
    for (const key of [POOL_GOOD, POOL_BAD, POOL_BUSY]) {
      expect(metrics).not.toContain(key);
      expect(health).not.toContain(key);
      expect(plain.stdout()).not.toContain(key);
      expect(plain.stderr()).not.toContain(key);
    }
  });
});

describe('a built-in backend’s key pool from the YAML', () => {
  it('backends.openai.api_key_envs: requests rotate over its keys; OPENAI_API_KEY is not one of them', async () => {
    const [first, second, unlisted] = ['first', 'second', 'unlisted'].map(
      (k) => `sk-openai-yaml-pool-${k}-0123456789`,
    );
    const upstream = await startFakeProvider();
    const config = path.join(dir, 'builtin-pool.yaml');
    writeFileSync(
      config,
      'backends:\n  openai:\n    api_key_envs: [OPENAI_POOL_FIRST, OPENAI_POOL_SECOND]\n',
    );
    const pooled = await startProxyProcess(['--config', config, '--default-backend', 'openai'], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
      OPENAI_API_KEY: unlisted,
      OPENAI_POOL_FIRST: first,
      OPENAI_POOL_SECOND: second,
      OPENAI_API_BASE_URL: upstream.baseUrls.openai,
    });
    try {
      for (let i = 0; i < 4; i++) expect((await chat(pooled.url, `gpt-pool-${i}`)).status).toBe(200);
      expect(upstream.requests.map((r) => r.headers.authorization)).toEqual([
        `Bearer ${first}`,
        `Bearer ${second}`,
        `Bearer ${first}`,
        `Bearer ${second}`,
      ]);
      const health = await (await fetch(`${pooled.url}/internal/health`, { headers: ADMIN })).text();
      expect((JSON.parse(health) as { key_pools: unknown }).key_pools).toEqual({
        openai: [
          { key: 'OPENAI_POOL_FIRST', state: 'ready' },
          { key: 'OPENAI_POOL_SECOND', state: 'ready' },
        ],
      });
      for (const key of [first, second, unlisted]) {
        expect(health).not.toContain(key);
        expect(pooled.stdout()).not.toContain(key);
        expect(pooled.stderr()).not.toContain(key);
      }
    } finally {
      await pooled.stop();
      await upstream.close();
    }
  });
});

describe('a key pool behind the Responses door', () => {
  it('the openai backend’s Responses endpoint rotates the same pool, counted on /metrics as chat is', async () => {
    const [bad, busy, good] = ['revoked', 'busy', 'good'].map((k) => `sk-openai-pool-${k}-0123456789abcd`);
    const upstream = await startFakeProvider({
      keys: { openai: good },
      keyFaults: { [busy!]: 'status-429-retry-after-30' },
    });
    const pooled = await startProxyProcess(['--default-backend', 'openai'], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
      OPENAI_API_KEY_1: bad,
      OPENAI_API_KEY_2: busy,
      OPENAI_API_KEY_3: good,
      OPENAI_API_BASE_URL: upstream.baseUrls.openai,
    });
    try {
      const client = new OpenAI({ apiKey: KEY, baseURL: `${pooled.url}/v1`, maxRetries: 0 });
      for (let i = 0; i < 2; i++) {
        const response = await client.responses.create({ model: 'gpt-pool', input: 'pooled', store: false });
        expect(response.output_text).toBe('echo: pooled');
      }
      // The chat door takes the same pool: the keys that left at the Responses door stay out of its rotation.
      expect((await chat(pooled.url, 'openai:gpt-pool')).status).toBe(200);
      expect(upstream.requests.map((r) => [r.url, r.headers.authorization])).toEqual([
        ['/v1/responses', `Bearer ${bad}`],
        ['/v1/responses', `Bearer ${busy}`],
        ['/v1/responses', `Bearer ${good}`],
        ['/v1/responses', `Bearer ${good}`],
        ['/v1/chat/completions', `Bearer ${good}`],
      ]);
      const metrics = await (await fetch(`${pooled.url}/metrics`, { headers: ADMIN })).text();
      expect(metrics.split('\n').filter((l) => l.startsWith('llm_proxy_key_pool_'))).toEqual([
        'llm_proxy_key_pool_leaves_total{backend="openai",key="OPENAI_API_KEY_1",state="out"} 1',
        'llm_proxy_key_pool_leaves_total{backend="openai",key="OPENAI_API_KEY_2",state="resting"} 1',
        'llm_proxy_key_pool_key_state{backend="openai",key="OPENAI_API_KEY_1",state="out"} 1',
        'llm_proxy_key_pool_key_state{backend="openai",key="OPENAI_API_KEY_2",state="resting"} 1',
        'llm_proxy_key_pool_key_state{backend="openai",key="OPENAI_API_KEY_3",state="ready"} 1',
      ]);
      const health = await (await fetch(`${pooled.url}/internal/health`, { headers: ADMIN })).text();
      expect((JSON.parse(health) as { key_pools: unknown }).key_pools).toEqual({
        openai: [
          { key: 'OPENAI_API_KEY_1', state: 'out' },
          { key: 'OPENAI_API_KEY_2', state: 'resting' },
          { key: 'OPENAI_API_KEY_3', state: 'ready' },
        ],
      });
      for (const key of [bad, busy, good]) {
        expect(metrics).not.toContain(key);
        expect(health).not.toContain(key);
        expect(pooled.stdout()).not.toContain(key);
        expect(pooled.stderr()).not.toContain(key);
      }
    } finally {
      await pooled.stop();
      await upstream.close();
    }
  });
});

describe('the commit point is the answer’s first content', () => {
  const streamed = async (model: string) => {
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: AUTH,
      body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const sse = await res.text();
    // The answer's text, its deltas joined.
    const text = sse
      .split('\n')
      .filter((line) => line.startsWith('data: {'))
      .map((line) => JSON.parse(line.slice(6)) as { choices?: Array<{ delta?: { content?: string } }> })
      .map((chunk) => chunk.choices?.[0]?.delta?.content ?? '')
      .join('');
    return { res, sse, text };
  };

  it('an error event before any answer fails over like an HTTP error', async () => {
    const before = fake.requests.length;
    const { res, sse, text } = await streamed('opening-error');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-proxy-backend')).toBe('gemini');
    expect(res.headers.get('x-proxy-attempts')).toBe('2');
    expect(text).toBe('echo: hi');
    expect(sse).not.toContain('overloaded');
    expect(fake.requests.slice(before).map((r) => r.model)).toEqual([
      'fault-error-before-content-oe',
      'gemini-oe',
    ]);
  });

  it('an opening (message_start, a ping, a comment) is no first content: the first-token timeout fails over', async () => {
    const { res, sse, text } = await streamed('opening-silence');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-proxy-backend')).toBe('openai');
    expect(text).toBe('echo: hi');
    expect(sse).toMatch(/data: \[DONE\]\n\n$/);
  });

  it('an error before any answer that echoes the provider key reaches neither the client nor the capture', async () => {
    const client = new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: KEY, maxRetries: 0 });
    const error = await client.messages
      .stream({
        model: 'anthropic:fault-key-before-content',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'hi' }],
      })
      .finalMessage()
      .catch((e: unknown) => e);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    const message = JSON.stringify((error as InstanceType<typeof Anthropic.APIError>).error);
    expect(message).toContain('this key is overloaded: ');
    expect(message).not.toContain(PROVIDER_ANTHROPIC_KEY);
    await expect
      .poll(async () => readFile(path.join(dir, 'capture.jsonl'), 'utf8'))
      .toContain('fault-key-before-content');
    expect(await readFile(path.join(dir, 'capture.jsonl'), 'utf8')).not.toContain(PROVIDER_ANTHROPIC_KEY);
    expect(proxy.stdout()).not.toContain(PROVIDER_ANTHROPIC_KEY);
  });

  it('with one element, the error before any answer reaches the client as its status, not a 200', async () => {
    const client = new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: KEY, maxRetries: 0 });
    const error = await client.messages
      .stream({
        model: 'anthropic:fault-error-before-content-single',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'hi' }],
      })
      .finalMessage()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    expect((error as InstanceType<typeof Anthropic.APIError>).error).toEqual({
      type: 'error',
      error: { type: 'overloaded_error', message: 'overloaded before the answer' },
    });
  });
});

describe('streams after the commit point', () => {
  it('a stream complete but for its terminator gets [DONE] / message_stop, with its usage', async () => {
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: AUTH,
      body: JSON.stringify({
        model: 'openai:fault-missing-done-raw|anthropic:x',
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    const text = await res.text();
    expect(text).toContain('"usage":{"prompt_tokens":2');
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    const anthropic = await fetch(`${proxy.url}/anthropic/v1/messages`, {
      method: 'POST',
      headers: { ...AUTH, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({
        model: 'anthropic:fault-missing-done-raw|openai:x',
        max_tokens: 50,
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    const events = await anthropic.text();
    expect(events).toContain('"output_tokens":8');
    expect(events.endsWith('event: message_stop\ndata: {"type":"message_stop"}\n\n')).toBe(true);
  });

  it('an event that is not JSON is dropped, counted on /metrics; the answer is whole', async () => {
    const res = await chat(proxy.url, 'openai:fault-malformed-chunk-raw|anthropic:x', true);
    const text = await res.text();
    expect(text).not.toContain('not json');
    const content = [...text.matchAll(/"content":"([^"]*)"/g)].map((m) => m[1]).join('');
    expect(content).toBe('echo: hi');
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    const metrics = await (await fetch(`${proxy.url}/metrics`, { headers: ADMIN })).text();
    expect(metrics).toContain('llm_proxy_stream_invalid_events_dropped_total 1');
  });

  it('without failover too, a same-protocol stream passed through drops an event that is not JSON', async () => {
    for (const [path, model, headers] of [
      ['/v1/chat/completions', 'openai:fault-malformed-chunk-plain', {}],
      [
        '/anthropic/v1/messages',
        'anthropic:fault-malformed-chunk-plain',
        { 'anthropic-version': '2023-06-01' },
      ],
    ] as const) {
      const res = await fetch(`${plain.url}${path}`, {
        method: 'POST',
        headers: { ...AUTH, ...headers },
        body: JSON.stringify({
          model,
          stream: true,
          max_tokens: 50,
          messages: [{ role: 'user', content: 'hi' }],
        }),
      });
      expect(res.headers.get('x-proxy-attempts')).toBeNull();
      const text = await res.text();
      expect(text).not.toContain('not json');
      const content = [...text.matchAll(/"(?:content|text)":"([^"]*)"/g)].map((m) => m[1]).join('');
      expect(content).toBe('echo: hi');
    }
    const metrics = await (await fetch(`${plain.url}/metrics`, { headers: ADMIN })).text();
    expect(metrics).toContain('llm_proxy_stream_invalid_events_dropped_total 2');
    const warnings = () =>
      plain
        .stdout()
        .split('\n')
        .filter((l) => l.includes('backend stream events that are not JSON were dropped'));
    while (warnings().length < 2) await new Promise((resolve) => setImmediate(resolve));
    expect(warnings().map((l) => (JSON.parse(l) as { dropped: number }).dropped)).toEqual([1, 1]);
  });
});

describe('translated streams of a chain', () => {
  const ask = (model: string) =>
    fetch(`${proxy.url}/anthropic/v1/messages`, {
      method: 'POST',
      headers: { ...AUTH, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({
        model,
        max_tokens: 50,
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
  const texts = (events: string) =>
    [...events.matchAll(/"text_delta","text":"([^"]*)"/g)].map((m) => m[1]).join('');

  it('are relayed whole after the commit point, both legs captured', async () => {
    const res = await ask('anthropic:fault-status-503-xlate|openai:xlate-answer');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-proxy-backend')).toBe('openai');
    const events = await res.text();
    expect(texts(events)).toBe('echo: hi');
    expect(events.endsWith('event: message_stop\ndata: {"type":"message_stop"}\n\n')).toBe(true);
    const id = res.headers.get('x-request-id');
    const ends = async () =>
      (await readFile(path.join(dir, 'capture.jsonl'), 'utf8').catch(() => ''))
        .split('\n')
        .filter((l) => l.includes(`"${id}"`) && l.includes('"stream_end"'))
        .map((l) => JSON.parse(l) as { backend: string; metadata: { leg: string; error?: string } });
    while ((await ends()).length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await ends()).map((r) => [r.backend, r.metadata.leg, r.metadata.error])).toEqual([
      ['openai', 'inbound', undefined],
      ['openai', 'outbound', undefined],
    ]);
  });

  it('end in the client protocol’s error event when the backend goes silent mid-stream', async () => {
    const res = await ask('anthropic:fault-status-503-quiet|openai:fault-stall-mid-stream-quiet');
    expect(res.status).toBe(200);
    const events = await res.text();
    expect(texts(events)).toBe('ec');
    expect(events).toMatch(
      /event: error\ndata: \{"type":"error","error":\{"type":"[a-z_]+","message":"Backend 'openai' went silent mid-stream"\}\}\n\n$/,
    );
  });
});

describe('circuit breaker and accounting', () => {
  it('opens after its failures, then skips the element at once; shown in /internal/health, /metrics, the access log', async () => {
    // The first request: the primary fails twice (a retry), which opens its breaker; the fallback answers.
    expect((await chat(proxy.url, 'fragile')).status).toBe(200);
    const before = fake.requests.length;
    const res = await chat(proxy.url, 'fragile');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-proxy-backend')).toBe('gemini');
    expect(res.headers.get('x-proxy-attempts')).toBe('1');
    expect(fake.requests.slice(before).map((r) => r.model)).toEqual(['gemini-fragile']);
    const health = (await (await fetch(`${proxy.url}/internal/health`, { headers: ADMIN })).json()) as {
      breakers: unknown;
    };
    expect(health.breakers).toContainEqual({
      element: 'openai:fault-status-500-fragile',
      phase: 'open',
      failures: 2,
    });
    const metrics = await (await fetch(`${proxy.url}/metrics`, { headers: ADMIN })).text();
    expect(metrics).toContain(
      'llm_proxy_breaker_state{element="openai:fault-status-500-fragile",state="open"} 1',
    );
    expect(metrics).toMatch(/llm_proxy_failover_attempts_total\{outcome="skipped"\} 1\n/);
    // The access line is written when the response closes, through the batched writer: waited for.
    const lastLine = () =>
      proxy
        .stdout()
        .split('\n')
        .filter((l) => l.includes('"msg":"request"') && l.includes('skipped'))
        .at(-1);
    while (lastLine() === undefined) await new Promise((resolve) => setImmediate(resolve));
    const line = lastLine();
    expect(JSON.parse(line ?? '{}')).toMatchObject({
      backend: 'gemini',
      model: 'gemini-fragile',
      attempts: expect.stringMatching(
        /^openai:fault-status-500-fragile 0 skipped 0ms; gemini:gemini-fragile 200 ok \d+ms$/,
      ),
    });
  });

  it('every element passed for its open breaker: a 503 that says so, with the cooldown as Retry-After', async () => {
    expect((await chat(proxy.url, 'lonely')).status).toBe(500);
    const res = await chat(proxy.url, 'lonely');
    expect(res.status).toBe(503);
    // cooldown_s 1000, scaled by the test profile's time_scale (0.03).
    expect(res.headers.get('retry-after')).toBe('30');
    expect(((await res.json()) as { error: unknown }).error).toEqual({
      message:
        "No backend of 'lonely' could be tried: its circuit breakers are open after repeated failures " +
        '(one request goes through to try again within 30s)',
      type: 'server_error',
      code: 'no_backend_available',
      param: null,
      retry_after: 30,
    });
  });
});
