import type { BackendRegistry } from '../backends/registry.js';
import { ProxyError } from '../proxy-error.js';
import type { Protocol } from '../protocols/types.js';
import type { TokenUsage } from '../protocols/usage.js';
import { ModelLabels } from '../observability/model-labels.js';
import { addToSeries, type UsageSeries, type UsageStats } from '../observability/usage-stats.js';
import type { AcquireResult, LimitCheck, LimitStore, Lease } from '../state/limits.js';
import { dayOf, type UsageEntry, type UsageLedger, type UsageRow } from '../state/usage-ledger.js';
import type { KeyPolicy, LimitScope, PolicyTable } from '../teams/policies.js';
import { NO_KEY_METRIC_NAME } from '../config/key-attributes.js';
import type { ModelPrice } from '../config/schema.js';
import { costOf, type PriceTable } from '../teams/prices.js';
import { estimateInputTokens } from '../tokens/estimate.js';
import type { ChatExchange } from './exchange.js';
import type { KeyPlan, LimitName, RequestLimits } from './limits.js';

/**
 * The spend step (README, Teams: usage, budgets): every answered request's tokens are read (the relay's
 * usage tap) and settled — the Prometheus counters, the usage ledger — and, for a key whose policy (or
 * whose labels') has `tpm` or a `budget`, the largest the request can take is reserved before the backend
 * is called, through the limits primitive (src/state/limits.ts: atomic, shared through Redis), and settled
 * to what it really took once the answer ends. A budget is thus never exceeded by more than the
 * reservations in flight. The key's request limits (rpm, max_concurrent: limits.ts) go into the same
 * acquire, and everything comes back in one release when the answer ends or the client goes away: one
 * Redis round trip before the backend call, one after. What a key is charged is worked out once per key
 * and policy table (`KeyCharges`). Without such a policy a request costs one Map lookup here and the
 * settling work after its answer.
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

/** The name of that limit in each protocol (as the client wrote it), for an error that asks to lower it. */
const MAX_OUTPUT_NAME: Record<Protocol, (body: Record<string, unknown>) => string> = {
  openai: (b) =>
    b.max_completion_tokens === undefined && b.max_tokens !== undefined
      ? 'max_tokens'
      : 'max_completion_tokens',
  anthropic: () => 'max_tokens',
  responses: () => 'max_output_tokens',
  gemini: () => 'generationConfig.maxOutputTokens',
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
  /**
   * The name each model is counted under in the metrics and the price warning (clients name models: the
   * series stay bounded); the ledger sums under the same.
   */
  labels?: ModelLabels;
  /** The limits primitive; shared through Redis when the state store is. */
  limits: LimitStore;
  /**
   * The request limits (rpm, max_concurrent): their checks go into the same acquire as `tpm` and budgets, so
   * that a request's check-and-reserve is one step (one Redis round trip), and its release one more.
   */
  requestLimits?: RequestLimits | undefined;
  registry: BackendRegistry;
  log: { warn(obj: object, msg: string): void };
  /** Told of every tpm or budget refusal (the request limits tell theirs themselves): the metric. */
  onRejected?: (keyName: string, limit: Extract<LimitName, 'tpm' | 'budget'>) => void;
  now?: () => number;
}

/** A budget of a key's plan, with its current period's counter (recomputed when the period ends). */
interface BudgetSlot {
  readonly scope: LimitScope;
  readonly budget: NonNullable<LimitScope['budget']>;
  start: number;
  end: number;
  key: string;
  /** The counter was given the ledger's spend of this period (under this policy table), or is being. */
  seeding: Promise<void> | null;
  seeded: boolean;
  /** Told the log once that the ledger could not be read. */
  warned: boolean;
}

/** What a key's request is charged, built once per key and policy table (never per request). */
interface KeyCharges {
  readonly policy: KeyPolicy | null;
  /** rpm and max_concurrent: the first checks of the acquire. */
  readonly request: KeyPlan | null;
  readonly tpm: readonly LimitScope[];
  readonly budgets: readonly BudgetSlot[];
  /** Whether anything is acquired at all. */
  readonly acquires: boolean;
  /** Whether the lease holds something to give back (a slot, a reservation). */
  readonly holds: boolean;
  /**
   * Where this key's last answer was settled: its price and metrics series, kept for the next answer from
   * the same backend and model (a client's usual case) — no lookup, no key string built per answer.
   */
  last: Settled | null;
}

/** An answerer's price and a key's metrics series for it (`KeyCharges.last`). */
interface Settled {
  readonly backend: string;
  readonly model: string;
  readonly price: ModelPrice | null;
  readonly series: UsageSeries;
}

/** What a request holds between its reservation and its answer's end. */
interface Reservation {
  readonly lease: Lease;
  readonly charges: KeyCharges;
  /** Index of the first tpm check in the lease (budgets follow the tpm checks). */
  readonly first: number;
  readonly reservedTokens: number;
  readonly reservedUsd: number;
  readonly inputEstimate: number;
}
/** How an answer ended, for what is charged. */
export type AnswerOutcome =
  /** The answer reached its end: its usage block says what it took (null: it gave none). */
  | 'answered'
  /**
   * The backend refused, or failed the answer — before it began or after (its error event, a broken or
   * unfinished stream): a failed attempt, and failed attempts are never counted as usage (README, Teams:
   * usage), whatever usage the backend reported before failing — unless the answer was continued.
   */
  | 'failed'
  /** The answer began and was cut by the client (it left) or the proxy (its guard): usage may be missing. */
  | 'cut';

/** Where the answer came from, for the price and the labels. */
export interface Answerer {
  readonly backend: { readonly name: string };
  readonly model: string;
}

/** One answer's part of a request's usage: who answered, its usage block (if any), how it ended. */
export interface AnswerPart {
  readonly answerer: Answerer | null;
  readonly usage: TokenUsage | null;
  readonly outcome: AnswerOutcome;
}

/**
 * One request's usage, settled once when its answer ends (`done`); a second call does nothing. An answer
 * without a usage block is charged its reservation (the budget's bound), and recorded with its input
 * estimate.
 *
 * A stream cut and continued (`continue_streams`) is one request with two answers: told that a cut may be
 * continued (`mayContinue`), the meter holds the cut answer's part and settles once, when the continuation
 * ends, with both — a ledger line per answerer, one release of the reservation with what both took. A cut
 * answer that is not continued is settled when the client's response closes, as before.
 */
export class UsageMeter {
  private settled = false;
  /** Set when the answer begins (`answering`): who answers. */
  private answerer: Answerer | null = null;
  /** The next cut answer waits for its continuation (see mayContinue). */
  private holdNextCut = false;
  /** A cut answer waiting for its continuation's end. */
  private held: AnswerPart | null = null;
  /** The continuation of the held answer began answering. */
  private continuing = false;

  constructor(
    private readonly spend: Spend,
    private readonly ex: ChatExchange,
    private readonly charges: KeyCharges,
    private readonly reservation: Reservation | null,
  ) {}

  /**
   * The answer begins to reach the client (relay.ts): from now on a lost usage block is charged. Told again
   * for a continuation, once it has its first bytes (attempts.ts).
   */
  answering(answerer: Answerer): void {
    this.answerer = answerer;
    if (this.held !== null) this.continuing = true;
  }

  /**
   * The answer, if cut now, may be continued (attempts.ts, `continue_streams`): its part waits for the
   * continuation's, or for the client's response to close when there is none.
   */
  mayContinue(): void {
    if (this.settled || this.held !== null) return;
    this.holdNextCut = true;
    // Without a reservation nothing listens for the close yet: a held part must not wait past it.
    if (this.reservation === null) {
      const { res } = this.ex;
      if (res.destroyed) this.holdNextCut = false;
      else res.once('close', () => this.closed());
    }
  }

  done(answerer: Answerer | null, usage: TokenUsage | null, outcome: AnswerOutcome): void {
    if (this.settled) return;
    // A stream that may be continued waits, cut by the client or failed by its backend (what continues).
    if (outcome !== 'answered' && this.answerer !== null && this.holdNextCut) {
      this.holdNextCut = false;
      this.held = { answerer, usage, outcome };
      return;
    }
    this.settled = true;
    const part: AnswerPart = { answerer, usage, outcome };
    const held = this.held;
    this.held = null;
    // A failed answer that was continued is the first part of the client's answer: charged as cut.
    const first: AnswerPart | null = held?.outcome === 'failed' ? { ...held, outcome: 'cut' } : held;
    this.spend.settle(this.ex, this.charges, this.reservation, first === null ? [part] : [first, part]);
  }

  /**
   * The client's connection closed: an answer that began and was not settled was cut (charged its
   * reservation); one that never began cost nothing. A cut answer held for a continuation that never began
   * is settled alone.
   */
  closed(): void {
    this.holdNextCut = false;
    const held = this.held;
    if (held !== null && !this.continuing) {
      this.held = null;
      this.settled = true;
      this.spend.settle(this.ex, this.charges, this.reservation, [held]);
      return;
    }
    if (this.answerer !== null) this.done(this.answerer, null, 'cut');
    else this.done(null, null, 'failed');
  }
}

export class Spend {
  private readonly now: () => number;
  private readonly labels: ModelLabels;
  /** Backends and model labels warned about: bounded as the labels are. */
  private readonly warnedUnpriced = new Set<string>();
  private table: PolicyTable | null = null;
  /** Per key name, its charges under `table`. */
  private charges = new Map<string, KeyCharges>();

  constructor(private readonly deps: SpendDeps) {
    this.now = deps.now ?? Date.now;
    this.labels = deps.labels ?? new ModelLabels();
  }

  /** The charges of `keyName` under `table`, built on its first request after a start or a reload. */
  private chargesFor(table: PolicyTable, keyName: string | null): KeyCharges {
    if (table !== this.table) {
      this.table = table;
      this.charges = new Map();
    }
    const name = keyName ?? '';
    let charges = this.charges.get(name);
    if (charges === undefined) {
      const policy = table.policyFor(keyName);
      const scopes = table.hasCounters ? (policy?.scopes ?? []) : [];
      const request =
        keyName !== null && scopes.length > 0
          ? (this.deps.requestLimits?.planFor(table, keyName) ?? null)
          : null;
      const tpm = scopes.filter((scope) => scope.tpm !== null);
      const budgets: BudgetSlot[] = [];
      for (const scope of scopes) {
        if (scope.budget === null) continue;
        budgets.push({
          scope,
          budget: scope.budget,
          start: 0,
          end: 0,
          key: '',
          seeding: null,
          seeded: false,
          warned: false,
        });
      }
      const reserves = tpm.length > 0 || budgets.length > 0;
      charges = {
        policy,
        request,
        tpm,
        budgets,
        acquires: reserves || request !== null,
        holds: reserves || request?.holdsSlots === true,
        last: null,
      };
      this.charges.set(name, charges);
    }
    return charges;
  }

  /**
   * Before the backend call: takes the key's request limits and reserves what the request may take against
   * its `tpm` and budgets (its own and its labels'), all in one acquire, or refuses it with a 429.
   * `targets` names where it may go (a request tried by failover: the most expensive is reserved).
   */
  begin(
    ex: ChatExchange,
    from: Protocol,
    body: Record<string, unknown>,
    targets: readonly Answerer[],
  ): UsageMeter | Promise<UsageMeter> {
    // The key's labels go with its usage, policy or not: one Map lookup.
    const charges = this.chargesFor(this.deps.policies(), ex.authKeyName);
    if (!charges.acquires) return new UsageMeter(this, ex, charges, null);
    const store = this.deps.limits;
    if (charges.tpm.length === 0 && charges.budgets.length === 0 && store.acquireNow !== undefined) {
      // Request limits alone, in this process's memory: the plan's own checks, decided with no promise.
      const checks = (charges.request as KeyPlan).checks;
      return this.taken(ex, charges, checks, 0, 0, 0, store.acquireNow(checks, this.now()));
    }
    return this.reserve(ex, from, body, targets, charges);
  }

  private async reserve(
    ex: ChatExchange,
    from: Protocol,
    body: Record<string, unknown>,
    targets: readonly Answerer[],
    charges: KeyCharges,
  ): Promise<UsageMeter> {
    const request = charges.request;
    let checks: readonly LimitCheck[];
    let inputEstimate = 0;
    let reservedTokens = 0;
    let reservedUsd = 0;
    if (charges.tpm.length === 0 && charges.budgets.length === 0) {
      // Request limits alone: the plan's own checks, as they are.
      checks = (request as KeyPlan).checks;
    } else {
      inputEstimate = await estimateInputTokens(body, from);
      const maxOutput = maxOutputTokens(from, body);
      reservedTokens = inputEstimate + maxOutput;
      for (const target of targets) {
        const price = this.deps.prices.priceOf(target.backend.name, target.model);
        const cost = costOf({ input: inputEstimate, output: maxOutput, cacheRead: 0, cacheWrite: 0 }, price);
        if (cost > reservedUsd) reservedUsd = cost;
      }
      refuseWhatNeverFits(charges, from, body, inputEstimate, maxOutput, reservedTokens, reservedUsd);
      const nowMs = this.now();
      const all: LimitCheck[] = request === null ? [] : request.checks.slice();
      for (const scope of charges.tpm) {
        all.push({
          kind: 'window',
          key: `tpm:${scope.id}`,
          limit: scope.tpm as number,
          windowSeconds: 60,
          cost: reservedTokens,
        });
      }
      for (const slot of charges.budgets) {
        if (nowMs >= slot.end || nowMs < slot.start) {
          const period = periodOf(slot.budget.per, nowMs);
          slot.start = period.start;
          slot.end = period.end;
          slot.key = budgetKey(slot.scope, slot.budget.per, period.start);
          slot.seeding = null;
          slot.seeded = false;
        }
        if (!slot.seeded) await this.seed(slot);
        // A spent budget refuses even a request that would cost nothing (an unpriced model).
        all.push({
          kind: 'budget',
          key: slot.key,
          limit: slot.budget.usd,
          cost: Math.max(reservedUsd, 1e-9),
          periodEndMs: slot.end,
        });
      }
      checks = all;
    }
    const result = await this.deps.limits.acquire(checks, this.now());
    return this.taken(ex, charges, checks, inputEstimate, reservedTokens, reservedUsd, result);
  }

  /** The request's meter once its checks were taken, or the 429 of the first that refused. */
  private taken(
    ex: ChatExchange,
    charges: KeyCharges,
    checks: readonly LimitCheck[],
    inputEstimate: number,
    reservedTokens: number,
    reservedUsd: number,
    result: AcquireResult,
  ): UsageMeter {
    const request = charges.request;
    const first = request === null ? 0 : request.checks.length;
    if (!result.granted) {
      if (result.check < first) {
        throw (this.deps.requestLimits as RequestLimits).refused(
          ex.authKeyName as string,
          request as KeyPlan,
          result,
        );
      }
      const check = checks[result.check] as LimitCheck;
      const at = result.check - first;
      // Only a key's requests get here (a request without a key has no policy, so no tpm or budget).
      this.deps.onRejected?.(ex.authKeyName ?? '', check.kind === 'budget' ? 'budget' : 'tpm');
      if (check.kind === 'budget') {
        const slot = charges.budgets[at - charges.tpm.length] as BudgetSlot;
        throw budgetSpent(slot.scope, result.retryAfterSeconds);
      }
      throw tokensExceeded(
        charges.tpm[at] as LimitScope,
        result.limit,
        result.remaining,
        result.retryAfterSeconds,
      );
    }
    if (request !== null) this.deps.requestLimits?.admitted(ex, request, result.remaining);
    const reservation: Reservation | null = charges.holds
      ? { lease: result.lease, charges, first, reservedTokens, reservedUsd, inputEstimate }
      : null;
    const meter = new UsageMeter(this, ex, charges, reservation);
    // A client that goes away before any answer still ends the lease (`done` runs once: 'close' is
    // emitted once, and a meter settled already does nothing).
    if (reservation !== null) {
      if (ex.res.destroyed) meter.closed();
      else ex.res.on('close', () => meter.closed());
    }
    return meter;
  }

  /**
   * Gives a budget's counter what the usage ledger holds for its scope in its period, as a floor (the
   * counter's own settled spend already counts in the ledger too): a budget new to this process — or added
   * by a reload, on Redis as in memory — counts what its key or label spent before it was counted. Once
   * per budget, period and policy table; concurrent first requests share it. A ledger or store that fails
   * (Redis down) is logged, the request goes on from what its counter holds, and a later one tries again.
   */
  private seed(slot: BudgetSlot): Promise<void> {
    slot.seeding ??= (async () => {
      const { start, end, key, scope } = slot;
      try {
        const rows = await this.deps.ledger.rows(dayOf(start), dayOf(Math.min(end - 1, this.now())));
        let spent = 0;
        for (const row of rows) if (rowInScope(row, scope)) spent += row.costUsd;
        if (spent > 0) await this.deps.limits.floorSpent(key, spent, end, this.now());
      } catch (err) {
        if (!slot.warned)
          this.deps.log.warn(
            { budget: key, error: (err as Error).message },
            'A budget could not read its spend so far from the usage ledger; it counts from its counter',
          );
        slot.warned = true;
        if (slot.key === key) slot.seeding = null;
        return;
      }
      if (slot.key === key) slot.seeded = true;
    })();
    return slot.seeding;
  }

  /** Records an ended answer's usage and settles its reservation (see `UsageMeter.done`). */
  /**
   * A request's answers settled (`parts`: one, or a cut answer and its continuation): a ledger line and the
   * key's series per answer, then the reservation released with what they took together. An answer without
   * a usage block counts its input estimate; the last is charged the reservation then (the budget's bound),
   * a continued one not — its continuation's usage counts what it said (the prefill) as input.
   */
  settle(
    ex: ChatExchange,
    charges: KeyCharges,
    reservation: Reservation | null,
    parts: readonly AnswerPart[],
  ): void {
    const nowMs = this.now();
    let costUsd = 0;
    let tokens = 0;
    let lines = 0;
    for (let i = 0; i < parts.length; i++) {
      const last = i === parts.length - 1;
      const charged = this.charge(ex, charges, reservation, parts[i]!, last, lines > 0, nowMs);
      if (charged === null) continue;
      costUsd += charged.costUsd;
      tokens += charged.tokens;
      lines++;
    }
    this.release(ex, charges, reservation, nowMs, tokens, costUsd);
  }

  /** One answer's ledger line and series; what it is charged. */
  private charge(
    ex: ChatExchange,
    charges: KeyCharges,
    reservation: Reservation | null,
    { answerer, usage, outcome }: AnswerPart,
    last: boolean,
    continuation: boolean,
    nowMs: number,
  ): { costUsd: number; tokens: number } | null {
    if (outcome === 'failed' || answerer === null) return null;
    const backend = answerer.backend.name;
    const model = answerer.model;
    const key = ex.authKeyName ?? '';
    let settled = charges.last;
    if (settled === null || settled.backend !== backend || settled.model !== model) {
      const price = this.deps.prices.priceOf(backend, model);
      const label = this.labels.of(backend, model);
      if (price === null) this.warnUnpriced(backend, label);
      settled = {
        backend,
        model,
        price,
        series: this.deps.stats.seriesOf(key || NO_KEY_METRIC_NAME, backend, label),
      };
      charges.last = settled;
    }
    const price = settled.price;
    const counted = usage ?? {
      input: reservation?.inputEstimate ?? 0,
      output: 0,
      cacheRead: 0,
      cacheWrite: 0,
    };
    const bound = usage === null && reservation !== null && last;
    const costUsd = bound ? reservation.reservedUsd : costOf(counted, price);
    const tokens = bound
      ? reservation.reservedTokens
      : counted.input + counted.output + counted.cacheRead + counted.cacheWrite;
    addToSeries(settled.series, counted, costUsd);
    const entry: { -readonly [K in keyof UsageEntry]: UsageEntry[K] } = {
      at: nowMs,
      key,
      labels: charges.policy?.labels ?? [],
      backend,
      // The model's own name, as the proxy writes it: a secret sent as a model's name is written masked.
      model: this.labels.written(model),
      input: counted.input,
      output: counted.output,
      cacheRead: counted.cacheRead,
      cacheWrite: counted.cacheWrite,
      costUsd,
      priced: price !== null,
    };
    // Only on a continuation's line: every other line stays as it was.
    if (continuation) entry.continuation = true;
    this.deps.ledger.record(entry);
    return { costUsd, tokens };
  }

  /** The reservation given back, with what the answers took for its tpm checks and budgets. */
  private release(
    ex: ChatExchange,
    charges: KeyCharges,
    reservation: Reservation | null,
    nowMs: number,
    tokens: number,
    costUsd: number,
  ): void {
    if (reservation === null) return;
    const { first } = reservation;
    const tpm = charges.tpm.length;
    const budgets = charges.budgets.length;
    let actual: Record<number, number> | undefined;
    if (tpm + budgets > 0) {
      actual = {};
      for (let i = 0; i < tpm; i++) actual[first + i] = tokens;
      for (let i = 0; i < budgets; i++) actual[first + tpm + i] = costUsd;
    }
    const store = this.deps.limits;
    if (store.releaseNow !== undefined) {
      // In this process's memory: no promise (and nothing that can fail on the way).
      store.releaseNow(reservation.lease, nowMs, actual);
      return;
    }
    store.release(reservation.lease, nowMs, actual).catch((err: unknown) => {
      this.deps.log.warn(
        { request_id: ex.id, key: ex.authKeyName, error: (err as Error).message },
        'A concurrency slot, budget or tpm reservation could not be given back: it frees itself after the lease time',
      );
    });
  }

  /** Once per backend and model label: a client sending a new name per request is not a new line each. */
  private warnUnpriced(backend: string, model: string): void {
    const id = `${backend}:${model}`;
    if (this.warnedUnpriced.has(id)) return;
    this.warnedUnpriced.add(id);
    this.deps.log.warn(
      { backend, model },
      'No price for this model: its usage is counted at cost 0 (add it under prices: in the YAML)',
    );
  }
}

/**
 * A request whose reservation alone is more than a `tpm` or a budget allows — it could never be admitted,
 * however long the client waited — is refused as a request to change (400), not as a limit reached (429 with
 * a Retry-After that clients would follow for ever).
 */
function refuseWhatNeverFits(
  charges: KeyCharges,
  from: Protocol,
  body: Record<string, unknown>,
  inputEstimate: number,
  maxOutput: number,
  reservedTokens: number,
  reservedUsd: number,
): void {
  const named = MAX_OUTPUT[from](body) !== undefined;
  const limitName = MAX_OUTPUT_NAME[from](body);
  const takes =
    `about ${inputEstimate} input and up to ${maxOutput} output tokens` +
    (named ? '' : ` (it names no ${limitName}: ${DEFAULT_MAX_OUTPUT_TOKENS} are assumed)`);
  const refuse = (what: string): never => {
    throw new ProxyError(400, `This request may take ${takes}, ${what}: give it a lower ${limitName}.`, {
      code: 'request_too_large',
      param: limitName,
    });
  };
  for (const scope of charges.tpm) {
    if (reservedTokens > (scope.tpm as number)) {
      refuse(`more than the ${scope.tpm} tokens per minute of ${whoseLimit(scope)}`);
    }
  }
  for (const slot of charges.budgets) {
    const { budget } = slot;
    if (reservedUsd > budget.usd) {
      const per = budget.per === 'total' ? 'in total' : `per ${budget.per}`;
      refuse(
        `up to ${reservedUsd.toPrecision(3)} USD, more than the budget of ${budget.usd} USD ${per} of ${whoseLimit(slot.scope)}`,
      );
    }
  }
}

/** Whose limit it is, as the refusals name it: `key 'x'` or `label 'y'`. */
function whoseLimit(scope: LimitScope): string {
  return scope.scope === 'key' ? `key '${scope.name}'` : `label '${scope.name}'`;
}

/** 429 for a spent budget, as each SDK reads it (OpenAI `insufficient_quota`). */
function budgetSpent(scope: LimitScope, retryAfterSeconds: number): ProxyError {
  const budget = scope.budget as NonNullable<LimitScope['budget']>;
  const whose = whoseLimit(scope);
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
  const whose = whoseLimit(scope);
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
