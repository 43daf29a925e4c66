import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../config/schema.js';
import { backoffMs, retryAfterSeconds } from './backoff.js';
import { MemoryBreakerStore } from '../state/breakers.js';
import { ManualClock } from './clock.js';
import { failureAction } from './policy.js';
import { PrefillTable } from './prefill.js';
import { RouteTable } from './routes.js';
import { attemptSettings } from './settings.js';

describe('failure policy (the table of what is retried)', () => {
  it.each([
    [408, 'retry'],
    [409, 'retry'],
    [429, 'retry'],
    [500, 'retry'],
    [502, 'retry'],
    [503, 'retry'],
    [504, 'retry'],
    [529, 'retry'],
    [400, 'final'],
    [401, 'final'],
    [403, 'final'],
    [404, 'final'],
    [422, 'final'],
  ])('status %i: %s', (status, action) => {
    expect(failureAction({ kind: 'status', status, body: '{}' })).toBe(action);
  });

  it('a prompt too long goes to the next element, in every protocol’s words; a content filter is final', () => {
    for (const body of [
      '{"error":{"code":"context_length_exceeded"}}',
      '{"error":{"message":"prompt is too long: 200001 tokens > 200000 maximum"}}',
      '{"error":{"message":"The input token count (1048577) exceeds the maximum number of tokens allowed"}}',
      // Anthropic's other wording, when the prompt fits but not with max_tokens.
      '{"type":"error","error":{"type":"invalid_request_error","message":"input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000, decrease input length or `max_tokens` and try again"}}',
      '{"error":{"message":"This request exceeds the model\'s context window"}}',
    ]) {
      expect(failureAction({ kind: 'status', status: 400, body })).toBe('next');
    }
    expect(failureAction({ kind: 'status', status: 400, body: '{"error":{"code":"content_filter"}}' })).toBe(
      'final',
    );
    expect(failureAction({ kind: 'transport' })).toBe('retry');
    expect(failureAction({ kind: 'silent' })).toBe('next');
  });
});

describe('settings and backoff', () => {
  it('defaults, route over global, the first-token timeout capped by --timeout, a time scale', () => {
    const s = attemptSettings({ retries: 2, time_scale: 0.01 }, { ttft_timeout_s: 20 }, 100);
    expect(s).toMatchObject({
      retries: 2,
      maxAttempts: 6,
      ttftMs: 100,
      stallMs: 300,
      deadlineMs: 1000,
      minGapMs: 5,
      maxRetryAfterS: 10,
      retryAfterMsPerS: 10,
      breakerFailures: 3,
    });
    expect(attemptSettings(undefined, undefined, 120_000).ttftMs).toBe(30_000);
  });

  it('full jitter over 0.25 s × 2ⁿ, capped at 4 s', () => {
    const s = attemptSettings(undefined, undefined, 120_000);
    expect(backoffMs(0, s, () => 1)).toBe(250);
    expect(backoffMs(3, s, () => 0.5)).toBe(1000);
    expect(backoffMs(10, s, () => 1)).toBe(4000);
    expect(backoffMs(2, s, () => 0)).toBe(0);
  });

  it('reads retry-after-ms, Retry-After seconds and dates', () => {
    expect(retryAfterSeconds({ 'retry-after-ms': '1500', 'retry-after': '9' })).toBe(1.5);
    expect(retryAfterSeconds({ 'retry-after': '7' })).toBe(7);
    expect(retryAfterSeconds({ 'retry-after': new Date(10_000).toUTCString() }, 4_000)).toBe(6);
    expect(retryAfterSeconds({ 'retry-after': 'soon' })).toBeNull();
    expect(retryAfterSeconds({})).toBeNull();
  });
});

describe('RouteTable', () => {
  const table = new RouteTable(
    { coder: { chain: ['anthropic:claude', 'gemini:gemini-pro'], retries: 0 } },
    undefined,
    120_000,
  );

  it('named routes, chains in the model, and no plan for a plain model without resilience', () => {
    expect(table.plan('coder')).toMatchObject({
      name: 'coder',
      elements: ['anthropic:claude', 'gemini:gemini-pro'],
    });
    expect(table.plan('coder')?.settings.retries).toBe(0);
    expect(table.plan('a:x| b:y |')).toMatchObject({ name: null, elements: ['a:x', 'b:y'] });
    expect(table.plan('openai:gpt-4o')).toBeNull();
    expect(table.names()).toEqual(['coder']);
    expect(table.chain('coder')).toEqual(['anthropic:claude', 'gemini:gemini-pro']);
    expect(table.chain('openai:gpt-4o')).toBeUndefined();
  });

  it('with a resilience section every request gets a plan', () => {
    expect(new RouteTable({}, {}, 1000).plan('gpt')).toMatchObject({ elements: ['gpt'] });
  });
});

describe('MemoryBreakerStore', () => {
  it('opens after the failures in a row, skips while cooling down, lets one probe through, closes on success', () => {
    const clock = new ManualClock();
    const store = new MemoryBreakerStore();
    const limits = { failures: 3, cooldownMs: 10_000 };
    for (let i = 0; i < 3; i++) {
      expect(store.admit('b:m', limits, clock.now())).toBe(true);
      store.failed('b:m', limits, clock.now());
    }
    expect(store.admit('b:m', limits, clock.now())).toBe(false);
    clock.advance(10_000);
    expect(store.admit('b:m', limits, clock.now())).toBe(true);
    expect(store.snapshot()).toEqual([{ element: 'b:m', phase: 'half_open', failures: 3 }]);
    expect(store.admit('b:m', limits, clock.now())).toBe(false);
    store.failed('b:m', limits, clock.now());
    expect(store.snapshot()[0]?.phase).toBe('open');
    clock.advance(10_000);
    expect(store.admit('b:m', limits, clock.now())).toBe(true);
    store.succeeded('b:m');
    expect(store.snapshot()).toEqual([]);
    expect(store.admit('b:m', limits, clock.now())).toBe(true);
  });
});

describe('ManualClock', () => {
  it('fires timers in order and re-arms refreshed ones', async () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    const t = clock.timer(100, () => fired.push('a'));
    clock.timer(50, () => fired.push('b'));
    clock.advance(60);
    t.refresh();
    clock.advance(60);
    expect(fired).toEqual(['b']);
    clock.advance(40);
    expect(fired).toEqual(['b', 'a']);
    const slept = clock.sleep(10);
    clock.advance(10);
    await slept;
  });
});

describe('PrefillTable', () => {
  it('takes all models of a backend, none, or those matching a glob', () => {
    const { backends } = ConfigSchema.parse({
      backends: {
        default_backend: 'openai',
        anthropic: { prefill: true },
        openai: { prefill: false },
        local: { base_url: 'http://127.0.0.1:1/v1', prefill: ['qwen-*', 'deepseek-v?'] },
      },
    });
    const table = new PrefillTable(backends);
    expect(table.accepts('anthropic', 'claude-x')).toBe(true);
    expect(table.accepts('openai', 'gpt-5')).toBe(false);
    expect(table.accepts('gemini', 'gemini-pro')).toBe(false);
    expect(table.accepts('local', 'qwen-2.5')).toBe(true);
    expect(table.accepts('local', 'deepseek-v3')).toBe(true);
    expect(table.accepts('local', 'deepseek-v31')).toBe(false);
    expect(table.accepts('local', 'xqwen-2.5')).toBe(false);
  });
});
