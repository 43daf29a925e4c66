import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { PolicyLimits } from '../config/schema.js';
import { ProxyError } from '../proxy-error.js';
import { MemoryLimitStore, type LimitStore } from '../state/limits.js';
import { PolicyTable, type PolicyKey } from '../teams/policies.js';
import type { ChatExchange } from './exchange.js';
import type { RequestState } from './state.js';
import { RequestLimits, resetDuration, type RequestLimitName } from './limits.js';

const T0 = 1_700_000_000_000;

/** A response that can close (or be gone already), with its request's state: the headers its answer gets. */
class FakeResponse extends EventEmitter {
  readonly state: RequestState = { start: 0, backendMs: 0, backend: null, model: null };
  destroyed = false;
  get headers(): Map<string, string> {
    return new Map(Object.entries(this.state.limitHeaders ?? {}));
  }
  close(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

function exchange(authKeyName: string | null, res = new FakeResponse()) {
  const ex = { id: 'req-1', authKeyName, res: res as unknown as ServerResponse, state: res.state };
  return { ex: ex as ChatExchange, res };
}

/** A store that counts its calls, around a memory store. */
function countingStore() {
  const memory = new MemoryLimitStore();
  const calls = { acquire: 0, release: 0 };
  const store: LimitStore = {
    acquire: (checks, now) => {
      calls.acquire++;
      return memory.acquire(checks, now);
    },
    release: (lease, now, actual) => {
      calls.release++;
      return memory.release(lease, now, actual);
    },
    floorSpent: (key, amount, periodEndMs, now) => memory.floorSpent(key, amount, periodEndMs, now),
  };
  return { store, calls };
}

function setup(keys: PolicyKey[], labels: Record<string, PolicyLimits> = {}) {
  const clock = { now: T0 };
  const rejected: Array<[string, RequestLimitName]> = [];
  const { store, calls } = countingStore();
  const limits = new RequestLimits({
    store,
    now: () => clock.now,
    onRejected: (key, limit) => rejected.push([key, limit]),
  });
  return { limits, table: new PolicyTable(keys, labels), clock, rejected, calls };
}

async function refusal(run: Promise<unknown>): Promise<ProxyError> {
  const error = await run.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(error instanceof ProxyError)) throw new Error(`expected a ProxyError, got ${String(error)}`);
  return error;
}

describe('RequestLimits: rpm', () => {
  it('lets `rpm` requests in with their headers, then answers 429 with Retry-After and the headers', async () => {
    const { limits, table, clock, rejected } = setup([{ name: 'alice', limits: { rpm: 3 } }]);
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      clock.now = T0 + i * 10_000;
      const { ex, res } = exchange('alice');
      await limits.admit(ex, table);
      expect(res.headers.get('x-ratelimit-limit-requests')).toBe('3');
      expect(res.headers.get('x-ratelimit-reset-requests')).toBe('1m0s');
      remaining.push(res.headers.get('x-ratelimit-remaining-requests') as string);
    }
    expect(remaining).toEqual(['2', '1', '0']);
    // The memory store counts whole seconds: the first request leaves the window at T0 + 61 s.
    clock.now = T0 + 31_000;
    const { ex, res } = exchange('alice');
    const error = await refusal(limits.admit(ex, table));
    expect(error.status).toBe(429);
    expect(error.code).toBe('rate_limit_exceeded');
    expect(error.message).toBe(
      "Rate limit reached for requests: 3 per minute for key 'alice'. Try again in 30s.",
    );
    expect(error.retryAfter).toBe(30);
    expect(error.headers).toEqual({
      'x-ratelimit-limit-requests': '3',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '30s',
    });
    // Nothing set on the response itself: the error's headers go with the error answer.
    expect(res.headers.size).toBe(0);
    expect(rejected).toEqual([['alice', 'rpm']]);
    // The window slides: the first request leaves it at T0 + 61 s.
    clock.now = T0 + 61_000;
    await limits.admit(exchange('alice').ex, table);
  });

  it('does nothing for a request without a key, or a key without request limits', async () => {
    const { limits, table, calls } = setup([
      { name: 'alice', limits: { rpm: 1 } },
      { name: 'bob', limits: { tpm: 100 } },
      { name: 'carol' },
    ]);
    for (const name of [null, 'bob', 'carol', 'unknown', null, 'bob']) {
      const { ex, res } = exchange(name);
      await limits.admit(ex, table);
      expect(res.headers.size).toBe(0);
      expect(res.listenerCount('close')).toBe(0);
    }
    expect(calls.acquire).toBe(0);
  });

  it("shares a label's counter between its keys, and holds a key by its own limit and its label's", async () => {
    const { limits, table, rejected } = setup(
      [
        { name: 'carol', labels: ['team-a'] },
        { name: 'dave', labels: ['team-a'] },
        { name: 'erin', labels: ['team-a'], limits: { rpm: 2 } },
      ],
      { 'team-a': { rpm: 5 } },
    );
    // Erin: her own limit first (the label still has room).
    const erin = exchange('erin');
    await limits.admit(erin.ex, table);
    // The tightest of the two windows is the one reported.
    expect(erin.res.headers.get('x-ratelimit-limit-requests')).toBe('2');
    expect(erin.res.headers.get('x-ratelimit-remaining-requests')).toBe('1');
    await limits.admit(exchange('erin').ex, table);
    // (At T0: the window's whole seconds end 61 s on.)
    const own = await refusal(limits.admit(exchange('erin').ex, table));
    expect(own.message).toBe(
      "Rate limit reached for requests: 2 per minute for key 'erin'. Try again in 61s.",
    );
    // Carol and Dave share the three the label has left.
    const carol = exchange('carol');
    await limits.admit(carol.ex, table);
    expect(carol.res.headers.get('x-ratelimit-limit-requests')).toBe('5');
    expect(carol.res.headers.get('x-ratelimit-remaining-requests')).toBe('2');
    await limits.admit(exchange('dave').ex, table);
    await limits.admit(exchange('carol').ex, table);
    const shared = await refusal(limits.admit(exchange('dave').ex, table));
    expect(shared.message).toBe(
      "Rate limit reached for requests: 5 per minute for label 'team-a' (shared by its keys). Try again in 61s.",
    );
    expect(rejected).toEqual([
      ['erin', 'rpm'],
      ['dave', 'rpm'],
    ]);
  });

  it('takes a changed limit from the table of a reload, on the same counter', async () => {
    const { limits, clock } = setup([]);
    const before = new PolicyTable([{ name: 'alice', limits: { rpm: 2 } }], {});
    await limits.admit(exchange('alice').ex, before);
    await limits.admit(exchange('alice').ex, before);
    await refusal(limits.admit(exchange('alice').ex, before));
    const after = new PolicyTable([{ name: 'alice', limits: { rpm: 3 } }], {});
    clock.now += 1000;
    const { ex, res } = exchange('alice');
    await limits.admit(ex, after);
    expect(res.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    await refusal(limits.admit(exchange('alice').ex, after));
  });
});

describe('RequestLimits: max_concurrent', () => {
  it('holds a slot until the response closes, and gives it back exactly once', async () => {
    const { limits, table, rejected, calls } = setup([{ name: 'alice', limits: { max_concurrent: 2 } }]);
    const first = exchange('alice');
    const second = exchange('alice');
    await limits.admit(first.ex, table);
    await limits.admit(second.ex, table);
    // No rpm: no rate-limit headers on a request let in.
    expect(first.res.headers.size).toBe(0);
    const error = await refusal(limits.admit(exchange('alice').ex, table));
    expect(error.status).toBe(429);
    expect(error.message).toBe(
      "Too many requests in flight: at most 2 at once for key 'alice'. Try again when one ends.",
    );
    expect(error.retryAfter).toBe(1);
    expect(error.headers).toEqual({
      'x-ratelimit-limit-requests': '2',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '1s',
    });
    expect(rejected).toEqual([['alice', 'max_concurrent']]);
    first.res.close();
    first.res.emit('close'); // a second close (an end and an abort both seen) frees nothing more
    expect(calls.release).toBe(1);
    const third = exchange('alice');
    await limits.admit(third.ex, table);
    await refusal(limits.admit(exchange('alice').ex, table));
  });

  it('gives the slot back at once when the client left while the limits were taken', async () => {
    const { limits, table, calls } = setup([{ name: 'alice', limits: { max_concurrent: 1 } }]);
    const gone = new FakeResponse();
    gone.destroyed = true;
    await limits.admit(exchange('alice', gone).ex, table);
    expect(calls.release).toBe(1);
    await limits.admit(exchange('alice').ex, table);
  });

  it('a request refused by its concurrency takes nothing from its rpm (all or nothing)', async () => {
    const { limits, table } = setup([{ name: 'alice', limits: { rpm: 3, max_concurrent: 1 } }]);
    const held = exchange('alice');
    await limits.admit(held.ex, table);
    expect(held.res.headers.get('x-ratelimit-remaining-requests')).toBe('2');
    for (let i = 0; i < 3; i++) await refusal(limits.admit(exchange('alice').ex, table));
    held.res.close();
    const next = exchange('alice');
    await limits.admit(next.ex, table);
    expect(next.res.headers.get('x-ratelimit-remaining-requests')).toBe('1');
  });

  it('shares a label slot between its keys', async () => {
    const { limits, table } = setup(
      [
        { name: 'carol', labels: ['ci'] },
        { name: 'dave', labels: ['ci'] },
      ],
      { ci: { max_concurrent: 1 } },
    );
    const carol = exchange('carol');
    await limits.admit(carol.ex, table);
    const error = await refusal(limits.admit(exchange('dave').ex, table));
    expect(error.message).toBe(
      "Too many requests in flight: at most 1 at once for label 'ci' (shared by its keys). Try again when one ends.",
    );
    carol.res.close();
    await limits.admit(exchange('dave').ex, table);
  });
});

describe('resetDuration', () => {
  it('writes durations as OpenAI does', () => {
    expect([0, 1, 59, 60, 61, 3599, 3600, 3725].map(resetDuration)).toEqual([
      '0s',
      '1s',
      '59s',
      '1m0s',
      '1m1s',
      '59m59s',
      '1h0m0s',
      '1h2m5s',
    ]);
  });
});
