import type { BackendRegistry } from '../backends/registry.js';
import { ProxyError } from '../proxy-error.js';
import type { Protocol } from '../protocols/types.js';
import type { TokenUsage } from '../protocols/usage.js';
import type { UsageStats } from '../observability/usage-stats.js';
import type { LimitCheck, LimitStore, Lease } from '../state/limits.js';
import { dayOf, type UsageLedger, type UsageRow } from '../state/usage-ledger.js';
import type { KeyPolicy, LimitScope, PolicyTable } from '../teams/policies.js';
import { costOf, type PriceTable } from '../teams/prices.js';
import { estimateInputTokens } from '../tokens/estimate.js';
import type { ChatExchange } from './exchange.js';

/**
 * The spend step (README, Teams: usage, budgets): every answered request's tokens are read (the relay's
 * usage tap) and settled — the Prometheus counters, the usage ledger — and, for a key whose policy (or
 * whose labels') has `tpm` or a `budget`, the largest the request can take is reserved before the backend
 * is called, through the limits primitive (src/state/limits.ts: atomic, shared through Redis), and settled
 * to what it really took once the answer ends. A budget is thus never exceeded by more than the
 * reservations in flight. Without such a policy a request costs one Map lookup here and the settling work
 * after its answer.
 */

/** Output tokens assumed for a request that names no limit of its own (README, Teams: budgets). */
export const DEFAULT_MAX_OUTPUT_TOKENS = 8192;

/** How each protocol names the answer's token limit. */
const MAX_OUTPUT: Record<Protocol, (body: Record<string, unknown>) => unknown> = {
  openai: (b) => b.max_completion_tokens ?? b.max_tokens,
  anthropic: (b) => b.max_tokens,
  responses: (b) => b.max_output_tokens,
  gemini: (b) => (b.generationConfig as { maxOutputTokens?: unknown } | undefined)?.maxOutputTokens,
};

export function maxOutputTokens(protocol: Protocol, body: Record<string, unknown>): number {
  const value = MAX_OUTPUT[protocol](body);
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : DEFAULT_MAX_OUTPUT_TOKENS;
}

const DAY_MS = 86_400_000;
/** A `total` budget's period never ends (the latest date a Date holds). */
const NEVER_MS = 8.64e15;

/** The UTC period of a budget that holds `nowMs`: its start and end (epoch ms). */
export function periodOf(
  per: 'day' | 'week' | 'month' | 'total',
  nowMs: number,
): { start: number; end: number } {
  const d = new Date(nowMs);
  const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  switch (per) {
    case 'day':
      return { start: day, end: day + DAY_MS };
    case 'week': {
      // ISO weeks: Monday to Sunday.
      const start = day - ((d.getUTCDay() + 6) % 7) * DAY_MS;
      return { start, end: start + 7 * DAY_MS };
    }
    case 'month':
      return {
        start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1),
        end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1),
      };
    default:
      return { start: 0, end: NEVER_MS };
  }
}

/** The name of a budget's counter in the limit store: its scope, its period and the period's first day. */
export function budgetKey(scope: LimitScope, per: string, startMs: number): string {
  return `budget:${scope.id}:${per}:${dayOf(startMs)}`;
}

/** Whether a ledger row counts against `scope`: the key's own rows, or those of any key with the label. */
export function rowInScope(
  row: Pick<UsageRow, 'key' | 'labels'>,
  scope: Pick<LimitScope, 'scope' | 'name'>,
): boolean {
  return scope.scope === 'key' ? row.key === scope.name : row.labels.includes(scope.name);
}

export interface SpendDeps {
  policies: () => PolicyTable;
  prices: PriceTable;
  ledger: UsageLedger;
  stats: UsageStats;
  /** The limits primitive; shared through Redis when the state store is. */
  limits: LimitStore;
  /**
   * Whether a budget's spend before this process counted (the ledger's, replayed from `--usage-file`) is
   * added to its counter the first time the budget is used: with a memory limit store. A Redis one keeps
   * the spend itself.
   */
  seedBudgets: boolean;
  registry: BackendRegistry;
  log: { warn(obj: object, msg: string): void };
  now?: () => number;
}

/** What a request holds between its reservation and its answer's end. */
interface Reservation {
  readonly lease: Lease;
  /** Index of each check in the lease: tpm windows and budgets, with what they reserved. */
  readonly tpm: number[];
  readonly budgets: number[];
  readonly reservedTokens: number;
  readonly reservedUsd: number;
  readonly inputEstimate: number;
}

/** How an answer ended, for what is charged. */
export type AnswerOutcome =
  /** The answer reached its end: its usage block says what it took (null: it gave none). */
  | 'answered'
  /** The backend refused or failed before answering: nothing is charged. */
  | 'failed'
  /** The answer began and was cut (the client left, the backend failed mid-way): usage may be missing. */
  | 'cut';

/** Where the answer came from, for the price and the labels. */
export interface Answerer {
  readonly backend: { readonly name: string };
  readonly model: string;
}

/**
 * One request's usage, settled once when its answer ends (`done`); a second call does nothing. An answer
 * without a usage block is charged its reservation (the budget's bound), and recorded with its input
 * estimate.
 */
export class UsageMeter {
  private settled = false;
  /** Set when the answer begins (`answering`): who answers. */
  private answerer: Answerer | null = null;

  constructor(
    private readonly spend: Spend,
    private readonly ex: ChatExchange,
    private readonly policy: KeyPolicy | null,
    private readonly reservation: Reservation | null,
  ) {}

  /** The answer begins to reach the client (relay.ts): from now on a lost usage block is charged. */
  answering(answerer: Answerer): void {
    this.answerer = answerer;
  }

  done(answerer: Answerer | null, usage: TokenUsage | null, outcome: AnswerOutcome): void {
    if (this.settled) return;
    this.settled = true;
    this.spend.settle(this.ex, this.policy, this.reservation, answerer, usage, outcome);
  }

  /**
   * The client's connection closed: an answer that began and was not settled was cut (charged its
   * reservation); one that never began cost nothing.
   */
  closed(): void {
    if (this.answerer !== null) this.done(this.answerer, null, 'cut');
    else this.done(null, null, 'failed');
  }
}

export class Spend {
  private readonly now: () => number;
  private readonly warnedUnpriced = new Set<string>();
  /** Budget counters already given their earlier spend (`seedBudgets`), or being given it. */
  private readonly seeded = new Map<string, Promise<void>>();

  constructor(private readonly deps: SpendDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * Before the backend call: reserves what the request may take against the key's `tpm` and budgets (its
   * own and its labels'), or refuses it with a 429. `priced` names where it may go (`backend:model`
   * elements, for a request tried by failover; the most expensive is reserved).
   */
  begin(
    ex: ChatExchange,
    from: Protocol,
    body: Record<string, unknown>,
    targets: readonly Answerer[],
  ): UsageMeter | Promise<UsageMeter> {
    const table = this.deps.policies();
    // The key's labels go with its usage, policy or not: one Map lookup.
    const policy = table.policyFor(ex.authKeyName);
    const scopes = table.hasCounters
      ? (policy?.scopes.filter((s) => s.tpm !== null || s.budget !== null) ?? [])
      : [];
    if (scopes.length === 0) return new UsageMeter(this, ex, policy, null);
    return this.reserve(ex, from, body, targets, policy as KeyPolicy, scopes);
  }

  private async reserve(
    ex: ChatExchange,
    from: Protocol,
    body: Record<string, unknown>,
    targets: readonly Answerer[],
    policy: KeyPolicy,
    scopes: readonly LimitScope[],
  ): Promise<UsageMeter> {
    const inputEstimate = await estimateInputTokens(body, from);
    const maxOutput = maxOutputTokens(from, body);
    const reservedTokens = inputEstimate + maxOutput;
    let reservedUsd = 0;
    for (const target of targets) {
      const price = this.deps.prices.priceOf(target.backend.name, target.model);
      const cost = costOf({ input: inputEstimate, output: maxOutput, cacheRead: 0, cacheWrite: 0 }, price);
      reservedUsd = Math.max(reservedUsd, cost);
    }
    const nowMs = this.now();
    const checks: LimitCheck[] = [];
    const checkScopes: LimitScope[] = [];
    const tpm: number[] = [];
    const budgets: number[] = [];
    for (const scope of scopes) {
      if (scope.tpm !== null) {
        tpm.push(checks.length);
        checks.push({
          kind: 'window',
          key: `tpm:${scope.id}`,
          limit: scope.tpm,
          windowSeconds: 60,
          cost: reservedTokens,
        });
        checkScopes.push(scope);
      }
      if (scope.budget !== null) {
        const period = periodOf(scope.budget.per, nowMs);
        const key = budgetKey(scope, scope.budget.per, period.start);
        if (this.deps.seedBudgets) await this.seed(key, scope, period);
        budgets.push(checks.length);
        // A spent budget refuses even a request that would cost nothing (an unpriced model).
        checks.push({
          kind: 'budget',
          key,
          limit: scope.budget.usd,
          cost: Math.max(reservedUsd, 1e-9),
          periodEndMs: period.end,
        });
        checkScopes.push(scope);
      }
    }
    const result = await this.deps.limits.acquire(checks, this.now());
    if (!result.granted) {
      const check = checks[result.check] as LimitCheck;
      const scope = checkScopes[result.check] as LimitScope;
      throw check.kind === 'budget'
        ? budgetSpent(scope, result.retryAfterSeconds)
        : tokensExceeded(scope, result.limit, result.remaining, result.retryAfterSeconds);
    }
    const reservation: Reservation = {
      lease: result.lease,
      tpm,
      budgets,
      reservedTokens,
      reservedUsd,
      inputEstimate,
    };
    const meter = new UsageMeter(this, ex, policy, reservation);
    // A client that goes away before any answer still ends the lease (once: `done` is idempotent).
    ex.res.once('close', () => meter.closed());
    return meter;
  }

  /** Adds a budget's spend so far (the ledger's) to its counter, once per counter in this process. */
  private seed(key: string, scope: LimitScope, period: { start: number; end: number }): Promise<void> {
    let seeding = this.seeded.get(key);
    if (seeding === undefined) {
      seeding = (async () => {
        const rows = await this.deps.ledger.rows(
          dayOf(period.start),
          dayOf(Math.min(period.end, this.now())),
        );
        const spent = rows.filter((row) => rowInScope(row, scope)).reduce((sum, row) => sum + row.costUsd, 0);
        if (spent <= 0) return;
        const check: LimitCheck = {
          kind: 'budget',
          key,
          limit: Number.POSITIVE_INFINITY,
          cost: spent,
          periodEndMs: period.end,
        };
        const granted = await this.deps.limits.acquire([check], this.now());
        if (granted.granted) await this.deps.limits.release(granted.lease, this.now());
      })();
      this.seeded.set(key, seeding);
    }
    return seeding;
  }

  /** Records an ended answer's usage and settles its reservation (see `UsageMeter.done`). */
  settle(
    ex: ChatExchange,
    policy: KeyPolicy | null,
    reservation: Reservation | null,
    answerer: Answerer | null,
    usage: TokenUsage | null,
    outcome: AnswerOutcome,
  ): void {
    const nowMs = this.now();
    let costUsd = 0;
    let tokens = 0;
    if (outcome !== 'failed' && answerer !== null) {
      const backend = answerer.backend.name;
      const model = answerer.model;
      const price = this.deps.prices.priceOf(backend, model);
      if (price === null) this.warnUnpriced(backend, model);
      const counted = usage ?? {
        input: reservation?.inputEstimate ?? 0,
        output: 0,
        cacheRead: 0,
        cacheWrite: 0,
      };
      costUsd = usage === null && reservation !== null ? reservation.reservedUsd : costOf(counted, price);
      tokens =
        usage === null && reservation !== null
          ? reservation.reservedTokens
          : counted.input + counted.output + counted.cacheRead + counted.cacheWrite;
      const key = ex.authKeyName ?? '';
      this.deps.stats.add(key || 'none', backend, model, counted, costUsd);
      this.deps.ledger.record({
        at: nowMs,
        key,
        labels: policy?.labels ?? [],
        backend,
        model,
        input: counted.input,
        output: counted.output,
        cacheRead: counted.cacheRead,
        cacheWrite: counted.cacheWrite,
        costUsd,
        priced: price !== null,
      });
    }
    if (reservation === null) return;
    const actual: Record<number, number> = {};
    for (const index of reservation.tpm) actual[index] = tokens;
    for (const index of reservation.budgets) actual[index] = costUsd;
    this.deps.limits.release(reservation.lease, nowMs, actual).catch((err: unknown) => {
      this.deps.log.warn(
        { request_id: ex.id, error: (err as Error).message },
        'A budget or tpm reservation could not be settled',
      );
    });
  }

  private warnUnpriced(backend: string, model: string): void {
    const id = `${backend}:${model}`;
    if (this.warnedUnpriced.has(id) || this.warnedUnpriced.size >= 1000) return;
    this.warnedUnpriced.add(id);
    this.deps.log.warn(
      { backend, model },
      'No price for this model: its usage is counted at cost 0 (add it under prices: in the YAML)',
    );
  }
}

/** 429 for a spent budget, as each SDK reads it (OpenAI `insufficient_quota`). */
function budgetSpent(scope: LimitScope, retryAfterSeconds: number): ProxyError {
  const budget = scope.budget as NonNullable<LimitScope['budget']>;
  const whose = scope.scope === 'key' ? `key '${scope.name}'` : `label '${scope.name}'`;
  const per = budget.per === 'total' ? 'in total' : `per ${budget.per}`;
  return new ProxyError(429, `The budget of ${budget.usd} USD ${per} of ${whose} is spent.`, {
    code: 'insufficient_quota',
    ...(budget.per === 'total' ? {} : { retryAfter: retryAfterSeconds }),
  });
}

/** 429 for `tpm`, with OpenAI's token rate-limit headers. */
function tokensExceeded(
  scope: LimitScope,
  limit: number,
  remaining: number,
  retryAfterSeconds: number,
): ProxyError {
  const whose = scope.scope === 'key' ? `key '${scope.name}'` : `label '${scope.name}'`;
  return new ProxyError(429, `Rate limit of ${limit} tokens per minute of ${whose} reached.`, {
    code: 'rate_limit_exceeded',
    retryAfter: retryAfterSeconds,
    headers: {
      'x-ratelimit-limit-tokens': String(limit),
      'x-ratelimit-remaining-tokens': String(Math.floor(remaining)),
      'x-ratelimit-reset-tokens': `${retryAfterSeconds}s`,
    },
  });
}

/** The targets of one request resolved through the registry: its route's, or every element of a chain. */
export function targetsOf(registry: BackendRegistry, elements: readonly string[]): Answerer[] {
  const out: Answerer[] = [];
  for (const element of elements) {
    try {
      const resolved = registry.resolve(element);
      out.push({ backend: resolved.backend, model: resolved.model });
    } catch {
      // An element that does not resolve is never answered by: nothing to price.
    }
  }
  return out;
}
