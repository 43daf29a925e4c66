import { ProxyError } from '../proxy-error.js';
import type { AcquireResult, Lease, LimitCheck, LimitStore } from '../state/limits.js';
import type { LimitScope, PolicyTable } from '../teams/policies.js';
import type { ChatExchange } from './exchange.js';

/**
 * The request-limits step (README, "Teams": rate and concurrency limits): a key's `rpm` and `max_concurrent`,
 * its own and each of its labels' (which the label's keys share), checked and taken before the backend call
 * in one atomic step of the limit store (`acquire`: one Lua script on Redis, no await between check and
 * record in memory). A request refused is 429 with `Retry-After` and the `x-ratelimit-*-requests` headers,
 * in the client's protocol; a request let in carries the same headers for its rpm. A request tried by
 * failover is one request here, however many attempts it makes.
 *
 * Concurrency slots are given back when the response closes — it ended, or the client went away (a stream
 * aborted too) — exactly once. That `close` is also where "settle after the answer" goes (token windows and
 * budgets, whose real cost is known only then): pass the actual costs to `release` as its `Settlement`.
 *
 * The plans (which checks each key takes) are built once per policy table, on the key's first request after
 * a start or a reload; a proxy where no key has a counter never gets here (`PolicyTable.hasCounters`).
 */

/** The name of a request limit in answers and in `llm_proxy_limit_rejections_total{limit}`. */
export type RequestLimitName = 'rpm' | 'max_concurrent';
/** Every `limit` of `llm_proxy_limit_rejections_total`: the request limits and the spend step's (spend.ts). */
export type LimitName = RequestLimitName | 'tpm' | 'budget';

/** One check of a key's plan, with what it is for answers. */
interface PlannedCheck {
  readonly name: RequestLimitName;
  readonly scope: LimitScope;
}

/** What a key's request takes: built once per key and policy table. */
export interface KeyPlan {
  readonly checks: readonly LimitCheck[];
  readonly planned: readonly PlannedCheck[];
  /** Indexes of its rpm checks, for the headers of a request let in. */
  readonly rpm: readonly number[];
  /** Whether a lease holds something to give back (a concurrency slot). */
  readonly holdsSlots: boolean;
}

export interface RequestLimitsOptions {
  store: LimitStore;
  /** Epoch milliseconds; tests move it. */
  now?: () => number;
  /** Told of every refusal: the metric. */
  onRejected?: (keyName: string, limit: RequestLimitName) => void;
  /** Where a failed release is logged (the store falls back to memory on its own; this is for the rest). */
  log?: { warn(obj: object, msg: string): void };
}

const WINDOW_SECONDS = 60;
/** The reset header of a request let in: back to the full limit once it leaves the window. */
const RESET_WINDOW = resetDuration(WINDOW_SECONDS);

/** Counter keys in the state store: the scope's id and the limit (`key:alice:rpm`, `label:team-a:concurrent`). */
export const counterKey = (scope: LimitScope, limit: 'rpm' | 'concurrent'): string => `${scope.id}:${limit}`;

function planOf(scopes: readonly LimitScope[]): KeyPlan | null {
  const checks: LimitCheck[] = [];
  const planned: PlannedCheck[] = [];
  const rpm: number[] = [];
  for (const scope of scopes) {
    if (scope.rpm !== null) {
      rpm.push(checks.length);
      checks.push({
        kind: 'window',
        key: counterKey(scope, 'rpm'),
        limit: scope.rpm,
        windowSeconds: WINDOW_SECONDS,
        cost: 1,
      });
      planned.push({ name: 'rpm', scope });
    }
    if (scope.maxConcurrent !== null) {
      checks.push({ kind: 'concurrency', key: counterKey(scope, 'concurrent'), limit: scope.maxConcurrent });
      planned.push({ name: 'max_concurrent', scope });
    }
  }
  if (checks.length === 0) return null;
  return { checks, planned, rpm, holdsSlots: planned.some((check) => check.name === 'max_concurrent') };
}

/** A duration as OpenAI writes its reset headers: `1s`, `59s`, `1m0s`, `1h0m0s`. */
export function resetDuration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s}s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes}m${s % 60}s`;
  return `${Math.floor(minutes / 60)}h${minutes % 60}m${s % 60}s`;
}

/** The `x-ratelimit-*-requests` headers. */
function rateLimitHeaders(limit: number, remaining: number, resetSeconds: number): Record<string, string> {
  return {
    'x-ratelimit-limit-requests': String(limit),
    'x-ratelimit-remaining-requests': String(Math.max(0, Math.floor(remaining))),
    'x-ratelimit-reset-requests': resetDuration(resetSeconds),
  };
}

function whose(scope: LimitScope): string {
  return scope.scope === 'key' ? `key '${scope.name}'` : `label '${scope.name}' (shared by its keys)`;
}

/** The 429 for a refused check: the words of the provider's own rate-limit errors, never 403. */
export function limitRefusal(
  check: PlannedCheck,
  limit: number,
  remaining: number,
  retryAfterSeconds: number,
): ProxyError {
  const message =
    check.name === 'rpm'
      ? `Rate limit reached for requests: ${limit} per minute for ${whose(check.scope)}. ` +
        `Try again in ${retryAfterSeconds}s.`
      : `Too many requests in flight: at most ${limit} at once for ${whose(check.scope)}. ` +
        `Try again when one ends.`;
  return new ProxyError(429, message, {
    code: 'rate_limit_exceeded',
    retryAfter: retryAfterSeconds,
    headers: rateLimitHeaders(limit, remaining, retryAfterSeconds),
  });
}

export class RequestLimits {
  private readonly store: LimitStore;
  private readonly now: () => number;
  private table: PolicyTable | null = null;
  /** Per key name, its plan under `table` (null: no request limits). */
  private plans = new Map<string, KeyPlan | null>();

  constructor(private readonly options: RequestLimitsOptions) {
    this.store = options.store;
    this.now = options.now ?? Date.now;
  }

  /** The plan of `keyName` under `table`, built on first use after a start or reload. */
  planFor(table: PolicyTable, keyName: string): KeyPlan | null {
    if (table !== this.table) {
      this.table = table;
      this.plans = new Map();
    }
    let plan = this.plans.get(keyName);
    if (plan === undefined) {
      plan = planOf(table.policyFor(keyName)?.scopes ?? []);
      this.plans.set(keyName, plan);
    }
    return plan;
  }

  /**
   * Takes the request's limits, or throws the 429. Call only when `table.hasCounters`. The slots taken are
   * given back when the response closes; a client already gone gives them back at once.
   */
  async admit(ex: ChatExchange, table: PolicyTable): Promise<void> {
    const keyName = ex.authKeyName;
    if (keyName === null) return;
    const plan = this.planFor(table, keyName);
    if (plan === null) return;
    const result = await this.store.acquire(plan.checks, this.now());
    if (!result.granted) throw this.refused(keyName, plan, result);
    this.admitted(ex, plan, result.remaining);
    if (plan.holdsSlots) this.releaseOnClose(ex, result.lease);
  }

  /**
   * The 429 for check `result.check` of `plan`, counted in the metric. (The spend step takes a plan's checks
   * in the same acquire as its own: src/pipeline/spend.ts.)
   */
  refused(keyName: string, plan: KeyPlan, result: Extract<AcquireResult, { granted: false }>): ProxyError {
    const check = plan.planned[result.check] as PlannedCheck;
    this.options.onRejected?.(keyName, check.name);
    return limitRefusal(check, result.limit, result.remaining, result.retryAfterSeconds);
  }

  /** A request let in: its rpm headers, from what is left of each check of `plan` (the first of `remaining`). */
  admitted(ex: ChatExchange, plan: KeyPlan, remaining: readonly number[]): void {
    if (plan.rpm.length === 0) return;
    // The tightest rpm (the key's own or a label's) is the one the client should pace itself by.
    let tightest = plan.rpm[0] as number;
    for (const index of plan.rpm)
      if ((remaining[index] as number) < (remaining[tightest] as number)) tightest = index;
    const { limit } = plan.checks[tightest] as LimitCheck;
    // Back to the full limit once this request leaves the sliding window. Kept on the request's state: the
    // answer's head carries them (respond.ts), whichever answer it gets.
    ex.state.limitHeaders = {
      'x-ratelimit-limit-requests': String(limit),
      'x-ratelimit-remaining-requests': String(Math.max(0, Math.floor(remaining[tightest] as number))),
      'x-ratelimit-reset-requests': RESET_WINDOW,
    };
  }

  /** Gives the lease back once, when the response closes (ended, or the client gone). */
  private releaseOnClose(ex: ChatExchange, lease: Lease): void {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      // Settle-after-the-answer hook: a token window or budget passes its actual costs here.
      this.store.release(lease, this.now()).catch((err: unknown) => {
        this.options.log?.warn(
          { request_id: ex.id, key: ex.authKeyName, err: err instanceof Error ? err.message : String(err) },
          'A concurrency slot could not be given back: it frees itself after the lease time',
        );
      });
    };
    // A response destroyed before now emits no more 'close' (the client left while the limits were taken).
    if (ex.res.destroyed) release();
    else ex.res.once('close', release);
  }
}
