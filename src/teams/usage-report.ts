import { NO_KEY_USAGE_NAME } from '../config/key-attributes.js';
import type { KeyPolicy, LimitScope } from './policies.js';

/**
 * The usage report of `GET /admin/usage` (README, Teams: reading usage): the ledger's day rows filtered by
 * key, label and days, summed by key, label, model or day, with the budgets that apply and what each has
 * spent in its current period. Plain data in, plain data out: the server reads the ledger and answers.
 */

/** A ledger row as the report reads it (src/state/usage-ledger.ts has this shape). */
export interface ReportRow {
  readonly day: string;
  readonly key: string;
  readonly labels: readonly string[];
  readonly backend: string;
  readonly model: string;
  readonly requests: number;
  readonly input: number;
  readonly output: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
  readonly costUsd: number;
  readonly unpriced: number;
}

export const GROUPINGS = ['key', 'label', 'model', 'day'] as const;
export type Grouping = (typeof GROUPINGS)[number];

export interface UsageFilter {
  readonly key?: string | undefined;
  readonly label?: string | undefined;
}

export interface UsageSums {
  requests: number;
  tokens: { input: number; output: number; cache_read: number; cache_write: number; total: number };
  cost_usd: number;
  /** Requests answered by a model without a price (their cost counted 0). */
  unpriced_requests: number;
}

const emptySums = (): UsageSums => ({
  requests: 0,
  tokens: { input: 0, output: 0, cache_read: 0, cache_write: 0, total: 0 },
  cost_usd: 0,
  unpriced_requests: 0,
});

function add(sums: UsageSums, row: ReportRow): void {
  sums.requests += row.requests;
  sums.tokens.input += row.input;
  sums.tokens.output += row.output;
  sums.tokens.cache_read += row.cacheRead;
  sums.tokens.cache_write += row.cacheWrite;
  sums.tokens.total += row.input + row.output + row.cacheRead + row.cacheWrite;
  sums.cost_usd += row.costUsd;
  sums.unpriced_requests += row.unpriced;
}

/** A row's group names under a grouping: a row of a key with two labels counts under each. */
const GROUP_OF: Record<Grouping, (row: ReportRow) => readonly string[]> = {
  key: (row) => [row.key === '' ? NO_KEY_USAGE_NAME : row.key],
  label: (row) => (row.labels.length === 0 ? ['(none)'] : row.labels),
  model: (row) => [`${row.backend}:${row.model}`],
  day: (row) => [row.day],
};

export function matches(row: Pick<ReportRow, 'key' | 'labels'>, filter: UsageFilter): boolean {
  if (filter.key !== undefined && row.key !== filter.key) return false;
  if (filter.label !== undefined && !row.labels.includes(filter.label)) return false;
  return true;
}

/** The rows summed per group, groups in name order; and the total. */
export function groupUsage(
  rows: readonly ReportRow[],
  filter: UsageFilter,
  groupBy: Grouping,
): { groups: Array<{ [name: string]: unknown } & UsageSums>; total: UsageSums } {
  const groups = new Map<string, UsageSums>();
  const total = emptySums();
  for (const row of rows) {
    if (!matches(row, filter)) continue;
    add(total, row);
    for (const name of GROUP_OF[groupBy](row)) {
      let sums = groups.get(name);
      if (sums === undefined) {
        sums = emptySums();
        groups.set(name, sums);
      }
      add(sums, row);
    }
  }
  return {
    groups: [...groups.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, sums]) => ({ [groupBy]: name, ...sums })),
    total,
  };
}

/** Every budget scope once (a label's is shared by its keys), those the filter concerns. */
export function budgetScopes(policies: Iterable<KeyPolicy>, filter: UsageFilter): LimitScope[] {
  const byId = new Map<string, LimitScope>();
  for (const policy of policies) {
    if (filter.key !== undefined && policy.keyName !== filter.key) continue;
    for (const scope of policy.scopes) {
      if (scope.budget === null) continue;
      if (filter.label !== undefined && !(scope.scope === 'label' && scope.name === filter.label)) continue;
      byId.set(scope.id, scope);
    }
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
