import type { FastifyInstance, FastifyReply } from 'fastify';
import { errorEnvelope } from '../protocols/error-envelopes.js';
import { periodOf, rowInScope } from '../pipeline/spend.js';
import type { Redactor } from '../redaction/redactor.js';
import { dayOf, type UsageLedger } from '../state/usage-ledger.js';
import type { PolicyTable } from '../teams/policies.js';
import { GROUPINGS, budgetScopes, groupUsage, type Grouping } from '../teams/usage-report.js';

/**
 * `GET /admin/usage` (README, Teams: reading usage): requests, tokens and cost from the usage ledger, by key,
 * label, model or day, for a key or a label, over days; and every budget that applies with what it has
 * spent in its current period (naming the models without a price it was charged 0 for). An operator
 * route: the auth hook lets only an admin key in (src/server/operator-access.ts).
 */

export interface UsageRouteOptions {
  ledger: UsageLedger;
  policies: () => PolicyTable;
  /**
   * The answer is redacted as a whole (README, Key hygiene): it echoes the `key` and `label` asked for, and
   * names models that clients named — any of which may be a secret.
   */
  redactor: () => Redactor;
  now?: () => number;
}

const DAY = /^(\d{4}-\d{2}-\d{2})(?:T[\d:.]+(?:Z|[+-]\d{2}:\d{2}))?$/i;

/** Whether `YYYY-MM-DD` names a day of the calendar: `Date.parse` takes `2026-02-30` as March 2nd. */
function isCalendarDay(day: string): boolean {
  const ms = Date.parse(`${day}T00:00:00Z`);
  return Number.isFinite(ms) && dayOf(ms) === day;
}

/** A `from`/`to` value as its UTC day; undefined when absent, null when it is not a date. */
function dayParam(value: unknown): string | undefined | null {
  if (value === undefined) return undefined;
  const day = typeof value === 'string' ? DAY.exec(value)?.[1] : undefined;
  if (day === undefined || !isCalendarDay(day)) return null;
  if (day.length === (value as string).length) return day;
  const ms = Date.parse(value as string);
  return Number.isFinite(ms) ? dayOf(ms) : null;
}

function badRequest(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send(errorEnvelope('openai', { status: 400, code: 'invalid_request', message }));
}

const round = (usd: number): number => Math.round(usd * 1e6) / 1e6;

/** The ledger could not be read (its store is unreachable): a 503 the operator can act on, not a 500. */
class LedgerUnavailable extends Error {}

/** The ledger's rows of `from` to `to`; a failure to read them as LedgerUnavailable. */
async function rowsOf(ledger: UsageLedger, from: string, to: string) {
  try {
    return await ledger.rows(from, to);
  } catch (err) {
    throw new LedgerUnavailable((err as Error).message);
  }
}

export function registerUsageRoutes(app: FastifyInstance, options: UsageRouteOptions): void {
  const now = options.now ?? Date.now;
  app.get('/admin/usage', async (request, reply) => {
    try {
      return await usageReport(request.query, reply);
    } catch (err) {
      if (!(err instanceof LedgerUnavailable)) throw err;
      request.log.warn({ error: err.message }, 'Usage could not be read: the state store is unreachable');
      return reply.code(503).send(
        errorEnvelope('openai', {
          status: 503,
          code: 'state_store_unavailable',
          message:
            'Usage could not be read: the state store (--state-store) is unreachable; usage settled meanwhile ' +
            'is kept and written when it is back. Try again later.',
        }),
      );
    }
  });

  async function usageReport(rawQuery: unknown, reply: FastifyReply) {
    const query = (rawQuery ?? {}) as Record<string, unknown>;
    const nowMs = now();
    const from = dayParam(query.from);
    const to = dayParam(query.to);
    if (from === null || to === null)
      return badRequest(reply, 'from and to must be dates (2026-12-01) or date-times');
    const groupBy = (query.group_by ?? 'key') as Grouping;
    if (!GROUPINGS.includes(groupBy))
      return badRequest(reply, `group_by must be one of ${GROUPINGS.join(', ')}`);
    for (const name of ['key', 'label'] as const) {
      if (query[name] !== undefined && (typeof query[name] !== 'string' || query[name] === ''))
        return badRequest(reply, `${name} must be a name`);
    }
    const filter = { key: query.key as string | undefined, label: query.label as string | undefined };
    const toDay = to ?? dayOf(nowMs);
    const fromDay = from ?? dayOf(periodOf('month', nowMs).start);
    if (fromDay > toDay) return badRequest(reply, 'from must not be after to');
    const rows = await rowsOf(options.ledger, fromDay, toDay);
    const { groups, total } = groupUsage(rows, filter, groupBy);
    const budgets = [];
    for (const scope of budgetScopes(options.policies().all(), filter)) {
      const budget = scope.budget as NonNullable<typeof scope.budget>;
      const period = periodOf(budget.per, nowMs);
      const spentRows = (await rowsOf(options.ledger, dayOf(period.start), dayOf(nowMs))).filter((row) =>
        rowInScope(row, scope),
      );
      const spent = spentRows.reduce((sum, row) => sum + row.costUsd, 0);
      const unpriced = [
        ...new Set(spentRows.filter((row) => row.unpriced > 0).map((row) => `${row.backend}:${row.model}`)),
      ].sort();
      budgets.push({
        scope: scope.scope,
        name: scope.name,
        usd: budget.usd,
        per: budget.per,
        period_start: budget.per === 'total' ? null : new Date(period.start).toISOString(),
        period_end: budget.per === 'total' ? null : new Date(period.end).toISOString(),
        spent_usd: round(spent),
        remaining_usd: round(Math.max(0, budget.usd - spent)),
        ...(unpriced.length > 0
          ? {
              unpriced_models: unpriced,
              note: `models without a price were counted at cost 0 against this budget: ${unpriced.join(', ')} (add them under prices: in the YAML)`,
            }
          : {}),
      });
    }
    const rounded = (sums: typeof total) => ({ ...sums, cost_usd: round(sums.cost_usd) });
    return options.redactor().redactValue({
      from: fromDay,
      to: toDay,
      group_by: groupBy,
      ...(filter.key !== undefined ? { key: filter.key } : {}),
      ...(filter.label !== undefined ? { label: filter.label } : {}),
      groups: groups.map((g) => ({ ...g, cost_usd: round(g.cost_usd) })),
      total: rounded(total),
      budgets,
    });
  }
}
