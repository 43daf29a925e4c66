import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { ApiError, GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startRedisServer, type RedisServer } from './helpers/redis-server.js';

/**
 * Per-key limits across replicas (README, "Teams": rate and concurrency limits): three proxy processes on one
 * real redis-server share every key's rpm and max_concurrent exactly, a label's keys share its counters, a
 * limit changes on reload, refusals are 429 in each protocol's envelope (never 403), and with Redis gone
 * each replica keeps deciding on its own memory (a log line, the degraded gauge).
 */
const ADMIN = 'limits-admin-key-0123456789abcdef';
const KEYS = {
  alice: 'limits-alice-key-0123456789abcdef', // rpm 30
  streamer: 'limits-streamer-key-0123456789ab', // max_concurrent 2
  carol: 'limits-carol-key-0123456789abcdef', // team-a
  dave: 'limits-dave-key-0123456789abcdefg', // team-a
  erin: 'limits-erin-key-0123456789abcdefg', // team-a, and rpm 2 of her own
  single: 'limits-single-key-0123456789abcd', // rpm 1: the envelopes
  reloader: 'limits-reloader-key-0123456789ab', // rpm 2, then 4 after a reload
  outage: 'limits-outage-key-0123456789abcd', // rpm 3, while Redis goes away
  routed: 'limits-routed-key-0123456789abcd', // rpm 2, through failover
} as const;
const SECRET = 'limits-state-secret-0123456789abcdefghij';

function config(reloaderRpm: number): string {
  const key = (name: keyof typeof KEYS, extra: string) => `    - {name: ${name}, key: ${KEYS[name]}${extra}}`;
  return [
    'auth:',
    '  api_keys:',
    key('alice', ', rpm: 30'),
    key('streamer', ', max_concurrent: 2'),
    key('carol', ', labels: [team-a]'),
    key('dave', ', labels: [team-a]'),
    key('erin', ', labels: [team-a], rpm: 2'),
    key('single', ', rpm: 1'),
    key('reloader', `, rpm: ${reloaderRpm}`),
    key('outage', ', rpm: 3'),
    key('routed', ', rpm: 2'),
    '  policies:',
    '    team-a: {rpm: 5}',
    'routes:',
    // Routes only (no global `resilience:`): other requests take the single-attempt path.
    '  flaky:',
    '    chain: [openai:fault-status-503-flaky, openai:gpt-4o-mini]',
    '    retries: 0',
    '',
  ].join('\n');
}

let dir: string;
let configFile: string;
let redis: RedisServer;
let provider: FakeProvider;
const replicas: ProxyProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lip-limits-'));
  configFile = join(dir, 'limits.yaml');
  writeFileSync(configFile, config(2));
  [redis, provider] = await Promise.all([startRedisServer(), startFakeProvider()]);
  const env = {
    LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN,
    PROXY_STATE_SECRET: SECRET,
    OPENAI_API_KEY: 'sk-limits-upstream-0123456789',
    OPENAI_API_BASE_URL: provider.baseUrls.openai,
  };
  const args = ['--config', configFile, '--state-store', redis.url, '--default-backend', 'openai'];
  // One after the other: three starting at once on a busy machine can miss the start-up watchdog.
  for (let i = 0; i < 3; i++) replicas.push(await startProxyProcess(args, env));
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  await Promise.all([provider?.close(), redis?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

const openai = (replica: number, key: string) =>
  new OpenAI({ baseURL: `${replicas[replica]!.url}/v1`, apiKey: key, maxRetries: 0 });

/** One chat request through `replica`: its status and, let in, its rate-limit headers. */
async function chat(replica: number, key: string, model = 'gpt-4o-mini') {
  try {
    const { data, response } = await openai(replica, key)
      .chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe('echo: hi');
    return {
      status: response.status,
      limit: response.headers.get('x-ratelimit-limit-requests'),
      remaining: response.headers.get('x-ratelimit-remaining-requests'),
      reset: response.headers.get('x-ratelimit-reset-requests'),
    };
  } catch (error) {
    if (!(error instanceof OpenAI.APIError)) throw error;
    return { status: error.status, error };
  }
}

/** `count` requests of `key`, all at once, spread over the three replicas. */
function spread(key: string, count: number, model?: string) {
  return Promise.all(Array.from({ length: count }, (_, i) => chat(i % 3, key, model)));
}

const statuses = (results: Array<{ status: number }>) => results.map((r) => r.status).sort((a, b) => a - b);
const times = (status: number, count: number) => Array.from({ length: count }, () => status);

async function metrics(replica: number): Promise<string> {
  const res = await fetch(`${replicas[replica]!.url}/metrics`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  expect(res.status).toBe(200);
  return res.text();
}

/** The sum over the replicas of one series of `llm_proxy_limit_rejections_total`. */
async function rejections(key: string, limit: string): Promise<number> {
  let sum = 0;
  for (const replica of [0, 1, 2]) {
    const line = new RegExp(
      `^llm_proxy_limit_rejections_total\\{key="${key}",limit="${limit}"\\} (\\d+)$`,
      'm',
    );
    sum += Number(line.exec(await metrics(replica))?.[1] ?? 0);
  }
  return sum;
}

describe('rpm across three replicas on one Redis', () => {
  it('a key with rpm: 30 gets exactly 30 of 45 requests, numbered down exactly, the rest 429', async () => {
    const results = await spread(KEYS.alice, 45);
    expect(statuses(results)).toEqual([...times(200, 30), ...times(429, 15)]);
    const granted = results.filter((r) => r.status === 200);
    expect(granted.map((r) => Number(r.remaining)).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 30 }, (_, i) => i),
    );
    for (const ok of granted) expect([ok.limit, ok.reset]).toEqual(['30', '1m0s']);
    for (const refused of results.filter((r) => r.status === 429)) {
      const error = refused.error as InstanceType<typeof OpenAI.RateLimitError>;
      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      const retryAfter = Number(error.headers.get('retry-after'));
      expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
      expect(error.error).toEqual({
        message: `Rate limit reached for requests: 30 per minute for key 'alice'. Try again in ${retryAfter}s.`,
        type: 'rate_limit_exceeded',
        code: 'rate_limit_exceeded',
        param: null,
        retry_after: retryAfter,
      });
      expect(error.headers.get('x-ratelimit-limit-requests')).toBe('30');
      expect(error.headers.get('x-ratelimit-remaining-requests')).toBe('0');
      expect(error.headers.get('x-ratelimit-reset-requests')).toBe(
        retryAfter === 60 ? '1m0s' : `${retryAfter}s`,
      );
    }
    expect(await rejections('alice', 'rpm')).toBe(15);
  });

  it('counts a request tried by failover once, however many attempts it made', async () => {
    const before = provider.received;
    const first = await chat(0, KEYS.routed, 'flaky');
    expect(first).toMatchObject({ status: 200, limit: '2', remaining: '1' });
    // Two attempts reached the provider (the 503, then the answer) for one unit of the key's rpm.
    expect(provider.received - before).toBe(2);
    expect(await chat(1, KEYS.routed, 'flaky')).toMatchObject({ status: 200, remaining: '0' });
    expect((await chat(2, KEYS.routed, 'flaky')).status).toBe(429);
  });

  it("answers 429 in each protocol's own envelope, never 403", async () => {
    expect((await chat(0, KEYS.single)).status).toBe(200);
    const url = replicas[1]!.url;

    const anthropic = new Anthropic({ baseURL: `${url}/anthropic`, apiKey: KEYS.single, maxRetries: 0 });
    const fromAnthropic = await anthropic.messages
      .create({ model: 'gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(fromAnthropic).toBeInstanceOf(Anthropic.RateLimitError);
    const anthropicError = fromAnthropic as InstanceType<typeof Anthropic.RateLimitError>;
    const retry = Number(anthropicError.headers.get('retry-after'));
    expect(anthropicError.error).toEqual({
      type: 'error',
      error: {
        type: 'rate_limit_error',
        message: `Rate limit reached for requests: 1 per minute for key 'single'. Try again in ${retry}s.`,
        retry_after: retry,
      },
    });
    expect(anthropicError.headers.get('x-ratelimit-limit-requests')).toBe('1');

    const gemini = new GoogleGenAI({ apiKey: KEYS.single, httpOptions: { baseUrl: url } });
    const fromGemini = await gemini.models
      .generateContent({ model: 'gpt-4o-mini', contents: 'hi' })
      .catch((e: unknown) => e);
    expect(fromGemini).toBeInstanceOf(ApiError);
    expect((fromGemini as ApiError).status).toBe(429);
    const raw = await fetch(`${url}/v1beta/models/gpt-4o-mini:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': KEYS.single, 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
    });
    expect(raw.status).toBe(429);
    const rawRetry = Number(raw.headers.get('retry-after'));
    expect(await raw.json()).toEqual({
      error: {
        code: 429,
        message: `Rate limit reached for requests: 1 per minute for key 'single'. Try again in ${rawRetry}s.`,
        status: 'RESOURCE_EXHAUSTED',
        retry_after: rawRetry,
      },
    });

    const responses = await openai(2, KEYS.single)
      .responses.create({ model: 'gpt-4o-mini', input: 'hi' })
      .catch((e: unknown) => e);
    expect(responses).toBeInstanceOf(OpenAI.RateLimitError);
    expect((responses as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('rate_limit_exceeded');
  });
});

describe('labels', () => {
  it("shares a label's counter between its keys, and holds a key by its own limit and its label's", async () => {
    // Erin: her own rpm 2 refuses the third (the label still has 3 left)...
    const erin = await Promise.all([0, 1, 2].map((replica) => chat(replica, KEYS.erin)));
    expect(statuses(erin)).toEqual([200, 200, 429]);
    const refused = erin.find((r) => r.status === 429)!.error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(refused.error).toMatchObject({
      message: expect.stringMatching(/^Rate limit reached for requests: 2 per minute for key 'erin'\./),
    });
    // ...and carol and dave share the three the label has left, across the replicas.
    const team = await Promise.all([spread(KEYS.carol, 4), spread(KEYS.dave, 4)]);
    expect(statuses(team.flat())).toEqual([...times(200, 3), ...times(429, 5)]);
    const labelRefusal = team.flat().find((r) => r.status === 429)!.error as InstanceType<
      typeof OpenAI.RateLimitError
    >;
    expect(labelRefusal.error).toMatchObject({
      message: expect.stringMatching(
        /^Rate limit reached for requests: 5 per minute for label 'team-a' \(shared by its keys\)\./,
      ),
    });
    expect(await rejections('carol', 'rpm')).toBe(5 - (await rejections('dave', 'rpm')));
  });
});

/**
 * Requests of `key` whose response has closed, over the replicas: their access lines, written after the
 * `close` that gives a slot back (so once a line is there, its slot's release has gone to Redis).
 */
function closed(key: string): number {
  let count = 0;
  for (const replica of replicas)
    for (const line of replica.stdout().split('\n'))
      if (line.includes(`"key_name":"${key}"`) && line.endsWith('"msg":"request"}')) count++;
  return count;
}

describe('max_concurrent across replicas', () => {
  it('holds 2 of 10 parallel streams, frees a slot on client abort and when streams end', async () => {
    const stream = (replica: number) =>
      openai(replica, KEYS.streamer).chat.completions.create({
        model: 'fault-hold-limits',
        stream: true,
        messages: [{ role: 'user', content: 'hold on' }],
      });
    const abortedBefore = provider.aborted;
    const first = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => stream(i % 3)));
    const open = first.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    const refused = first.filter((r) => r.status === 'rejected').map((r) => r.reason as unknown);
    expect(open).toHaveLength(2);
    expect(refused).toHaveLength(8);
    for (const error of refused) {
      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      const rate = error as InstanceType<typeof OpenAI.RateLimitError>;
      expect(rate.error).toEqual({
        message:
          "Too many requests in flight: at most 2 at once for key 'streamer'. Try again when one ends.",
        type: 'rate_limit_exceeded',
        code: 'rate_limit_exceeded',
        param: null,
        retry_after: 1,
      });
      expect(rate.headers.get('retry-after')).toBe('1');
    }
    expect(provider.inFlight()).toBe(2);

    // The client of one stream goes away: its slot is free again (once: one more stream, not two).
    open[0]!.controller.abort();
    await provider.waitForAborts(abortedBefore + 1);
    await vi.waitFor(() => expect(closed('streamer')).toBe(9));
    const again = await Promise.allSettled([stream(1), stream(2)]);
    expect(again.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);

    // The held streams end: their slots are free again.
    const running = [open[1]!, ...again.filter((r) => r.status === 'fulfilled').map((r) => r.value)];
    provider.release();
    for (const held of running) for await (const _chunk of held) void _chunk;
    await vi.waitFor(() => expect(closed('streamer')).toBe(12));
    const after = await Promise.allSettled([stream(0), stream(1), stream(2)]);
    expect(after.map((r) => r.status).sort()).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    provider.release();
    for (const r of after) if (r.status === 'fulfilled') for await (const _chunk of r.value) void _chunk;
    expect(await rejections('streamer', 'max_concurrent')).toBe(10);
  });
});

describe('reload', () => {
  it('changes a key’s rpm without a restart, on the same counter', async () => {
    expect(statuses(await spread(KEYS.reloader, 3))).toEqual([200, 200, 429]);
    writeFileSync(configFile, config(4));
    for (const replica of replicas) {
      const res = await fetch(`${replica.url}/admin/reload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      expect(res.status).toBe(200);
    }
    const after = await spread(KEYS.reloader, 3);
    expect(statuses(after)).toEqual([200, 200, 429]);
    expect(after.filter((r) => r.status === 200).every((r) => r.limit === '4')).toBe(true);
  });
});

describe('Redis down', () => {
  it('keeps deciding per replica on memory, says so once, sets the gauge, and never answers 5xx', async () => {
    expect(statuses(await spread(KEYS.outage, 4))).toEqual([...times(200, 3), 429]);
    await redis.stop();
    // Each replica now has the key's 3 of its own: 9 of 12.
    const during = await spread(KEYS.outage, 12);
    expect(statuses(during)).toEqual([...times(200, 9), ...times(429, 3)]);
    for (const replica of [0, 1, 2]) {
      expect(await metrics(replica)).toMatch(/^llm_proxy_state_store_degraded\{feature="limits"\} 1$/m);
      const proxy = replicas[replica]!;
      await vi.waitFor(() => expect(proxy.stdout()).toContain('Limits store unreachable'));
      const lines = proxy
        .stdout()
        .split('\n')
        .filter((line) => line.includes('Limits store unreachable'));
      expect(lines).toHaveLength(1);
      expect(proxy.stdout()).not.toContain(SECRET);
      expect(proxy.stdout()).not.toContain(KEYS.outage);
    }
  });
});
