import { appendFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { ApiError, GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startRedisServer, type RedisServer } from './helpers/redis-server.js';

/**
 * Budgets and `tpm` against the real CLI (README, Teams: budgets): reserved before the call, settled to the
 * real usage after, refused in each protocol's own 429; a budget survives a restart through `--usage-file`
 * and through Redis.
 *
 * The numbers: `gpt-budget` costs 0.1 USD a token (YAML `prices:`). "hi" with `max_tokens: 10` reserves
 * its input estimate (7 tokens) and 10 output tokens, 1.7 USD; the fake provider then counts 2 input tokens
 * and 8 output ("echo: hi"), 1.0 USD.
 */
const ADMIN_KEY = 'spend-admin-key-0123456789abcdef';
const KEYS = {
  ann: 'spend-ann-key-0123456789abcdefgh',
  ben: 'spend-ben-key-0123456789abcdefgh',
  cat: 'spend-cat-key-0123456789abcdefgh',
  dan: 'spend-dan-key-0123456789abcdefgh',
  eve: 'spend-eve-key-0123456789abcdefgh',
} as const;
const SECRET = 'spend-state-secret-0123456789abcdef-0123';

let dir: string;
let provider: FakeProvider;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lip-spend-'));
  provider = await startFakeProvider();
});
afterAll(async () => {
  await provider?.close();
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(name: string): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    [
      'auth:',
      '  api_keys:',
      `    - {name: ann, key: ${KEYS.ann}, budget: {usd: 5, per: month}}`,
      `    - {name: ben, key: ${KEYS.ben}, labels: [team-t]}`,
      `    - {name: cat, key: ${KEYS.cat}, budget: {usd: 4, per: month}}`,
      `    - {name: dan, key: ${KEYS.dan}, labels: [team-u]}`,
      `    - {name: eve, key: ${KEYS.eve}, budget: {usd: 1, per: day}}`,
      '  policies:',
      '    team-t: {tpm: 30}',
      '    team-u: {budget: {usd: 4, per: week}}',
      'prices:',
      '  "openai:gpt-budget": {input: 100000, output: 100000}',
      '',
    ].join('\n'),
  );
  return file;
}

const env = () => ({
  LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
  OPENAI_API_KEY: 'sk-spend-provider-key-abcdefghijkl',
  OPENAI_API_BASE_URL: provider.baseUrls.openai,
  ANTHROPIC_API_KEY: 'sk-ant-spend-provider-key-abcdefgh',
  ANTHROPIC_API_BASE_URL: provider.baseUrls.anthropic,
  GEMINI_API_KEY: 'AIzaSpendProviderKey0123456789abcdef',
  GEMINI_API_BASE_URL: provider.baseUrls.gemini,
});

const openai = (proxy: ProxyProcess, key: string) =>
  new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: key, maxRetries: 0 });

/** One "hi" through the OpenAI SDK: its status (200 or the error's) and, refused, the error. */
async function hi(proxy: ProxyProcess, key: string, maxTokens = 10, model = 'openai:gpt-budget') {
  try {
    await openai(proxy, key).chat.completions.create({
      model,
      max_tokens: maxTokens,
      messages: [{ role: 'user', content: 'hi' }],
    });
    return { status: 200, error: null };
  } catch (err) {
    if (!(err instanceof OpenAI.APIError)) throw err;
    return { status: err.status ?? 0, error: err };
  }
}

interface Budget {
  scope: string;
  name: string;
  usd: number;
  per: string;
  spent_usd: number;
  remaining_usd: number;
  unpriced_models?: string[];
  note?: string;
}

async function adminUsage(proxy: ProxyProcess, query: string) {
  const res = await fetch(`${proxy.url}/admin/usage?${query}`, {
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  });
  return {
    status: res.status,
    body: (await res.json()) as { total: { requests: number; cost_usd: number }; budgets: Budget[] },
  };
}

/** Seconds from now to the first of next month, 00:00 UTC. */
function secondsToMonthEnd(): number {
  const now = new Date();
  return (Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1) - now.getTime()) / 1000;
}

describe('budgets and tpm on one instance', () => {
  let proxy: ProxyProcess;
  beforeAll(async () => {
    proxy = await startProxyProcess(
      ['--config', writeConfig('one.yaml'), '--default-backend', 'openai'],
      env(),
    );
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('never spends past the budget by more than what is in flight: parallel requests, then 429 insufficient_quota', async () => {
    // Reservations of 1.7 against 5 USD: a fourth request fits only once three settled at 1.0 each.
    const parallel = await Promise.all(Array.from({ length: 12 }, () => hi(proxy, KEYS.ann)));
    let successes = parallel.filter((r) => r.status === 200).length;
    expect(parallel.every((r) => r.status === 200 || r.status === 429)).toBe(true);
    expect(successes).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 5; i++) if ((await hi(proxy, KEYS.ann)).status === 200) successes++;
    expect(successes).toBe(4);
    const { body } = await adminUsage(proxy, 'key=ann');
    expect(body.total.requests).toBe(4);
    expect(body.budgets).toEqual([
      expect.objectContaining({
        scope: 'key',
        name: 'ann',
        usd: 5,
        per: 'month',
        spent_usd: 4,
        remaining_usd: 1,
      }),
    ]);
    const refused = await hi(proxy, KEYS.ann);
    expect(refused.status).toBe(429);
    const error = refused.error as InstanceType<typeof OpenAI.APIError>;
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.code).toBe('insufficient_quota');
    expect(error.type).toBe('insufficient_quota');
    expect(error.message).toBe("429 The budget of 5 USD per month of key 'ann' is spent.");
    // The seconds to the period's end: the first of next month, UTC.
    const retryAfter = Number(error.headers?.get('retry-after'));
    expect(Math.abs(retryAfter - secondsToMonthEnd())).toBeLessThan(5);
  });

  it('refuses a spent budget in each protocol’s own 429', async () => {
    // 1 USD a day: the first request settles at exactly 1.0, and the budget is spent.
    expect((await hi(proxy, KEYS.eve, 2)).status).toBe(200);
    const anthropic = new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: KEYS.eve, maxRetries: 0 });
    const err = await anthropic.messages
      .create({ model: 'openai:gpt-budget', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
    expect((err as InstanceType<typeof Anthropic.RateLimitError>).error).toEqual({
      type: 'error',
      error: {
        type: 'rate_limit_error',
        message: "The budget of 1 USD per day of key 'eve' is spent.",
        retry_after: expect.any(Number),
      },
    });
    const gemini = new GoogleGenAI({ apiKey: KEYS.eve, httpOptions: { baseUrl: proxy.url } });
    const gerr = await gemini.models
      .generateContent({ model: 'openai:gpt-budget', contents: 'hi', config: { maxOutputTokens: 2 } })
      .catch((e: unknown) => e);
    expect(gerr).toBeInstanceOf(ApiError);
    expect((gerr as ApiError).status).toBe(429);
    expect((gerr as ApiError).message).toContain('RESOURCE_EXHAUSTED');
  });

  it('tpm: a label’s tokens per minute, reserved then settled, refused with the token headers', async () => {
    // 7 estimated + 20 allowed = 27 of 30; the answer settles at 2 + 8 = 10, so the next needs 37.
    expect((await hi(proxy, KEYS.ben, 20)).status).toBe(200);
    const refused = await hi(proxy, KEYS.ben, 20);
    expect(refused.status).toBe(429);
    const error = refused.error as InstanceType<typeof OpenAI.APIError>;
    expect(error.code).toBe('rate_limit_exceeded');
    expect(error.message).toBe("429 Rate limit of 30 tokens per minute of label 'team-t' reached.");
    const retryAfter = Number(error.headers?.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    // The memory window counts whole seconds: a request leaves it 60 to 61 s after it came in.
    expect(retryAfter).toBeLessThanOrEqual(61);
    expect(error.headers?.get('x-ratelimit-limit-tokens')).toBe('30');
    expect(error.headers?.get('x-ratelimit-remaining-tokens')).toBe('20');
    expect(error.headers?.get('x-ratelimit-reset-tokens')).toBe(`${retryAfter}s`);
    // A smaller request still fits what is left.
    expect((await hi(proxy, KEYS.ben, 5)).status).toBe(200);
  });

  it('refuses a request that could never fit its tpm or budget with a 400, not a 429 to retry', async () => {
    // team-t's tpm is 30: 7 estimated + 40 allowed could never fit a minute's window, however long one waited.
    const tooMany = await hi(proxy, KEYS.ben, 40);
    expect(tooMany.status).toBe(400);
    const error = tooMany.error as InstanceType<typeof OpenAI.APIError>;
    expect(error.code).toBe('request_too_large');
    expect(error.headers?.get('retry-after')).toBeNull();
    expect(error.message).toBe(
      "400 This request may take about 7 input and up to 40 output tokens, more than the 30 tokens per minute of label 'team-t': give it a lower max_tokens.",
    );
    // A request that names no limit is assumed to take the default, and told so.
    const unnamed = await openai(proxy, KEYS.ben)
      .chat.completions.create({ model: 'openai:gpt-budget', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(unnamed).toBeInstanceOf(OpenAI.BadRequestError);
    expect((unnamed as InstanceType<typeof OpenAI.APIError>).message).toContain(
      '(it names no max_completion_tokens: 8192 are assumed)',
    );
    // cat's budget is 4 USD a month: 7 + 40 tokens at 0.1 USD could never be paid for.
    const tooDear = await hi(proxy, KEYS.cat, 40);
    expect(tooDear.status).toBe(400);
    expect(tooDear.error?.message).toBe(
      "400 This request may take about 7 input and up to 40 output tokens, up to 4.70 USD, more than the budget of 4 USD per month of key 'cat': give it a lower max_tokens.",
    );
    // Nothing was reserved or spent: a request that fits still goes through, and nothing was counted.
    expect((await hi(proxy, KEYS.cat, 2)).status).toBe(200);
    expect((await adminUsage(proxy, 'key=cat')).body.total.requests).toBe(1);
  });

  it('says when a budget is charged nothing for a model without a price', async () => {
    expect((await hi(proxy, KEYS.dan, 10, 'openai:unpriced-model')).status).toBe(200);
    const { body } = await adminUsage(proxy, 'label=team-u');
    expect(body.budgets).toEqual([
      {
        scope: 'label',
        name: 'team-u',
        usd: 4,
        per: 'week',
        period_start: expect.stringMatching(/T00:00:00\.000Z$/),
        period_end: expect.stringMatching(/T00:00:00\.000Z$/),
        spent_usd: 0,
        remaining_usd: 4,
        unpriced_models: ['openai:unpriced-model'],
        note: 'models without a price were counted at cost 0 against this budget: openai:unpriced-model (add them under prices: in the YAML)',
      },
    ]);
    await vi.waitFor(() => expect(proxy.stdout()).toContain('No price for this model'));
  });
});

describe('a monthly budget survives a restart', () => {
  let proxy: ProxyProcess | undefined;
  let redis: RedisServer | undefined;
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
    await redis?.stop();
    redis = undefined;
  });

  /** cat: 4 USD a month; `max_tokens: 20` reserves 2.7. Two requests spend 2.0: a third would need 4.7. */
  async function spendTwo(p: ProxyProcess): Promise<void> {
    expect((await hi(p, KEYS.cat, 20)).status).toBe(200);
    expect((await hi(p, KEYS.cat, 20)).status).toBe(200);
  }

  it('through --usage-file: replayed at start (0600, bad lines reported), the budget still spent', async () => {
    const config = writeConfig('file.yaml');
    const file = join(dir, 'usage.jsonl');
    const args = ['--config', config, '--default-backend', 'openai', '--usage-file', file];
    proxy = await startProxyProcess(args, env());
    await spendTwo(proxy);
    await proxy.stop();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    appendFileSync(file, '{"cut by a crash\n');
    proxy = await startProxyProcess(args, env());
    const { body } = await adminUsage(proxy, 'key=cat');
    expect(body.total.requests).toBe(2);
    expect(body.budgets[0]?.spent_usd).toBe(2);
    const refused = await hi(proxy, KEYS.cat, 20);
    expect(refused.status).toBe(429);
    expect((refused.error as InstanceType<typeof OpenAI.APIError>).code).toBe('insufficient_quota');
    const warning = proxy
      .stdout()
      .split('\n')
      .find((line) => line.includes('Usage file: lines that are not usage entries were skipped'));
    expect(JSON.parse(warning ?? '{}')).toMatchObject({ bad_lines: 1, first_bad_lines: [3] });
  });

  it('through the Redis state store', async () => {
    redis = await startRedisServer();
    const args = [
      '--config',
      writeConfig('redis.yaml'),
      '--default-backend',
      'openai',
      '--state-store',
      redis.url,
    ];
    proxy = await startProxyProcess(args, { ...env(), PROXY_STATE_SECRET: SECRET });
    await spendTwo(proxy);
    await proxy.stop();
    proxy = await startProxyProcess(args, { ...env(), PROXY_STATE_SECRET: SECRET });
    // Usage is read from Redis once the new process is connected.
    let usage = await adminUsage(proxy, 'key=cat');
    for (let tries = 0; tries < 100 && usage.status !== 200; tries++) {
      await new Promise((r) => setTimeout(r, 20));
      usage = await adminUsage(proxy, 'key=cat');
    }
    expect(usage.body.total.requests).toBe(2);
    expect(usage.body.budgets[0]?.spent_usd).toBe(2);
    const refused = await hi(proxy, KEYS.cat, 20);
    expect(refused.status).toBe(429);
    expect((refused.error as InstanceType<typeof OpenAI.APIError>).code).toBe('insufficient_quota');
  });
});
