import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { startRedisMonitor } from './helpers/redis-monitor.js';

/**
 * Limits and usage on a real redis-server (README, "Teams"): a request's check-and-reserve is one Redis
 * command (rpm, max_concurrent, tpm and budgets, the key's and its label's, in one script) and its release
 * one more; a budget added by a reload counts what its key spent earlier in the period (on Redis, and with
 * `--usage-file`); usage settled while Redis is down is kept and written when it is back; the
 * `x-ratelimit-*` headers of an answer are one party's set, the proxy's or the provider's, never a mix.
 *
 * Prices make a token cost 0.001 USD; the fake provider counts a prompt's tokens as its last user text's
 * characters and an answer's as its text's (`echo: hi`: 2 in, 8 out), so a request of `hi` costs 0.01 USD.
 */
const ADMIN = 'lr-admin-key-0123456789abcdefghij';
const KEYS = {
  full: 'lr-full-key-0123456789abcdefghijk', // every limit, and a label's rpm
  spender: 'lr-spender-key-0123456789abcdefgh', // no budget, then one by a reload
  plain: 'lr-plain-key-0123456789abcdefghij', // no limits: usage only
  single: 'lr-single-key-0123456789abcdefghi', // rpm 1
} as const;
const SECRET = 'lr-state-secret-0123456789abcdefghij';
const PROVIDER_KEY = 'sk-lr-provider-0123456789abcdef';
/** A budget a little over what two requests of `hi` spend (0.02 USD), less than a third's reservation. */
const BUDGET = 0.025;

function config(spenderBudget: boolean): string {
  return [
    'auth:',
    '  api_keys:',
    `    - {name: full, key: ${KEYS.full}, labels: [team-f], rpm: 1000, max_concurrent: 100, tpm: 10000000, budget: {usd: 1000, per: month}}`,
    `    - {name: spender, key: ${KEYS.spender}${spenderBudget ? `, budget: {usd: ${BUDGET}, per: day}` : ''}}`,
    `    - {name: plain, key: ${KEYS.plain}}`,
    `    - {name: single, key: ${KEYS.single}, rpm: 1}`,
    '  policies:',
    '    team-f: {rpm: 1000}',
    'prices:',
    '  "openai:gpt-4o-mini": {input: 1000, output: 1000}',
    '',
  ].join('\n');
}

let dir: string;
let provider: FakeProvider;
const env = () => ({
  LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN,
  PROXY_STATE_SECRET: SECRET,
  OPENAI_API_KEY: PROVIDER_KEY,
  OPENAI_API_BASE_URL: provider.baseUrls.openai,
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lip-limits-redis-'));
  provider = await startFakeProvider();
});

afterAll(async () => {
  await provider?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One chat request of `hi` (at most 10 output tokens): its status, and the error's code when refused. */
async function hi(
  proxy: ProxyProcess,
  key: string,
): Promise<{ status: number; code?: string | null | undefined }> {
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: key, maxRetries: 0 });
  try {
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe('echo: hi');
    return { status: response.status };
  } catch (error) {
    if (!(error instanceof OpenAI.APIError)) throw error;
    return { status: error.status, code: error.code };
  }
}

async function reload(proxy: ProxyProcess, file: string, spenderBudget: boolean): Promise<void> {
  writeFileSync(file, config(spenderBudget));
  const res = await fetch(`${proxy.url}/admin/reload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  expect(res.status).toBe(200);
}

/** `/admin/usage` of one key: its requests and cost; the status when the report is not there. */
async function keyUsage(proxy: ProxyProcess, key: string) {
  const res = await fetch(`${proxy.url}/admin/usage?group_by=key&key=${key}`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  if (res.status !== 200) return { status: res.status };
  const report = (await res.json()) as { total: { requests: number; cost_usd: number } };
  return { status: 200, requests: report.total.requests, cost: Number(report.total.cost_usd.toFixed(6)) };
}

describe('on Redis', () => {
  let redis: RedisServer;
  let proxy: ProxyProcess;
  let file: string;

  beforeAll(async () => {
    redis = await startRedisServer(undefined, { persistDir: dir });
    file = join(dir, 'redis.yaml');
    writeFileSync(file, config(false));
    proxy = await startProxyProcess(
      ['--config', file, '--state-store', redis.url, '--default-backend', 'openai'],
      env(),
    );
  });

  afterAll(async () => {
    await proxy?.stop();
    await redis?.stop();
  });

  it('checks and reserves every limit of a request in one Redis command, and gives them back in one', async () => {
    // The first request loads the scripts and gives the budget its spend so far: not what is counted.
    expect(await hi(proxy, KEYS.full)).toEqual({ status: 200 });
    const monitor = await startRedisMonitor(redis.port);
    const limitCommands = () =>
      monitor.commands.filter((args) =>
        args.some((arg) => arg.startsWith('llm-interactive-proxy:{limits}:')),
      );
    try {
      for (let i = 0; i < 5; i++) expect(await hi(proxy, KEYS.full)).toEqual({ status: 200 });
      // Five checks (the key's rpm, max_concurrent, tpm and budget, the label's rpm): three keys each.
      const acquires = () =>
        limitCommands().filter((args) => args[2] === '15' && args.length === 2 + 1 + 15 + 3 + 25);
      // A release's last argument: whether it settles only what Redis still holds (after a lost answer).
      const releases = () =>
        limitCommands().filter((args) => args[2] === '15' && args.length === 2 + 1 + 15 + 3 + 20 + 1);
      await vi.waitFor(() => expect(releases()).toHaveLength(5));
      await monitor.settle();
      expect(acquires()).toHaveLength(5);
      expect(limitCommands().every((args) => args[0]?.toLowerCase() === 'evalsha')).toBe(true);
      expect(limitCommands()).toHaveLength(10);
    } finally {
      monitor.close();
    }
  });

  it('a budget added by a reload counts what the key spent earlier in its period', async () => {
    expect(await hi(proxy, KEYS.spender)).toEqual({ status: 200 });
    expect(await hi(proxy, KEYS.spender)).toEqual({ status: 200 });
    await vi.waitFor(async () =>
      expect(await keyUsage(proxy, 'spender')).toEqual({ status: 200, requests: 2, cost: 0.02 }),
    );
    await reload(proxy, file, true);
    // 0.02 spent, 0.025 the budget: the next request's reservation does not fit.
    expect(await hi(proxy, KEYS.spender)).toEqual({ status: 429, code: 'insufficient_quota' });
  });

  it('keeps usage settled while Redis is down, and writes it when Redis is back', async () => {
    expect(await hi(proxy, KEYS.plain)).toEqual({ status: 200 });
    await vi.waitFor(async () =>
      expect(await keyUsage(proxy, 'plain')).toEqual({ status: 200, requests: 1, cost: 0.01 }),
    );
    await redis.stop();
    for (let i = 0; i < 3; i++) expect(await hi(proxy, KEYS.plain)).toEqual({ status: 200 });
    // The report cannot be read meanwhile: a 503 naming the state store, not a 500.
    const down = await fetch(`${proxy.url}/admin/usage?group_by=key&key=plain`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(down.status).toBe(503);
    expect(((await down.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'state_store_unavailable',
      message: expect.stringContaining('the state store (--state-store) is unreachable') as unknown,
    });
    await redis.restart();
    // The one request before the outage (kept by Redis's own file) and the three during it.
    await vi.waitFor(
      async () => expect(await keyUsage(proxy, 'plain')).toEqual({ status: 200, requests: 4, cost: 0.04 }),
      { timeout: 10_000, interval: 100 },
    );
    expect(proxy.stdout()).toContain('kept in memory until it is back');
    expect(proxy.stdout()).not.toContain(KEYS.plain);
  });
});

describe('with --usage-file', () => {
  it('a budget added by a reload counts what the key spent earlier in its period', async () => {
    const file = join(dir, 'file.yaml');
    writeFileSync(file, config(false));
    const proxy = await startProxyProcess(
      ['--config', file, '--usage-file', join(dir, 'usage.jsonl'), '--default-backend', 'openai'],
      env(),
    );
    try {
      expect(await hi(proxy, KEYS.spender)).toEqual({ status: 200 });
      expect(await hi(proxy, KEYS.spender)).toEqual({ status: 200 });
      expect(await keyUsage(proxy, 'spender')).toEqual({ status: 200, requests: 2, cost: 0.02 });
      await reload(proxy, file, true);
      expect(await hi(proxy, KEYS.spender)).toEqual({ status: 429, code: 'insufficient_quota' });
    } finally {
      await proxy.stop();
    }
  });
});

describe("x-ratelimit headers: the proxy's set or the provider's, never a mix", () => {
  let proxy: ProxyProcess;
  beforeAll(async () => {
    const file = join(dir, 'headers.yaml');
    writeFileSync(file, config(false));
    proxy = await startProxyProcess(['--config', file, '--default-backend', 'openai'], env());
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  const NAMES = ['limit', 'remaining', 'reset'].flatMap((what) =>
    ['requests', 'tokens'].map((of) => `x-ratelimit-${what}-${of}`),
  );
  async function rateLimitHeaders(key: string, model: string) {
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.arrayBuffer();
    const headers: Record<string, string> = {};
    for (const name of NAMES) {
      const value = res.headers.get(name);
      if (value !== null) headers[name] = value;
    }
    return { status: res.status, headers };
  }

  it('a request let in carries the proxy’s set; its own 429 the proxy’s whole set', async () => {
    expect(await rateLimitHeaders(KEYS.single, 'gpt-4o-mini')).toEqual({
      status: 200,
      headers: {
        'x-ratelimit-limit-requests': '1',
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-reset-requests': '1m0s',
      },
    });
    const refused = await rateLimitHeaders(KEYS.single, 'gpt-4o-mini');
    expect(refused.status).toBe(429);
    expect(Object.keys(refused.headers).sort()).toEqual([
      'x-ratelimit-limit-requests',
      'x-ratelimit-remaining-requests',
      'x-ratelimit-reset-requests',
    ]);
    expect(refused.headers['x-ratelimit-limit-requests']).toBe('1');
    expect(refused.headers['x-ratelimit-remaining-requests']).toBe('0');
  });

  it('a provider’s 429 carries the provider’s headers alone, or none', async () => {
    // The key's rpm let the request in (and set the proxy's headers); the provider refused it.
    expect(await rateLimitHeaders(KEYS.full, 'fault-rate-limited-reset-only')).toEqual({
      status: 429,
      headers: { 'x-ratelimit-reset-requests': '7s' },
    });
    expect(await rateLimitHeaders(KEYS.full, 'fault-status-429')).toEqual({ status: 429, headers: {} });
  });
});
