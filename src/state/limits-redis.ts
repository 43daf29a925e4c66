import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Fallback } from './fallback.js';
import {
  MemoryLimitStore,
  costOf,
  DEFAULT_LEASE_TTL_MS,
  horizonMs,
  type AcquireResult,
  type Lease,
  type LimitCheck,
  type LimitStore,
  type LimitStoreOptions,
  type Settlement,
} from './limits.js';
import type { RedisConnection } from './redis-connection.js';
import type { StateStore } from './store.js';

/**
 * `MemoryLimitStore` (limits.ts) in Redis, one Lua script per call, so every replica on the state store
 * shares exactly the same counters: N replicas grant what one would.
 *
 * Layout, per counter key `k` under the feature's prefix `P` (all keys share its hash tag: one slot):
 * `P l:k` sorted set of entries `<lease>#<check>:<cost>` scored by expiry (epoch ms), `P t:k` their running
 * total, `P s:k` a budget's settled spend and its period's end (counted only before it, by the caller's clock;
 * Redis expiry then removes the key). Clocks are the caller's, as for
 * brute force: keep replicas' clocks in sync.
 */

const COMMON = `
local now = tonumber(ARGV[1])
local lease, n = ARGV[2], tonumber(ARGV[3])
local function num(x) return string.format('%.17g', x) end
local function costOfMember(m) return tonumber(string.match(m, ':([^:]+)$')) end
-- A budget's spend: hash {a amount, u period end ms}, counted only before its period ends (by the caller's clock).
local function spentOf(spent)
  local s = redis.call('HMGET', spent, 'a', 'u')
  if s[1] and now < tonumber(s[2]) then return tonumber(s[1]) end
  return 0
end
local function setTotal(ledger, total, t)
  if redis.call('ZCARD', ledger) == 0 then redis.call('DEL', total) else redis.call('SET', total, num(t), 'KEEPTTL') end
end
`;

/**
 * KEYS: per check ledger, total, spent. ARGV: now, lease, n, then per check kind, limit, cost, horizon ms,
 * period end ms. Returns {'granted', remaining...} or {'denied', check index, remaining, retry ms}.
 */
const ACQUIRE_SCRIPT = `${COMMON}
local function trim(ledger, total)
  local t = tonumber(redis.call('GET', total) or '0')
  local expired = redis.call('ZRANGEBYSCORE', ledger, '-inf', now)
  if #expired > 0 then
    for _, m in ipairs(expired) do t = t - costOfMember(m) end
    redis.call('ZREMRANGEBYSCORE', ledger, '-inf', now)
    setTotal(ledger, total, t)
    if redis.call('ZCARD', ledger) == 0 then t = 0 end
  end
  return t
end
local remaining = {}
for i = 1, n do
  local k, a = (i - 1) * 3, 3 + (i - 1) * 5
  local kind, limit, cost = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local horizon = tonumber(ARGV[a + 4])
  local used = trim(KEYS[k + 1], KEYS[k + 2])
  if kind == 'budget' then used = used + spentOf(KEYS[k + 3]) end
  local left = limit - used
  if cost > left then
    local retry
    if kind == 'budget' then retry = tonumber(ARGV[a + 5]) - now
    elseif kind == 'concurrency' then retry = 1000
    else
      retry = horizon
      if cost <= limit then
        local freed = 0
        local entries = redis.call('ZRANGE', KEYS[k + 1], 0, -1, 'WITHSCORES')
        for j = 1, #entries, 2 do
          freed = freed + costOfMember(entries[j])
          if used - freed + cost <= limit then retry = tonumber(entries[j + 1]) - now break end
        end
      end
    end
    return { 'denied', tostring(i - 1), num(math.max(0, left)), num(retry) }
  end
  remaining[i] = num(left - cost)
end
for i = 1, n do
  local k, a = (i - 1) * 3, 3 + (i - 1) * 5
  local ledger, total = KEYS[k + 1], KEYS[k + 2]
  local cost, horizon = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  redis.call('ZADD', ledger, num(now + horizon), lease .. '#' .. (i - 1) .. ':' .. ARGV[a + 3])
  redis.call('SET', total, num(tonumber(redis.call('GET', total) or '0') + cost), 'KEEPTTL')
  for _, key in ipairs({ ledger, total }) do
    if redis.call('PTTL', key) < horizon then redis.call('PEXPIRE', key, horizon) end
  end
end
return { 'granted', unpack(remaining) }
`;

/**
 * KEYS: per check ledger, total, spent. ARGV: now, lease, n, then per check kind, cost, actual or '', period
 * end, then `ifHeld`: '1' settles a budget only if its reservation is still held — a release that may have
 * run already, or of an acquire that may never have run (an unanswered call), counts its spend at most once.
 */
const RELEASE_SCRIPT = `${COMMON}
local ifHeld = ARGV[4 + n * 4] == '1'
for i = 1, n do
  local k, a = (i - 1) * 3, 3 + (i - 1) * 4
  local ledger, total, spent = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local kind, cost, actual = ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3]
  local member = lease .. '#' .. (i - 1) .. ':' .. ARGV[a + 2]
  local t = tonumber(redis.call('GET', total) or '0')
  if kind == 'window' then
    if actual ~= '' then
      local score = redis.call('ZSCORE', ledger, member)
      if score then
        redis.call('ZREM', ledger, member)
        redis.call('ZADD', ledger, score, lease .. '#' .. (i - 1) .. ':' .. actual)
        setTotal(ledger, total, t + tonumber(actual) - cost)
      end
    end
  else
    local held = redis.call('ZREM', ledger, member) == 1
    if held then setTotal(ledger, total, t - cost) end
    local periodEnd = tonumber(ARGV[a + 4])
    if kind == 'budget' and now < periodEnd and (held or not ifHeld) then
      if spentOf(spent) == 0 then redis.call('DEL', spent) end
      redis.call('HINCRBYFLOAT', spent, 'a', actual ~= '' and actual or ARGV[a + 2])
      redis.call('HSET', spent, 'u', ARGV[a + 4])
      redis.call('PEXPIRE', spent, math.ceil(periodEnd - now))
    end
  end
end
return 1
`;

/** KEYS: the budget's spent hash. ARGV: now, amount, period end ms. Spend becomes at least the amount. */
const FLOOR_SCRIPT = `
local now, amount, periodEnd = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if now >= periodEnd then return 0 end
local s = redis.call('HMGET', KEYS[1], 'a', 'u')
local spent = 0
if s[1] and now < tonumber(s[2]) then spent = tonumber(s[1]) end
if spent >= amount then return 0 end
redis.call('HSET', KEYS[1], 'a', ARGV[2], 'u', ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(periodEnd - now))
return 1
`;

interface ScriptCommands {
  limitFloor(key: string, ...args: string[]): Promise<number>;
  limitAcquire(numberOfKeys: number, ...keysThenArgs: string[]): Promise<string[]>;
  limitRelease(numberOfKeys: number, ...keysThenArgs: string[]): Promise<number>;
}

export interface RedisLimitStoreOptions extends LimitStoreOptions {
  connection: RedisConnection;
  /** The feature's key prefix (`stateKeyPrefix('limits')`); replicas that share limits share it. */
  keyPrefix: string;
}

export class RedisLimitStore implements LimitStore {
  readonly description: string;
  private readonly client: Redis & ScriptCommands;
  private readonly leaseTtlMs: number;

  constructor(private readonly options: RedisLimitStoreOptions) {
    this.description = options.connection.description;
    // The number of keys depends on the checks: given with each call.
    options.connection.defineScript('limitAcquire', null, ACQUIRE_SCRIPT);
    options.connection.defineScript('limitRelease', null, RELEASE_SCRIPT);
    options.connection.defineScript('limitFloor', 1, FLOOR_SCRIPT);
    this.client = options.connection.client as Redis & ScriptCommands;
    this.leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  }

  ping(): Promise<void> {
    return this.options.connection.ping();
  }

  /** Fails at once while there is no connection: nothing is sent then. */
  connected(): Promise<void> {
    return this.options.connection.connected();
  }

  /** A lease of this store for `checks`, its id chosen before any call that may take it. */
  leaseFor(checks: readonly LimitCheck[]): Lease {
    return { id: randomBytes(9).toString('base64url'), checks: [...checks], released: false, shared: true };
  }

  async acquire(checks: readonly LimitCheck[], nowMs: number): Promise<AcquireResult> {
    await this.options.connection.connected();
    return this.acquireAs(this.leaseFor(checks), nowMs);
  }

  /** `acquire`, under a lease made by `leaseFor`: an unanswered call can still be released by its id. */
  async acquireAs(lease: Lease, nowMs: number): Promise<AcquireResult> {
    const checks = lease.checks;
    const args = checks.flatMap((check) => [
      check.kind,
      String(check.limit),
      String(costOf(check)),
      String(horizonMs(check, this.leaseTtlMs)),
      String(check.kind === 'budget' ? check.periodEndMs : 0),
    ]);
    const reply = await this.call('limitAcquire', checks, [
      String(nowMs),
      lease.id,
      String(checks.length),
      ...args,
    ]);
    const [state, ...rest] = reply as string[];
    if (state === 'granted') return { granted: true, lease, remaining: rest.map(Number) };
    const index = Number(rest[0]);
    return {
      granted: false,
      check: index,
      limit: (checks[index] as LimitCheck).limit,
      remaining: Number(rest[1]),
      retryAfterSeconds: Math.max(1, Math.ceil(Number(rest[2]) / 1000)),
    };
  }

  async release(lease: Lease, nowMs: number, actual: Settlement = {}): Promise<void> {
    if (lease.released) return;
    await this.settle(lease, nowMs, actual, false);
    lease.released = true;
  }

  /**
   * Ends `lease` in Redis whether or not it was released before. With `ifHeld`, only what it still holds
   * there is settled (a budget's spend among it): idempotent, for a release that may have run already or an
   * acquire that may never have.
   */
  async settle(lease: Lease, nowMs: number, actual: Settlement, ifHeld: boolean): Promise<void> {
    await this.options.connection.connected();
    const args = lease.checks.flatMap((check, index) => [
      check.kind,
      String(costOf(check)),
      actual[index] === undefined ? '' : String(actual[index]),
      String(check.kind === 'budget' ? check.periodEndMs : 0),
    ]);
    await this.call('limitRelease', lease.checks, [
      String(nowMs),
      lease.id,
      String(lease.checks.length),
      ...args,
      ifHeld ? '1' : '0',
    ]);
  }

  async floorSpent(key: string, amount: number, periodEndMs: number, nowMs: number): Promise<void> {
    await this.options.connection.connected();
    await this.client.limitFloor(
      `${this.options.keyPrefix}s:${key}`,
      String(nowMs),
      String(amount),
      String(periodEndMs),
    );
  }

  private call(
    command: 'limitAcquire' | 'limitRelease',
    checks: readonly LimitCheck[],
    args: string[],
  ): Promise<unknown> {
    const prefix = this.options.keyPrefix;
    const keys = checks.flatMap((check) => [
      `${prefix}l:${check.key}`,
      `${prefix}t:${check.key}`,
      `${prefix}s:${check.key}`,
    ]);
    return this.client[command](keys.length, ...keys, ...args);
  }
}

/** The limits feature's name in key prefixes, health and the degraded gauge. */
export const LIMITS_FEATURE = 'limits';

/** At most this many leases wait to be ended in Redis; past it the oldest is left to its lease TTL. */
const MAX_UNSETTLED = 10_000;

/**
 * Leases that Redis may still hold though this replica has ended them: one whose release Redis did not answer
 * (down, or slower than the command timeout), and one taken by an acquire it did not answer — a timeout is not
 * a refusal: a paused Redis runs the script when it wakes, and nothing would give that slot or reservation back
 * for the lease TTL, on every replica. Each is settled there, only what it still holds, once Redis answers.
 * Bounded in memory.
 */
class UnsettledLeases {
  private readonly waiting = new Map<string, { lease: Lease; nowMs: number; actual: Settlement }>();
  private flushing: Promise<void> | null = null;

  constructor(private readonly primary: RedisLimitStore) {}

  keep(lease: Lease, nowMs: number, actual: Settlement): void {
    if (!this.waiting.has(lease.id) && this.waiting.size >= MAX_UNSETTLED) {
      const oldest = this.waiting.keys().next().value as string;
      this.waiting.delete(oldest);
    }
    this.waiting.set(lease.id, { lease, nowMs, actual });
  }

  /** Settles every waiting lease in Redis; when Redis fails again, the rest wait for its next return. */
  flush(): Promise<void> {
    if (this.flushing === null) {
      const run = this.settleAll();
      this.flushing = run;
      void run.finally(() => {
        if (this.flushing === run) this.flushing = null;
      });
    }
    return this.flushing;
  }

  private async settleAll(): Promise<void> {
    for (const [id, entry] of [...this.waiting]) {
      try {
        await this.primary.settle(entry.lease, entry.nowMs, entry.actual, true);
      } catch {
        return;
      }
      if (this.waiting.get(id) === entry) this.waiting.delete(id);
    }
  }
}

/** At most this many budgets' spend is remembered for the memory fallback; past it the oldest is forgotten. */
const MAX_KNOWN_BUDGETS = 10_000;

/**
 * What Redis last said each budget had used (spend and reservations, this request's included), so that the
 * memory fallback counts a budget from there rather than from 0 while Redis is down (README, Shared state): a
 * budget this replica saw spent stays spent. Read from the acquire's answer, at no extra cost; bounded.
 */
class KnownBudgets {
  private readonly used = new Map<string, { amount: number; periodEndMs: number; readAtMs: number }>();

  /** Notes the budgets of `checks` that Redis answered `result` for at `nowMs`. */
  read(checks: readonly LimitCheck[], result: AcquireResult, nowMs: number): void {
    if (!result.granted) {
      const check = checks[result.check] as LimitCheck;
      if (check.kind === 'budget') this.note(check, check.limit - result.remaining, nowMs);
      return;
    }
    for (let index = 0; index < checks.length; index++) {
      const check = checks[index] as LimitCheck;
      if (check.kind === 'budget') this.note(check, check.limit - (result.remaining[index] as number), nowMs);
    }
  }

  /**
   * Gives a memory store that takes over from Redis every budget's last known use as its spend so far (until
   * the period's end): what this replica spends meanwhile adds to it.
   */
  seed(memory: LimitStore): void {
    for (const [key, known] of this.used)
      void memory.floorSpent(key, known.amount, known.periodEndMs, known.readAtMs);
  }

  private note(check: Extract<LimitCheck, { kind: 'budget' }>, amount: number, nowMs: number): void {
    // Re-inserted last: the oldest is the one forgotten.
    this.used.delete(check.key);
    if (this.used.size >= MAX_KNOWN_BUDGETS) this.used.delete(this.used.keys().next().value as string);
    this.used.set(check.key, { amount, periodEndMs: check.periodEndMs, readAtMs: nowMs });
  }
}

/** A limit store on Redis behind its memory fallback (`createLimitStore`). */
export interface SharedLimitStore extends LimitStore {
  /**
   * Checks Redis now, as the fallback's probe timer does, and once it answers settles there the leases that
   * waited for it. For tests: they need not wait for the timer.
   */
  probe(): Promise<void>;
}

/** A settlement of nothing: a request refused took nothing, whatever Redis may have granted it. */
function nothingTaken(checks: readonly LimitCheck[]): Settlement {
  const actual: Record<number, number> = {};
  for (let index = 0; index < checks.length; index++) actual[index] = 0;
  return actual;
}

/**
 * The limit store for this proxy: one instance's memory store with the memory state store; with Redis, the
 * shared store, falling back to memory while Redis is down (limits then hold per replica; logged, and the
 * state store's degraded gauge set for `limits`). A lease Redis may hold and did not hear the end of (its
 * acquire or its release unanswered) is ended there once Redis answers again (`UnsettledLeases`). Closed with
 * the state store.
 */
export function createLimitStore(options: { store: StateStore } & LimitStoreOptions): LimitStore {
  const { store } = options;
  const leaseTtl = options.leaseTtlMs === undefined ? {} : { leaseTtlMs: options.leaseTtlMs };
  const target = store.redisTarget(LIMITS_FEATURE);
  if (target === null) return new MemoryLimitStore(leaseTtl);
  const primary = new RedisLimitStore({ ...target, ...leaseTtl });
  const unsettled = new UnsettledLeases(primary);
  const knownBudgets = new KnownBudgets();
  const fallback = new Fallback<LimitStore>({
    primary,
    ping: () => primary.ping(),
    createMemory: () => new MemoryLimitStore(leaseTtl),
    description: primary.description,
    name: 'Limits store',
    degradedNote: 'limits hold per replica meanwhile',
    recoveredNote: 'limits are shared across replicas again',
    log: store.log,
    onDegradedChange: (degraded) => {
      store.reportDegraded(LIMITS_FEATURE, degraded);
      // Called before the memory store decides anything: it starts from the budgets' spend last read.
      if (degraded) knownBudgets.seed(fallback.memory);
      else void unsettled.flush();
    },
  });
  store.onClose(() => fallback.close());
  /** Memory leases granted when Redis did not answer the acquire, and the Redis lease that acquire may hold. */
  const unanswered = new WeakMap<Lease, Lease>();
  /** Ends `lease` in Redis, only what it still holds there; waits for Redis while it is down. */
  const settleInRedis = (lease: Lease, nowMs: number, actual: Settlement): Promise<void> =>
    fallback.run(async (limits) => {
      if (limits === primary) return primary.settle(lease, nowMs, actual, true);
      unsettled.keep(lease, nowMs, actual);
    });
  const sharedLimits: SharedLimitStore = {
    acquire: async (checks, nowMs) => {
      // The Redis lease whose acquire was sent and not answered, if any: set before the call, cleared after.
      const call: { unanswered: Lease | null } = { unanswered: null };
      const result = await fallback.run(async (limits) => {
        if (limits !== primary) return limits.acquire(checks, nowMs);
        await primary.connected();
        // Its id chosen before the call: if Redis does not answer, the lease is still released by it.
        const lease = primary.leaseFor(checks);
        call.unanswered = lease;
        const answer = await primary.acquireAs(lease, nowMs);
        call.unanswered = null;
        knownBudgets.read(checks, answer, nowMs);
        return answer;
      });
      const shared = call.unanswered;
      if (shared === null) return result;
      if (result.granted) unanswered.set(result.lease, shared);
      else void settleInRedis(shared, nowMs, nothingTaken(checks));
      return result;
    },
    release: async (lease, nowMs, actual = {}) => {
      const shared = unanswered.get(lease);
      if (shared !== undefined) {
        // Granted by this replica's memory: ended there, and in Redis what the unanswered acquire took.
        await fallback.memory.release(lease, nowMs, actual);
        return settleInRedis(shared, nowMs, actual);
      }
      return fallback.run(async (limits) => {
        if (limits === primary || lease.shared !== true) return limits.release(lease, nowMs, actual);
        // A Redis lease ended while Redis does not answer: counted here meanwhile, ended there once it does.
        unsettled.keep(lease, nowMs, actual);
        return limits.release(lease, nowMs, actual);
      });
    },
    floorSpent: (key, amount, periodEndMs, nowMs) =>
      fallback.run((limits) => limits.floorSpent(key, amount, periodEndMs, nowMs)),
    probe: async () => {
      await fallback.probe();
      await unsettled.flush();
    },
  };
  return sharedLimits;
}
