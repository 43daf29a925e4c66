import type { Redis } from 'ioredis';
import { ModelLabels } from '../observability/model-labels.js';
import type { RedisTarget } from './store.js';
import {
  aggregateIdentity,
  dayOf,
  emptyRow,
  RowIds,
  type UsageEntry,
  type UsageLedger,
  type UsageRow,
} from './usage-ledger.js';

/**
 * The usage ledger in Redis (README, Teams: usage), shared by every replica on the state store: one hash per
 * UTC day, `P d:<day>`, whose fields are a row's identity (key, labels, backend, model) and a measure,
 * incremented by one script per request (one round trip, after the answer ended). Days are kept 400 days.
 * Usage whose write fails (Redis down) is kept in memory, bounded, and written once Redis is back.
 */

/** The measures, in the order `record` gives their increments. */
const MEASURES = ['requests', 'input', 'output', 'cacheRead', 'cacheWrite', 'costUsd', 'unpriced'] as const;
const SEPARATOR = '\u0001';
const KEEP_DAYS_S = 400 * 86_400;

/** KEYS: the day's hash. ARGV: the row's id, expiry seconds, then the seven measures' increments. */
const RECORD_SCRIPT = `
for i = 1, ${MEASURES.length} do
  local by = ARGV[2 + i]
  if by ~= '0' then redis.call('HINCRBYFLOAT', KEYS[1], ARGV[1] .. '${SEPARATOR}' .. i, by) end
end
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

interface ScriptCommands {
  usageRecord(key: string, ...args: string[]): Promise<number>;
}

export interface RedisUsageLedgerOptions extends RedisTarget {
  log: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
  /** At most this many rows (day, key, labels, backend, model) kept while Redis is down (default 10,000). */
  maxPendingRows?: number;
  /**
   * The name each model is summed under (src/observability/model-labels.ts): the hash of a day holds at most
   * the configured models and each replica's cap of others, whatever names clients send.
   */
  labels?: ModelLabels;
}

/** Usage not yet written to Redis: one row's increments, summed while Redis is away. */
interface Pending {
  readonly hash: string;
  readonly id: string;
  readonly values: number[];
}

const DEFAULT_MAX_PENDING_ROWS = 10_000;

export class RedisUsageLedger implements UsageLedger {
  private readonly client: Redis & ScriptCommands;
  private lastWarned = 0;
  private readonly ids = new RowIds();
  private readonly labels: ModelLabels;
  /**
   * Usage whose write failed (Redis down), summed per row and written when Redis is back (its `ready`, or
   * the next write that succeeds); bounded by `maxPendingRows`, past which new rows are dropped and counted.
   */
  private readonly pending = new Map<string, Pending>();
  private flushing: Promise<void> | null = null;
  private dropped = 0;
  private readonly onReady = () => void this.flush();

  constructor(private readonly options: RedisUsageLedgerOptions) {
    options.connection.defineScript('usageRecord', 1, RECORD_SCRIPT);
    this.client = options.connection.client as Redis & ScriptCommands;
    this.client.on('ready', this.onReady);
    this.labels = options.labels ?? new ModelLabels();
  }

  record(entry: UsageEntry): void {
    const values = [
      entry.continuation === true ? 0 : 1,
      entry.input,
      entry.output,
      entry.cacheRead,
      entry.cacheWrite,
      entry.costUsd,
      entry.priced ? 0 : 1,
    ];
    const hash = `${this.options.keyPrefix}d:${dayOf(entry.at)}`;
    const id = this.ids.of(aggregateIdentity(entry, this.labels));
    this.write(hash, id, values).then(
      () => {
        if (this.pending.size > 0) void this.flush();
      },
      (err: unknown) => this.keep(hash, id, values, err),
    );
  }

  /** Rows of usage waiting for Redis (tests and health). */
  get pendingRows(): number {
    return this.pending.size;
  }

  private async write(hash: string, id: string, values: readonly number[]): Promise<void> {
    await this.options.connection.connected();
    await this.client.usageRecord(hash, id, String(KEEP_DAYS_S), ...values.map(String));
  }

  /** Keeps a failed write's usage for later, summed into its row. */
  private keep(hash: string, id: string, values: readonly number[], err: unknown): void {
    const at = `${hash}\u0002${id}`;
    let row = this.pending.get(at);
    if (row === undefined) {
      if (this.pending.size >= (this.options.maxPendingRows ?? DEFAULT_MAX_PENDING_ROWS)) {
        this.dropped++;
        this.warn(
          err,
          'Usage could not be written to the Redis state store, and too much waits already: dropped',
        );
        return;
      }
      row = { hash, id, values: values.map(() => 0) };
      this.pending.set(at, row);
    }
    for (let i = 0; i < values.length; i++) row.values[i] = (row.values[i] as number) + (values[i] as number);
    this.warn(err, 'Usage could not be written to the Redis state store: kept in memory until it is back');
  }

  /**
   * Writes what waits, once per row; a row whose write fails again goes back to waiting. Concurrent callers
   * share one flush.
   */
  private flush(): Promise<void> {
    if (this.flushing !== null) return this.flushing;
    const run = this.writePending();
    // Set after the call, cleared when it settles: a run with nothing to await settles before `??=` could
    // store it, and a cleared-then-stored promise would stand for every later flush, writing nothing.
    this.flushing = run;
    const clear = () => {
      if (this.flushing === run) this.flushing = null;
    };
    run.then(clear, clear);
    return run;
  }

  /** One flush: what waits, written; stops at the first round with a failure (those rows wait again). */
  private async writePending(): Promise<void> {
    while (this.pending.size > 0) {
      const rows = [...this.pending.values()];
      this.pending.clear();
      const results = await Promise.allSettled(rows.map((row) => this.write(row.hash, row.id, row.values)));
      let failed: unknown = null;
      results.forEach((result, i) => {
        if (result.status === 'rejected') {
          const row = rows[i] as Pending;
          failed = result.reason;
          this.keep(row.hash, row.id, row.values, result.reason);
        }
      });
      if (failed !== null) return;
    }
    if (this.dropped > 0) {
      this.options.log.warn({ dropped: this.dropped }, 'Usage rows dropped while Redis was away');
      this.dropped = 0;
    }
  }

  private warn(err: unknown, msg: string): void {
    // At most one line a minute while Redis is down.
    const now = Date.now();
    if (now - this.lastWarned < 60_000) return;
    this.lastWarned = now;
    this.options.log.warn({ error: (err as Error).message, waiting_rows: this.pending.size }, msg);
  }

  async rows(fromDay: string, toDay: string): Promise<UsageRow[]> {
    await this.options.connection.connected();
    // What waited for Redis is written first, so that it is read.
    if (this.pending.size > 0) await this.flush();
    const days = daysBetween(fromDay, toDay);
    const pipeline = this.client.pipeline();
    for (const day of days) pipeline.hgetall(`${this.options.keyPrefix}d:${day}`);
    const replies = (await pipeline.exec()) ?? [];
    const out: UsageRow[] = [];
    replies.forEach(([err, hash], index) => {
      if (err !== null || hash === null || typeof hash !== 'object') return;
      const day = days[index] as string;
      const rows = new Map<string, UsageRow>();
      for (const [field, value] of Object.entries(hash as Record<string, string>)) {
        const cut = field.lastIndexOf(SEPARATOR);
        const id = field.slice(0, cut);
        const measure = MEASURES[Number(field.slice(cut + 1)) - 1];
        if (measure === undefined) continue;
        let row = rows.get(id);
        if (row === undefined) {
          const [key, labels, backend, model] = JSON.parse(id) as [string, string[], string, string];
          row = emptyRow(day, { key, labels, backend, model });
          rows.set(id, row);
        }
        row[measure] = Number(value);
      }
      out.push(...rows.values());
    });
    return out;
  }

  close(): Promise<void> {
    this.client.off('ready', this.onReady);
    return Promise.resolve();
  }
}

/** The UTC days from one to the other, inclusive; the last 400 at most (the days kept). */
export function daysBetween(fromDay: string, toDay: string): string[] {
  const days: string[] = [];
  const end = Date.parse(`${toDay}T00:00:00Z`);
  const start = Math.max(Date.parse(`${fromDay}T00:00:00Z`), end - 399 * 86_400_000);
  for (let t = start; t <= end; t += 86_400_000) days.push(dayOf(t));
  return days;
}
