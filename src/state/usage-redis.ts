import type { Redis } from 'ioredis';
import type { RedisTarget } from './store.js';
import { dayOf, emptyRow, rowId, type UsageEntry, type UsageLedger, type UsageRow } from './usage-ledger.js';

/**
 * The usage ledger in Redis (README, Teams: usage), shared by every replica on the state store: one hash per
 * UTC day, `P d:<day>`, whose fields are a row's identity (key, labels, backend, model) and a measure,
 * incremented by one script per request (one round trip, after the answer ended). Days are kept 400 days.
 */

const MEASURES = ['requests', 'input', 'output', 'cacheRead', 'cacheWrite', 'costUsd', 'unpriced'] as const;
type Measure = (typeof MEASURES)[number];
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
  log: { warn(obj: object, msg: string): void };
}

export class RedisUsageLedger implements UsageLedger {
  private readonly client: Redis & ScriptCommands;
  private lastWarned = 0;

  constructor(private readonly options: RedisUsageLedgerOptions) {
    options.connection.defineScript('usageRecord', 1, RECORD_SCRIPT);
    this.client = options.connection.client as Redis & ScriptCommands;
  }

  record(entry: UsageEntry): void {
    const values: Record<Measure, number> = {
      requests: 1,
      input: entry.input,
      output: entry.output,
      cacheRead: entry.cacheRead,
      cacheWrite: entry.cacheWrite,
      costUsd: entry.costUsd,
      unpriced: entry.priced ? 0 : 1,
    };
    const args = MEASURES.map((m) => String(values[m]));
    this.options.connection
      .connected()
      .then(() =>
        this.client.usageRecord(
          `${this.options.keyPrefix}d:${dayOf(entry.at)}`,
          rowId(entry),
          String(KEEP_DAYS_S),
          ...args,
        ),
      )
      .catch((err: unknown) => {
        // At most one line a minute while Redis is down: the usage of those requests is not kept.
        const now = Date.now();
        if (now - this.lastWarned < 60_000) return;
        this.lastWarned = now;
        this.options.log.warn(
          { error: (err as Error).message },
          'Usage could not be written to the Redis state store; it is lost for these requests',
        );
      });
  }

  async rows(fromDay: string, toDay: string): Promise<UsageRow[]> {
    await this.options.connection.connected();
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
