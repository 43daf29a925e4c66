import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider, type RecordedRequest } from '../fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';

/**
 * The failover scorecard (docs/reliability.md, "Failover scorecard"): 16 provider faults, each through the
 * four front-ends (the Responses API's included) with their official SDKs (their own retries off), each cell scored from conduct — what
 * the client got and what the fake provider's attempt log shows — as pass, partial, safe or fail. The
 * expected table below is the scorecard: a regression in any cell fails the test.
 *
 * Every cell is a chain `primary|fallback`: the primary speaks the front-end's own protocol (the
 * pass-through path) and carries the fault; the fallback is another protocol (the translated path). The
 * proxy runs the fast timing profile (`resilience.time_scale`), so a "30 s" first-token timeout is 0.9 s.
 */

const KEY = 'scorecard-proxy-key-0123456789';
const TIME_SCALE = 0.03;
/** The least gap between two attempts on one element, as the fast profile scales it (0.5 s). */
const MIN_GAP_MS = 500 * TIME_SCALE;

type Side = 'openai' | 'anthropic' | 'gemini' | 'responses';
type Score = 'pass' | 'partial' | 'safe' | 'fail';
/** The Responses front-end's primary is the openai backend's own /v1/responses (passed through). */
const SIDES: Side[] = ['openai', 'anthropic', 'gemini', 'responses'];
/** The backend that speaks each front-end's protocol natively. */
const BACKEND: Record<Side, Exclude<Side, 'responses'>> = {
  openai: 'openai',
  anthropic: 'anthropic',
  gemini: 'gemini',
  responses: 'openai',
};
const FALLBACK: Record<Side, Exclude<Side, 'responses'>> = {
  openai: 'anthropic',
  anthropic: 'gemini',
  gemini: 'openai',
  responses: 'anthropic',
};

/**
 * A fault and the conduct that passes it: who answers (`primary`, `fallback`, or `error` when the client
 * must get an error), how many attempts each element gets, and what the error must say.
 */
interface Fault {
  readonly name: string;
  readonly primary: string;
  readonly fallback?: string;
  readonly stream: boolean;
  readonly answeredBy: 'primary' | 'fallback' | 'error';
  readonly primaryAttempts: number;
  readonly fallbackAttempts: number;
  /** For an expected error: a piece of its message that proves it is the real failure (no masking). */
  readonly reason?: RegExp;
  /** The least gap between the primary's attempts (Retry-After honoured), else MIN_GAP_MS. */
  readonly minGapMs?: number;
}

const FAULTS: readonly Fault[] = [
  {
    name: '429 with Retry-After',
    primary: 'first-1-status-429-retry-after-1',
    stream: false,
    answeredBy: 'primary',
    primaryAttempts: 2,
    fallbackAttempts: 0,
    minGapMs: 1000 * TIME_SCALE,
  },
  {
    name: '429 without Retry-After',
    primary: 'status-429',
    stream: false,
    answeredBy: 'fallback',
    primaryAttempts: 2,
    fallbackAttempts: 1,
  },
  {
    name: '500 once',
    primary: 'first-1-status-500',
    stream: true,
    answeredBy: 'primary',
    primaryAttempts: 2,
    fallbackAttempts: 0,
  },
  {
    name: '503 persistent',
    primary: 'status-503',
    stream: true,
    answeredBy: 'fallback',
    primaryAttempts: 2,
    fallbackAttempts: 1,
  },
  {
    name: 'reset before headers',
    primary: 'reset-before-headers',
    stream: false,
    answeredBy: 'fallback',
    primaryAttempts: 2,
    fallbackAttempts: 1,
  },
  {
    name: 'no response',
    primary: 'no-head',
    stream: true,
    answeredBy: 'fallback',
    primaryAttempts: 1,
    fallbackAttempts: 1,
  },
  {
    name: 'slow first token',
    primary: 'slow-first-token-5000',
    stream: true,
    answeredBy: 'fallback',
    primaryAttempts: 1,
    fallbackAttempts: 1,
  },
  {
    name: 'stream cut',
    primary: 'reset-mid-stream',
    stream: true,
    answeredBy: 'error',
    primaryAttempts: 1,
    fallbackAttempts: 0,
    reason: /mid-stream/,
  },
  {
    name: 'stream stall',
    primary: 'stall-mid-stream',
    stream: true,
    answeredBy: 'error',
    primaryAttempts: 1,
    fallbackAttempts: 0,
    reason: /mid-stream/,
  },
  {
    name: 'malformed chunk',
    primary: 'malformed-chunk',
    stream: true,
    answeredBy: 'primary',
    primaryAttempts: 1,
    fallbackAttempts: 0,
  },
  {
    name: 'missing [DONE]',
    primary: 'missing-done',
    stream: true,
    answeredBy: 'primary',
    primaryAttempts: 1,
    fallbackAttempts: 0,
  },
  {
    name: 'context length exceeded',
    primary: 'context-length-exceeded',
    stream: false,
    answeredBy: 'fallback',
    primaryAttempts: 1,
    fallbackAttempts: 1,
  },
  {
    name: 'content filter',
    primary: 'content-filter',
    stream: false,
    answeredBy: 'error',
    primaryAttempts: 1,
    fallbackAttempts: 0,
    reason: /content|SAFETY/i,
  },
  {
    name: 'cut stream, fallback rejects prefill',
    primary: 'reset-mid-stream',
    fallback: 'rejects-prefill',
    stream: true,
    answeredBy: 'error',
    primaryAttempts: 1,
    fallbackAttempts: 0,
    reason: /mid-stream/,
  },
  {
    name: 'primary flaps',
    primary: 'flap',
    stream: false,
    answeredBy: 'primary',
    primaryAttempts: 2,
    fallbackAttempts: 0,
  },
  {
    name: 'fail-over accounting',
    primary: 'status-500',
    stream: true,
    answeredBy: 'fallback',
    primaryAttempts: 2,
    fallbackAttempts: 1,
  },
];

/**
 * The scorecard: every cell's expected score. Gemini's content filter is a 200 whose only content is the
 * block reason, passed on as such (the SDK gives an answer without text): that is what Gemini's own
 * clients expect, and it carries the provider's reason.
 */
const EXPECTED: Record<Side, Record<string, Score>> = {
  openai: Object.fromEntries(FAULTS.map((f) => [f.name, 'pass'])),
  anthropic: Object.fromEntries(FAULTS.map((f) => [f.name, 'pass'])),
  gemini: Object.fromEntries(FAULTS.map((f) => [f.name, 'pass'])),
  responses: Object.fromEntries(FAULTS.map((f) => [f.name, 'pass'])),
};

/** What the client got, read the way its SDK gives it. */
interface ClientResult {
  ok: boolean;
  text: string;
  model: string | undefined;
  usage: number | undefined;
  /** The protocol's end arrived (`[DONE]` seen by the SDK as the stream's end, `message_stop`, a finish reason). */
  complete: boolean;
  headers: Headers | undefined;
  error: string;
  /** Gemini's content filter: the block reason in an answer. */
  blockReason?: string | undefined;
}

let fake: FakeProvider;
let proxy: ProxyProcess;
/** The same proxy with `continue_streams: true` and fallbacks declared to take a prefill (by model glob). */
let continuing: ProxyProcess;
let dir: string;

beforeAll(async () => {
  fake = await startFakeProvider();
  dir = mkdtempSync(path.join(tmpdir(), 'scorecard-'));
  const config = path.join(dir, 'proxy.yaml');
  writeFileSync(config, `resilience:\n  time_scale: ${TIME_SCALE}\n  breaker:\n    failures: 1000\n`);
  const continuingConfig = path.join(dir, 'continuing.yaml');
  writeFileSync(
    continuingConfig,
    [
      'resilience:',
      `  time_scale: ${TIME_SCALE}`,
      '  continue_streams: true',
      '  breaker: { failures: 1000 }',
      'backends:',
      ...['openai', 'anthropic', 'gemini'].map(
        (backend) => `  ${backend}: { prefill: ['*accepts-prefill*', '*declared*'] }`,
      ),
      '',
    ].join('\n'),
  );
  const env = {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    OPENAI_API_KEY: 'sk-scorecard-openai-0123456789',
    OPENAI_API_BASE_URL: fake.baseUrls.openai,
    ANTHROPIC_API_KEY: 'sk-ant-scorecard-0123456789',
    ANTHROPIC_API_BASE_URL: fake.baseUrls.anthropic,
    GEMINI_API_KEY: 'AIzaScorecardKey0123456789abcdef',
    GEMINI_API_BASE_URL: fake.baseUrls.gemini,
  };
  [proxy, continuing] = await Promise.all([
    startProxyProcess(['--config', config, '--default-backend', 'openai'], env),
    startProxyProcess(['--config', continuingConfig, '--default-backend', 'openai'], env),
  ]);
});

afterAll(async () => {
  await Promise.all([proxy?.stop(), continuing?.stop()]);
  await fake?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** What a client call found, before it found anything. */
function emptyResult(): ClientResult {
  return {
    ok: false,
    text: '',
    model: undefined,
    usage: undefined,
    complete: false,
    headers: undefined,
    error: '',
  };
}

async function askOpenAI(
  model: string,
  prompt: string,
  stream: boolean,
  base = proxy.url,
): Promise<ClientResult> {
  const c = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, maxRetries: 0, timeout: 20_000 });
  const messages = [{ role: 'user' as const, content: prompt }];
  const result = emptyResult();
  try {
    if (!stream) {
      const { data, response } = await c.chat.completions.create({ model, messages }).withResponse();
      result.headers = response.headers;
      result.text = data.choices[0]?.message.content ?? '';
      result.model = data.model;
      result.usage = data.usage?.total_tokens;
      result.complete = data.choices[0]?.finish_reason === 'stop';
    } else {
      const { data, response } = await c.chat.completions
        .create({ model, messages, stream: true, stream_options: { include_usage: true } })
        .withResponse();
      result.headers = response.headers;
      for await (const chunk of data) {
        result.text += chunk.choices[0]?.delta.content ?? '';
        result.model = chunk.model;
        if (chunk.choices[0]?.finish_reason) result.complete = true;
        if (chunk.usage) result.usage = chunk.usage.total_tokens;
      }
    }
    result.ok = true;
  } catch (err) {
    result.error = errorText(err);
  }
  return result;
}

async function askAnthropic(
  model: string,
  prompt: string,
  stream: boolean,
  base = proxy.url,
): Promise<ClientResult> {
  const c = new Anthropic({ baseURL: `${base}/anthropic`, apiKey: KEY, maxRetries: 0, timeout: 20_000 });
  const params = { model, max_tokens: 256, messages: [{ role: 'user' as const, content: prompt }] };
  const result = emptyResult();
  try {
    if (!stream) {
      const { data, response } = await c.messages.create(params).withResponse();
      result.headers = response.headers;
      result.text = data.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
      result.model = data.model;
      result.usage = data.usage.output_tokens;
      result.complete = data.stop_reason === 'end_turn';
    } else {
      const { data, response } = await c.messages.create({ ...params, stream: true }).withResponse();
      result.headers = response.headers;
      for await (const event of data) {
        if (event.type === 'message_start') result.model = event.message.model;
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta')
          result.text += event.delta.text;
        if (event.type === 'message_delta') result.usage = event.usage.output_tokens;
        if (event.type === 'message_stop') result.complete = true;
      }
    }
    result.ok = true;
  } catch (err) {
    result.error = errorText(err);
  }
  return result;
}

async function askGemini(
  model: string,
  prompt: string,
  stream: boolean,
  base = proxy.url,
): Promise<ClientResult> {
  const c = new GoogleGenAI({
    apiKey: KEY,
    httpOptions: { baseUrl: base, retryOptions: { attempts: 1 } },
  });
  const result = emptyResult();
  try {
    if (!stream) {
      const r = await c.models.generateContent({ model, contents: prompt });
      result.headers = new Headers(r.sdkHttpResponse?.headers);
      result.text = r.text ?? '';
      result.model = r.modelVersion;
      result.usage = r.usageMetadata?.totalTokenCount;
      result.complete = r.candidates?.[0]?.finishReason === 'STOP';
      result.blockReason = r.promptFeedback?.blockReason;
    } else {
      for await (const chunk of await c.models.generateContentStream({ model, contents: prompt })) {
        result.headers ??= new Headers(chunk.sdkHttpResponse?.headers);
        result.text += chunk.text ?? '';
        result.model = chunk.modelVersion;
        if (chunk.usageMetadata?.totalTokenCount) result.usage = chunk.usageMetadata.totalTokenCount;
        if (chunk.candidates?.[0]?.finishReason) result.complete = true;
      }
    }
    result.ok = true;
  } catch (err) {
    result.error = errorText(err);
  }
  return result;
}

/**
 * The Responses API through the `openai` SDK: its typed events read one by one. A stream's `error` or
 * `response.failed` event is its failure (the SDK's `responses.stream` helper rejects on the first).
 */
async function askResponses(
  model: string,
  prompt: string,
  stream: boolean,
  base = proxy.url,
): Promise<ClientResult> {
  const c = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, maxRetries: 0, timeout: 20_000 });
  const params = { model, input: prompt, store: false };
  const result = emptyResult();
  try {
    if (!stream) {
      const { data, response } = await c.responses.create(params).withResponse();
      result.headers = response.headers;
      result.text = data.output_text;
      result.model = data.model;
      result.usage = data.usage?.total_tokens;
      result.complete = data.status === 'completed';
    } else {
      const { data, response } = await c.responses.create({ ...params, stream: true }).withResponse();
      result.headers = response.headers;
      for await (const event of data) {
        if (event.type === 'response.created') result.model = event.response.model;
        if (event.type === 'response.output_text.delta') result.text += event.delta;
        if (event.type === 'error') throw new Error(event.message);
        if (event.type === 'response.failed') throw new Error(event.response.error?.message);
        if (event.type === 'response.completed') {
          result.complete = event.response.status === 'completed';
          result.usage = event.response.usage?.total_tokens;
        }
      }
    }
    result.ok = true;
  } catch (err) {
    result.error = errorText(err);
  }
  return result;
}

const ASK: Record<
  Side,
  (model: string, prompt: string, stream: boolean, base?: string) => Promise<ClientResult>
> = {
  openai: askOpenAI,
  anthropic: askAnthropic,
  gemini: askGemini,
  responses: askResponses,
};

/** A model name as the fake provider's attempt log shows it (Gemini's carry no `models/` prefix here). */
const attemptsOf = (log: readonly RecordedRequest[], model: string) => log.filter((r) => r.model === model);

/** One cell: the fault through one front-end, scored from conduct; `why` names each flaw found. */
async function scoreCell(side: Side, fault: Fault, cell: string): Promise<{ score: Score; why: string[] }> {
  const primaryModel = `fault-${fault.primary}-${cell}`;
  const fallbackModel = fault.fallback ? `fault-${fault.fallback}-${cell}` : `ok-${cell}`;
  const chain = `${BACKEND[side]}:${primaryModel}|${FALLBACK[side]}:${fallbackModel}`;
  const prompt = `scorecard ${cell}`;
  const before = fake.requests.length;
  const got = await ASK[side](chain, prompt, fault.stream);
  const log = fake.requests.slice(before);
  const primary = attemptsOf(log, primaryModel);
  const fallback = attemptsOf(log, fallbackModel);
  const why: string[] = [];
  let score: Score = 'pass';
  const worse = (to: Score, reason: string) => {
    why.push(reason);
    const rank: Record<Score, number> = { pass: 0, partial: 1, safe: 2, fail: 3 };
    if (rank[to] > rank[score]) score = to;
  };

  // Hammering: more attempts than the policy allows, or two on one element too close together.
  if (primary.length > fault.primaryAttempts) worse('fail', `primary tried ${primary.length} times`);
  if (fallback.length > fault.fallbackAttempts) worse('fail', `fallback tried ${fallback.length} times`);
  const gap = fault.minGapMs ?? MIN_GAP_MS;
  for (let i = 1; i < primary.length; i++) {
    // 1 ms of slack: timers round to whole milliseconds.
    if (primary[i]!.at - primary[i - 1]!.at < gap - 1) worse('fail', 'retried the primary too soon');
  }
  if (primary.length < fault.primaryAttempts) worse('partial', `primary tried only ${primary.length} times`);
  if (fallback.length < fault.fallbackAttempts) worse('partial', `fallback tried ${fallback.length} times`);

  const expectedText = `echo: ${prompt}`;
  if (fault.answeredBy === 'error') {
    if (side === 'gemini' && fault.name === 'content filter') {
      // Gemini reports a blocked prompt as an answer with the reason and no text.
      if (!got.ok || got.blockReason !== 'SAFETY') worse('fail', `block reason lost: ${got.error}`);
    } else if (got.ok) {
      worse(
        'fail',
        got.text === expectedText
          ? 'a failure was masked as an answer'
          : 'a truncated answer was presented as complete',
      );
    } else if (fault.reason && !fault.reason.test(got.error)) {
      worse('fail', `the real failure was masked: ${got.error}`);
    }
  } else if (!got.ok) {
    worse('safe', `clean error where an answer was possible: ${got.error}`);
  } else {
    if (got.text !== expectedText) worse('fail', `a wrong or truncated answer: ${JSON.stringify(got.text)}`);
    if (!got.complete) worse('partial', 'the answer did not end as complete');
    const answerer = fault.answeredBy === 'primary' ? primaryModel : fallbackModel;
    const answererBackend = fault.answeredBy === 'primary' ? BACKEND[side] : FALLBACK[side];
    if (got.model !== answerer) worse('partial', `reported model ${got.model}, answered by ${answerer}`);
    if (!(got.usage && got.usage > 0)) worse('partial', 'no usage');
    const headers = got.headers;
    if (
      headers?.get('x-proxy-backend') !== answererBackend ||
      headers?.get('x-proxy-model') !== answerer ||
      headers?.get('x-proxy-attempts') !== String(primary.length + fallback.length)
    ) {
      worse(
        'partial',
        `accounting headers: ${headers?.get('x-proxy-backend')} ${headers?.get('x-proxy-model')} ${headers?.get('x-proxy-attempts')}`,
      );
    }
  }

  // Alive afterwards: the same front-end is served at once.
  const after = await ASK[side](`${BACKEND[side]}:alive-${cell}`, 'still there?', false);
  if (!after.ok || after.text !== 'echo: still there?') worse('fail', `not alive afterwards: ${after.error}`);
  return { score, why };
}

describe('failover scorecard: 16 provider faults through each front-end', () => {
  for (const side of SIDES) {
    it(`${side} SDK`, { timeout: 120_000 }, async () => {
      const scores: Record<string, Score> = {};
      const flaws: Record<string, string[]> = {};
      for (const [i, fault] of FAULTS.entries()) {
        const { score, why } = await scoreCell(side, fault, `${side.slice(0, 2)}${i}`);
        scores[fault.name] = score;
        if (why.length > 0) flaws[fault.name] = why;
      }
      const tally = (s: Score) => Object.values(scores).filter((v) => v === s).length;
      // The scorecard as docs/reliability.md shows it, for a failing run to read.
      console.log(
        `${side}: ${tally('pass')} pass / ${tally('partial')} partial / ${tally('safe')} safe / ${tally('fail')} fail`,
        JSON.stringify(flaws),
      );
      expect(scores, JSON.stringify(flaws)).toEqual(EXPECTED[side]);
      expect(fake.inFlight()).toBe(0);
    });
  }
});

/** The text of a request's last turn, whatever its protocol: what a continuation sent as the prefill. */
function lastTurn(request: RecordedRequest | undefined): { role: unknown; text: string } {
  const body = (request?.body ?? {}) as { messages?: unknown[]; contents?: unknown[] };
  const turns = (body.messages ?? body.contents ?? []) as Array<Record<string, unknown>>;
  const last = turns.at(-1) ?? {};
  const content = last.content ?? last.parts;
  const text =
    typeof content === 'string'
      ? content
      : Array.isArray(content)
        ? content.map((part) => String((part as { text?: unknown }).text ?? '')).join('')
        : '';
  return { role: last.role, text };
}

/**
 * The row "cut stream, fallback rejects prefill" the other way: with `continue_streams` on. A fallback
 * declared to take a prefill continues the cut stream (the client sees one answer, whole); one declared but
 * refusing it, and one not declared (never sent a prefill), leave the client the original failure.
 */
describe('failover scorecard with continue_streams: a cut stream and its fallback', () => {
  for (const side of SIDES) {
    it(`${side} SDK`, { timeout: 60_000 }, async () => {
      const ask = (fallback: string, cell: string) => {
        const primaryModel = `fault-reset-mid-stream-${cell}`;
        const fallbackModel = `fault-${fallback}-${cell}`;
        const prompt = `scorecard ${cell}`;
        const before = fake.requests.length;
        return ASK[side](
          `${BACKEND[side]}:${primaryModel}|${FALLBACK[side]}:${fallbackModel}`,
          prompt,
          true,
          continuing.url,
        ).then((got) => {
          const log = fake.requests.slice(before);
          return {
            got,
            prompt,
            primary: attemptsOf(log, primaryModel),
            fallback: attemptsOf(log, fallbackModel),
          };
        });
      };
      const cell = side.slice(0, 2);

      // Declared and accepted: one seamless answer, complete, with usage; the prefill is what the client had.
      const continued = await ask('accepts-prefill', `${cell}c1`);
      expect(continued.got.error).toBe('');
      expect(continued.got.text).toBe(`echo: ${continued.prompt}`);
      expect(continued.got.complete).toBe(true);
      expect(continued.got.usage).toBeGreaterThan(0);
      expect(continued.got.headers?.get('x-proxy-backend')).toBe(BACKEND[side]);
      expect(continued.primary).toHaveLength(1);
      expect(continued.fallback).toHaveLength(1);
      const prefill = lastTurn(continued.fallback[0]);
      expect(prefill.role).toBe(FALLBACK[side] === 'gemini' ? 'model' : 'assistant');
      expect(prefill.text.length).toBeGreaterThan(0);
      expect(`echo: ${continued.prompt}`.startsWith(prefill.text)).toBe(true);
      expect(prefill.text).not.toBe(`echo: ${continued.prompt}`);

      // Declared, but refused: tried once, and the client gets the original failure, not the refusal.
      const refused = await ask('rejects-prefill-declared', `${cell}c2`);
      expect(refused.got.ok).toBe(false);
      expect(refused.got.error).toMatch(/mid-stream/);
      expect(refused.got.error).not.toMatch(/prefill/);
      expect(refused.primary).toHaveLength(1);
      expect(refused.fallback).toHaveLength(1);

      // Not declared: no prefill is ever sent there; the original failure.
      const undeclared = await ask('rejects-prefill', `${cell}c3`);
      expect(undeclared.got.ok).toBe(false);
      expect(undeclared.got.error).toMatch(/mid-stream/);
      expect(undeclared.primary).toHaveLength(1);
      expect(undeclared.fallback).toHaveLength(0);

      const after = await ASK[side](`${BACKEND[side]}:alive-${cell}c`, 'still there?', false, continuing.url);
      expect(after.text).toBe('echo: still there?');
      expect(fake.inFlight()).toBe(0);
    });
  }
});
