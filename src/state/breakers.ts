import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Fallback } from './fallback.js';
import type { RedisConnection } from './redis-connection.js';
import type { StateStore } from './store.js';

/**
 * The circuit breaker per (backend, model) (README, Routes and failover): after `failures` retryable
 * failures in a row the element is skipped at once; after `cooldown` one probe is let through, and a
 * success closes it again. The state lives behind `BreakerStore`, whose methods may answer a promise, so a
 * shared store (Redis) can stand in for the memory one without changing the callers.
 */
export type BreakerPhase = 'closed' | 'open' | 'half_open';

export interface BreakerLimits {
  readonly failures: number;
  readonly cooldownMs: number;
}

export interface BreakerView {
  readonly element: string;
  readonly phase: BreakerPhase;
  readonly failures: number;
}

export interface BreakerStore {
  /** May the element be tried now? An open breaker past its cooldown admits one probe (half-open). */
  admit(element: string, limits: BreakerLimits, now: number): boolean | Promise<boolean>;
  /** The element answered: closed again, its count cleared. */
  succeeded(element: string): void | Promise<void>;
  /**
   * A retryable failure: counted; the breaker opens at the limit, and a failed probe opens it again. True
   * when the breaker is open after it (no retry of the element is worth waiting for).
   */
  failed(element: string, limits: BreakerLimits, now: number): boolean | Promise<boolean>;
  /** Every element with a count or not closed, for /internal/health and /metrics. */
  snapshot(): BreakerView[] | Promise<BreakerView[]>;
}

interface Entry {
  phase: BreakerPhase;
  failures: number;
  /** When it opened, or when its probe was let through. */
  since: number;
}

/** Most elements remembered: a bound on memory when clients name arbitrary models in chains. */
const MAX_ELEMENTS = 10_000;

/** Longer elements are kept by their start and a digest (a model's name is a few dozen characters). */
const MAX_ELEMENT_LENGTH = 256;

/**
 * The name an element's breaker is kept under: itself, or for an over-long one (a model name a client made
 * up, megabytes long) its first characters and a digest of the whole — each entry bounded, as their count is.
 */
export function breakerKey(element: string): string {
  if (element.length <= MAX_ELEMENT_LENGTH) return element;
  const digest = createHash('sha256').update(element).digest('hex').slice(0, 32);
  return `${element.slice(0, 64)}…#${digest}`;
}

/** The breakers of one proxy, in memory. */
export class MemoryBreakerStore implements BreakerStore {
  private readonly entries = new Map<string, Entry>();

  admit(element: string, limits: BreakerLimits, now: number): boolean {
    const entry = this.entries.get(breakerKey(element));
    if (entry === undefined || entry.phase === 'closed') return true;
    // Open, or half-open with a probe out: a probe that never reported is replaced after a cooldown.
    if (now - entry.since < limits.cooldownMs) return false;
    entry.phase = 'half_open';
    entry.since = now;
    return true;
  }

  succeeded(element: string): void {
    this.entries.delete(breakerKey(element));
  }

  failed(element: string, limits: BreakerLimits, now: number): boolean {
    const key = breakerKey(element);
    let entry = this.entries.get(key);
    if (entry === undefined) {
      if (this.entries.size >= MAX_ELEMENTS) this.entries.clear();
      entry = { phase: 'closed', failures: 0, since: now };
      this.entries.set(key, entry);
    }
    entry.failures += 1;
    if (entry.phase === 'half_open' || entry.failures >= limits.failures) {
      entry.phase = 'open';
      entry.since = now;
    }
    return entry.phase === 'open';
  }

  snapshot(): BreakerView[] {
    return [...this.entries].map(([element, e]) => ({ element, phase: e.phase, failures: e.failures }));
  }
}

/**
 * The circuit breakers in Redis (README, Routes and failover; "Shared state"), so that every replica on the
 * state store skips an element one replica's failures opened, and only one replica sends the probe after the
 * cooldown. One hash under the feature's prefix, a field per element (`backend:model`) holding
 * `phase|failures|since`; each decision is one Lua script, timed by the Redis server's own clock (`TIME`), so
 * replicas' clocks need not agree. The hash expires a day after its last write, and is emptied when it holds
 * as many elements as the memory store keeps.
 */

const EXPIRY_MS = 24 * 3600 * 1000;

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** KEYS: hash. ARGV: element, cooldown ms. Returns 0 (skip), 1 (admitted; the element has an entry), 2 (no entry). */
const ADMIT_SCRIPT = `${NOW}
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 2 end
local phase, failures, since = string.match(v, '^([%a_]+)|(%d+)|(%d+)$')
if phase == 'closed' then return 1 end
if now - tonumber(since) < tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'half_open|' .. failures .. '|' .. now)
return 1
`;

/** KEYS: hash. ARGV: element, failures limit, most elements, expiry ms. Returns 1 when open after it, else 0. */
const FAILED_SCRIPT = `${NOW}
local v = redis.call('HGET', KEYS[1], ARGV[1])
local phase, failures, since = 'closed', 0, now
if v then
  local p, f, s = string.match(v, '^([%a_]+)|(%d+)|(%d+)$')
  phase, failures, since = p, tonumber(f), tonumber(s)
elseif redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
end
failures = failures + 1
if phase == 'half_open' or failures >= tonumber(ARGV[2]) then
  phase = 'open'
  since = now
end
redis.call('HSET', KEYS[1], ARGV[1], phase .. '|' .. failures .. '|' .. string.format('%d', since))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if phase == 'open' then return 1 end
return 0
`;

interface ScriptCommands {
  breakerAdmit(key: string, element: string, cooldownMs: string): Promise<number>;
  breakerFailed(key: string, element: string, limit: string, max: string, expiry: string): Promise<number>;
}

const PHASES: ReadonlySet<string> = new Set<BreakerPhase>(['closed', 'open', 'half_open']);

export class RedisBreakerStore implements BreakerStore {
  readonly description: string;
  private readonly client: Redis & ScriptCommands;
  private readonly key: string;
  /**
   * Elements this replica saw with an entry when it admitted them: only their successes need a write (a
   * success on an element without an entry changes nothing), which spares a round trip per request.
   */
  private readonly seen = new Set<string>();

  constructor(private readonly target: { connection: RedisConnection; keyPrefix: string }) {
    this.description = target.connection.description;
    target.connection.defineScript('breakerAdmit', 1, ADMIT_SCRIPT);
    target.connection.defineScript('breakerFailed', 1, FAILED_SCRIPT);
    this.client = target.connection.client as Redis & ScriptCommands;
    this.key = `${target.keyPrefix}breakers`;
  }

  ping(): Promise<void> {
    return this.target.connection.ping();
  }

  async admit(element: string, limits: BreakerLimits): Promise<boolean> {
    const key = breakerKey(element);
    await this.target.connection.connected();
    const verdict = await this.client.breakerAdmit(this.key, key, String(Math.ceil(limits.cooldownMs)));
    if (verdict === 1) {
      if (this.seen.size >= MAX_ELEMENTS) this.seen.clear();
      this.seen.add(key);
    }
    return verdict !== 0;
  }

  async succeeded(element: string): Promise<void> {
    const key = breakerKey(element);
    if (!this.seen.delete(key)) return;
    await this.target.connection.connected();
    await this.client.hdel(this.key, key);
  }

  async failed(element: string, limits: BreakerLimits): Promise<boolean> {
    await this.target.connection.connected();
    const open = await this.client.breakerFailed(
      this.key,
      breakerKey(element),
      String(limits.failures),
      String(MAX_ELEMENTS),
      String(EXPIRY_MS),
    );
    return open === 1;
  }

  async snapshot(): Promise<BreakerView[]> {
    await this.target.connection.connected();
    const all = await this.client.hgetall(this.key);
    const views: BreakerView[] = [];
    for (const [element, value] of Object.entries(all)) {
      const [phase, failures] = value.split('|');
      if (phase !== undefined && PHASES.has(phase))
        views.push({ element, phase: phase as BreakerPhase, failures: Number(failures) });
    }
    return views;
  }
}

/** The breakers feature's name in key prefixes, health and the degraded gauge. */
export const BREAKERS_FEATURE = 'breakers';

/**
 * The breakers for this proxy: memory with the memory state store; with Redis, shared, falling back to this
 * replica's memory while Redis is down (breakers then count per replica; logged, and the state store's
 * degraded gauge set for `breakers`). Closed with the state store.
 */
export function createBreakerStore(store: StateStore): BreakerStore {
  const target = store.redisTarget(BREAKERS_FEATURE);
  if (target === null) return new MemoryBreakerStore();
  const primary = new RedisBreakerStore(target);
  const fallback = new Fallback<BreakerStore>({
    primary,
    ping: () => primary.ping(),
    createMemory: () => new MemoryBreakerStore(),
    description: primary.description,
    name: 'Circuit breaker store',
    degradedNote: 'circuit breakers count per replica meanwhile',
    recoveredNote: 'circuit breakers are shared across replicas again',
    log: store.log,
    onDegradedChange: (degraded) => store.reportDegraded(BREAKERS_FEATURE, degraded),
  });
  store.onClose(() => fallback.close());
  return {
    admit: (element, limits, now) => fallback.run(async (s) => s.admit(element, limits, now)),
    succeeded: (element) => fallback.run(async (s) => s.succeeded(element)),
    failed: (element, limits, now) => fallback.run(async (s) => s.failed(element, limits, now)),
    snapshot: () => fallback.run(async (s) => s.snapshot()),
  };
}
