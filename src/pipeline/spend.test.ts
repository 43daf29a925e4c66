import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { BackendRegistry } from '../backends/registry.js';
import { ModelLabels } from '../observability/model-labels.js';
import { UsageStats } from '../observability/usage-stats.js';
import { MemoryLimitStore } from '../state/limits.js';
import { MemoryUsageLedger } from '../state/usage-ledger.js';
import { PolicyTable, type PolicyKey } from '../teams/policies.js';
import { PriceTable } from '../teams/prices.js';
import type { ChatExchange } from './exchange.js';
import { RequestLimits } from './limits.js';
import type { RequestState } from './state.js';
import { budgetKey, DEFAULT_MAX_OUTPUT_TOKENS, maxOutputTokens, periodOf, Spend } from './spend.js';

describe('budget periods (UTC)', () => {
  const at = Date.UTC(2026, 11, 6, 13, 30); // a Sunday
  it('day, ISO week (Monday first), month and total', () => {
    expect(periodOf('day', at)).toEqual({ start: Date.UTC(2026, 11, 6), end: Date.UTC(2026, 11, 7) });
    expect(periodOf('week', at)).toEqual({ start: Date.UTC(2026, 10, 30), end: Date.UTC(2026, 11, 7) });
    expect(periodOf('month', at)).toEqual({ start: Date.UTC(2026, 11, 1), end: Date.UTC(2027, 0, 1) });
    expect(periodOf('total', at)).toEqual({ start: 0, end: 8.64e15 });
  });
});

describe("a request's output limit", () => {
  it('is read where each protocol puts it, with a default when absent', () => {
    expect(maxOutputTokens('openai', { max_completion_tokens: 5, max_tokens: 9 })).toBe(5);
    expect(maxOutputTokens('openai', { max_tokens: 9 })).toBe(9);
    expect(maxOutputTokens('anthropic', { max_tokens: 7 })).toBe(7);
    expect(maxOutputTokens('responses', { max_output_tokens: 3 })).toBe(3);
    expect(maxOutputTokens('gemini', { generationConfig: { maxOutputTokens: 11 } })).toBe(11);
    expect(maxOutputTokens('gemini', {})).toBe(DEFAULT_MAX_OUTPUT_TOKENS);
  });
});

describe('Spend: settling answers', () => {
  const T0 = Date.UTC(2026, 11, 6, 12);
  function setup(keys: PolicyKey[], labels?: ModelLabels) {
    const stats = new UsageStats();
    const ledger = new MemoryUsageLedger(labels);
    const warned: string[] = [];
    const limits = new MemoryLimitStore();
    const table = new PolicyTable(keys, {});
    const rejected: Array<[string, string]> = [];
    const onRejected = (key: string, limit: string) => rejected.push([key, limit]);
    const requestLimits = new RequestLimits({ store: limits, now: () => T0, onRejected });
    const spend = new Spend({
      policies: () => table,
      prices: new PriceTable({ 'mine:cheap': { input: 1, output: 2 } }, {}),
      ledger,
      stats,
      labels,
      limits,
      requestLimits,
      registry: undefined as unknown as BackendRegistry,
      log: { warn: (_obj, msg) => warned.push(msg) },
      onRejected,
      now: () => T0,
    });
    return { spend, stats, ledger, warned, limits, table, rejected };
  }
  const exchange = (authKeyName: string | null) => {
    const res = new EventEmitter() as EventEmitter & { destroyed: boolean };
    res.destroyed = false;
    const state = { start: 0, backendMs: 0, backend: null, model: null } as RequestState;
    return { id: 'r', authKeyName, res, state } as unknown as ChatExchange;
  };
  const answer = (spend: Spend, ex: ChatExchange, backend: string, model: string, input: number) => {
    const meter = spend.begin(ex, 'openai', {}, []);
    if (meter instanceof Promise) throw new Error('a memory store decides without a promise');
    const answerer = { backend: { name: backend }, model };
    meter.answering(answerer);
    meter.done(answerer, { input, output: 1, cacheRead: 0, cacheWrite: 0 }, 'answered');
  };

  it("adds each answer to its key's series and prices, the answerer changing or not", async () => {
    const { spend, stats, ledger, warned } = setup([{ name: 'alice' }]);
    answer(spend, exchange('alice'), 'mine', 'cheap', 10);
    answer(spend, exchange('alice'), 'mine', 'cheap', 20);
    answer(spend, exchange('alice'), 'mine', 'other', 5);
    answer(spend, exchange('alice'), 'mine', 'cheap', 1);
    answer(spend, exchange(null), 'mine', 'cheap', 2);
    answer(spend, exchange('alice'), 'mine', 'other', 5);
    const series = [...stats.series()].map((s) => [s.key, s.model, s.input, s.output, s.costUsd]);
    expect(series).toEqual([
      ['alice', 'cheap', 31, 3, (31 * 1 + 3 * 2) / 1e6],
      ['alice', 'other', 10, 2, 0],
      ['none', 'cheap', 2, 1, (2 + 2) / 1e6],
    ]);
    // Once per unpriced model, however often it answers.
    expect(warned).toEqual([
      'No price for this model: its usage is counted at cost 0 (add it under prices: in the YAML)',
    ]);
    const rows = await ledger.rows('2026-12-06', '2026-12-06');
    expect(rows.map((r) => [r.key, r.model, r.input])).toEqual([
      ['alice', 'cheap', 31],
      ['alice', 'other', 10],
      ['', 'cheap', 2],
    ]);
  });

  it('counts models clients make up under bounded labels: series, warnings and ledger rows', async () => {
    const labels = new ModelLabels({ known: (_backend, model) => model === 'cheap', maxOthers: 3 });
    const { spend, stats, ledger, warned } = setup([{ name: 'alice' }], labels);
    for (let i = 0; i < 50; i++) answer(spend, exchange('alice'), 'mine', `made-up-${i}`, 1);
    answer(spend, exchange('alice'), 'mine', 'cheap', 1);
    const models = [...stats.series()].map((s) => [s.model, s.input]);
    expect(models).toEqual([
      ['made-up-0', 1],
      ['made-up-1', 1],
      ['made-up-2', 1],
      ['other', 47],
      ['cheap', 1],
    ]);
    // Three admitted names and `other`.
    expect(warned.length).toBe(4);
    expect((await ledger.rows('2026-12-06', '2026-12-06')).map((r) => r.model)).toEqual(
      models.map(([model]) => model),
    );
  });

  it("takes a key's request limits at once from the memory store, and gives them back when the answer ends", () => {
    const { spend, limits } = setup([{ name: 'bob', limits: { rpm: 3, max_concurrent: 1 } }]);
    const ex = exchange('bob');
    const meter = spend.begin(ex, 'openai', {}, []);
    if (meter instanceof Promise) throw new Error('a memory store decides without a promise');
    expect(ex.state.limitHeaders).toEqual({
      'x-ratelimit-limit-requests': '3',
      'x-ratelimit-remaining-requests': '2',
      'x-ratelimit-reset-requests': '1m0s',
    });
    expect(() => spend.begin(exchange('bob'), 'openai', {}, [])).toThrow(
      "Too many requests in flight: at most 1 at once for key 'bob'. Try again when one ends.",
    );
    expect(limits.counters).toBe(2);
    meter.done({ backend: { name: 'mine' }, model: 'cheap' }, null, 'answered');
    expect(limits.counters).toBe(1);
    // The refused request took nothing from the rpm (all or nothing): one is left after this one.
    const next = exchange('bob');
    spend.begin(next, 'openai', {}, []);
    expect(next.state.limitHeaders?.['x-ratelimit-remaining-requests']).toBe('1');
    expect(() => spend.begin(exchange('bob'), 'openai', {}, [])).toThrow(/at most 1 at once/);
  });

  const usage = (input: number, output: number) => ({ input, output, cacheRead: 0, cacheWrite: 0 });
  const first = { backend: { name: 'mine' }, model: 'cheap' };
  const second = { backend: { name: 'mine' }, model: 'other' };
  /** A request to `first` whose stream may be continued, cut with `cutUsage`: held by its meter. */
  const cutForContinuation = (spend: Spend, ex: ChatExchange, cutUsage: ReturnType<typeof usage> | null) => {
    const meter = spend.begin(ex, 'openai', {}, []);
    if (meter instanceof Promise) throw new Error('a memory store decides without a promise');
    meter.answering(first);
    meter.mayContinue();
    meter.done(first, cutUsage, 'cut');
    return meter;
  };

  it('settles a cut answer and its continuation once: a line each, one request, one release', async () => {
    const { spend, stats, ledger, limits } = setup([{ name: 'bob', limits: { max_concurrent: 1 } }]);
    const ex = exchange('bob');
    const meter = cutForContinuation(spend, ex, null);
    // Held for the continuation: nothing recorded, the slot still taken.
    expect(await ledger.rows('2026-12-06', '2026-12-06')).toEqual([]);
    expect(limits.counters).toBe(1);
    meter.answering(second);
    meter.done(second, usage(12, 5), 'answered');
    const rows = await ledger.rows('2026-12-06', '2026-12-06');
    expect(rows.map((r) => [r.model, r.requests, r.input, r.output])).toEqual([
      ['cheap', 1, 0, 0],
      ['other', 0, 12, 5],
    ]);
    expect([...stats.series()].map((s) => [s.model, s.input, s.output])).toEqual([
      ['cheap', 0, 0],
      ['other', 12, 5],
    ]);
    expect(limits.counters).toBe(0);
    // Settled once: the close that follows changes nothing.
    ex.res.emit('close');
    expect((await ledger.rows('2026-12-06', '2026-12-06')).length).toBe(2);
  });

  it('settles a held cut answer alone when no continuation began before the response closed', async () => {
    const { spend, ledger } = setup([{ name: 'alice' }]);
    const ex = exchange('alice');
    cutForContinuation(spend, ex, usage(3, 2));
    expect(await ledger.rows('2026-12-06', '2026-12-06')).toEqual([]);
    ex.res.emit('close');
    const rows = await ledger.rows('2026-12-06', '2026-12-06');
    expect(rows.map((r) => [r.model, r.requests, r.input, r.output])).toEqual([['cheap', 1, 3, 2]]);
  });

  it('charges a continuation cut by the client with the cut answer, as one request', async () => {
    const { spend, ledger } = setup([{ name: 'alice' }]);
    const ex = exchange('alice');
    cutForContinuation(spend, ex, usage(3, 2)).answering(second);
    ex.res.emit('close');
    const rows = await ledger.rows('2026-12-06', '2026-12-06');
    expect(rows.map((r) => [r.model, r.requests, r.input, r.output])).toEqual([
      ['cheap', 1, 3, 2],
      ['other', 0, 0, 0],
    ]);
  });

  it('counts no usage for an answer its backend failed, whatever usage it reported, unless it was continued', async () => {
    const { spend, ledger, limits } = setup([{ name: 'bob', limits: { max_concurrent: 1 } }]);
    const failed = spend.begin(exchange('bob'), 'openai', {}, []);
    if (failed instanceof Promise) throw new Error('a memory store decides without a promise');
    failed.answering(first);
    failed.done(first, usage(3, 1), 'failed');
    expect(await ledger.rows('2026-12-06', '2026-12-06')).toEqual([]);
    // Its slot given back all the same.
    expect(limits.counters).toBe(0);
    // Failed, held for a continuation that never began: nothing either.
    const ex = exchange('bob');
    const held = spend.begin(ex, 'openai', {}, []);
    if (held instanceof Promise) throw new Error('a memory store decides without a promise');
    held.answering(first);
    held.mayContinue();
    held.done(first, usage(3, 1), 'failed');
    ex.res.emit('close');
    expect(await ledger.rows('2026-12-06', '2026-12-06')).toEqual([]);
    expect(limits.counters).toBe(0);
  });

  it('counts a failed answer that was continued as the first part of the answer', async () => {
    const { spend, ledger } = setup([{ name: 'alice' }]);
    const ex = exchange('alice');
    const meter = spend.begin(ex, 'openai', {}, []);
    if (meter instanceof Promise) throw new Error('a memory store decides without a promise');
    meter.answering(first);
    meter.mayContinue();
    meter.done(first, usage(3, 2), 'failed');
    meter.answering(second);
    meter.done(second, usage(12, 5), 'answered');
    const rows = await ledger.rows('2026-12-06', '2026-12-06');
    expect(rows.map((r) => [r.model, r.requests, r.input, r.output])).toEqual([
      ['cheap', 1, 3, 2],
      ['other', 0, 12, 5],
    ]);
  });

  it('settles at once when the answer ends whole, continuation allowed or not', async () => {
    const { spend, ledger } = setup([{ name: 'alice' }]);
    const meter = spend.begin(exchange('alice'), 'openai', {}, []);
    if (meter instanceof Promise) throw new Error('a memory store decides without a promise');
    meter.answering(first);
    meter.mayContinue();
    meter.done(first, usage(4, 1), 'answered');
    const rows = await ledger.rows('2026-12-06', '2026-12-06');
    expect(rows.map((r) => [r.model, r.requests, r.input])).toEqual([['cheap', 1, 4]]);
  });

  it('counts every limit that refuses in the metric, by key and limit: rpm, max_concurrent, tpm, budget', async () => {
    const { spend, limits, table, rejected } = setup([
      { name: 'rpm', limits: { rpm: 1 } },
      { name: 'slots', limits: { max_concurrent: 1 } },
      { name: 'tokens', limits: { tpm: 100 } },
      { name: 'spender', limits: { budget: { usd: 1, per: 'day' } } },
    ]);
    const body = { max_tokens: 60, messages: [{ role: 'user', content: 'hi' }] };
    // A memory store refuses the request limits at once (a throw), the others through a promise: both rejections here.
    const take = async (key: string) => spend.begin(exchange(key), 'openai', body, [first]);
    await take('rpm');
    await expect(take('rpm')).rejects.toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
    await take('slots');
    await expect(take('slots')).rejects.toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
    // 60 output tokens and the input reserved twice are more than 100 a minute.
    await take('tokens');
    await expect(take('tokens')).rejects.toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
    const scope = table.policyFor('spender')?.scopes[0];
    if (scope === undefined) throw new Error('spender has a budget');
    const { start, end } = periodOf('day', T0);
    await limits.floorSpent(budgetKey(scope, 'day', start), 1, end, T0);
    await expect(take('spender')).rejects.toMatchObject({ status: 429, code: 'insufficient_quota' });
    expect(rejected).toEqual([
      ['rpm', 'rpm'],
      ['slots', 'max_concurrent'],
      ['tokens', 'tpm'],
      ['spender', 'budget'],
    ]);
  });
});
