import {
  closeSync,
  createReadStream,
  createWriteStream,
  fstatSync,
  openSync,
  readSync,
  writeSync,
  type WriteStream,
} from 'node:fs';
import { createInterface } from 'node:readline';
import { ModelLabels } from '../observability/model-labels.js';
import { openPrivateAppend } from '../observability/private-files.js';

/**
 * Where usage settles (README, Teams: usage): per UTC day, key (with its labels when it was used), backend
 * and model, the requests, tokens and cost. In memory on one instance; replayed from and appended to a
 * JSON-lines file (`--usage-file`) so that it survives a restart; in Redis (usage-redis.ts) when replicas
 * share a state store. Budgets read it to learn what was spent before this process counted.
 */

/** One answered request's usage. */
export interface UsageEntry {
  /** Epoch milliseconds. */
  readonly at: number;
  /** The proxy key's name; '' for a request without one (auth off, trusted address). */
  readonly key: string;
  readonly labels: readonly string[];
  readonly backend: string;
  readonly model: string;
  readonly input: number;
  readonly output: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
  readonly costUsd: number;
  /** Whether the model had a price (an unpriced model's cost is 0). */
  readonly priced: boolean;
  /**
   * The answer continued a cut stream of the same request (`continue_streams`): its tokens and cost count,
   * not as another request. Absent otherwise.
   */
  readonly continuation?: true;
}

/** The sums of one day, key (and labels), backend and model. */
export interface UsageRow {
  /** `YYYY-MM-DD`, UTC. */
  readonly day: string;
  readonly key: string;
  readonly labels: readonly string[];
  readonly backend: string;
  readonly model: string;
  requests: number;
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  costUsd: number;
  /** Requests answered by a model with no price. */
  unpriced: number;
}

export interface UsageLedger {
  /** Adds one request's usage; never throws (a failed write is logged by the ledger). */
  record(entry: UsageEntry): void;
  /** The rows of the days from `fromDay` to `toDay` (inclusive, `YYYY-MM-DD`). */
  rows(fromDay: string, toDay: string): Promise<UsageRow[]>;
  close(): Promise<void>;
}

const DAY_MS = 86_400_000;
/** The last day `dayOf` named: a request of the same day costs two comparisons, not a Date. */
let lastDay = { start: 0, end: 0, name: '1970-01-01' };

/** The UTC day of `ms`, `YYYY-MM-DD`. */
export function dayOf(ms: number): string {
  if (ms >= lastDay.start && ms < lastDay.end) return lastDay.name;
  const start = Math.floor(ms / DAY_MS) * DAY_MS;
  const name = new Date(start).toISOString().slice(0, 10);
  lastDay = { start, end: start + DAY_MS, name };
  return name;
}

/** The identity of a row within its day. */
export function rowId(entry: Pick<UsageEntry, 'key' | 'labels' | 'backend' | 'model'>): string {
  return JSON.stringify([entry.key, entry.labels, entry.backend, entry.model]);
}

export type RowIdentity = Pick<UsageEntry, 'key' | 'labels' | 'backend' | 'model'>;

const sameLabels = (a: readonly string[], b: readonly string[]): boolean =>
  a === b || (a.length === b.length && a.every((label, i) => label === b[i]));

/**
 * `rowId`, remembered: a key's requests to the same backend and model (with the same labels: a policy's
 * array) find their id without serialising it again. Bounded: forgotten in bulk past `max` ids.
 */
export class RowIds {
  private readonly byKey = new Map<
    string,
    Array<{ labels: readonly string[]; backend: string; model: string; id: string }>
  >();
  private size = 0;

  constructor(private readonly max = 10_000) {}

  of(entry: RowIdentity): string {
    let known = this.byKey.get(entry.key);
    if (known !== undefined) {
      for (const memo of known) {
        if (
          memo.backend === entry.backend &&
          memo.model === entry.model &&
          sameLabels(memo.labels, entry.labels)
        )
          return memo.id;
      }
    }
    const id = rowId(entry);
    if (this.size >= this.max) {
      this.byKey.clear();
      this.size = 0;
      known = undefined;
    }
    if (known === undefined) {
      known = [];
      this.byKey.set(entry.key, known);
    }
    known.push({ labels: entry.labels, backend: entry.backend, model: entry.model, id });
    this.size++;
    return id;
  }
}

export function addToRow(row: UsageRow, entry: UsageEntry): void {
  if (entry.continuation !== true) row.requests++;
  row.input += entry.input;
  row.output += entry.output;
  row.cacheRead += entry.cacheRead;
  row.cacheWrite += entry.cacheWrite;
  row.costUsd += entry.costUsd;
  if (!entry.priced) row.unpriced++;
}

export function emptyRow(
  day: string,
  entry: Pick<UsageEntry, 'key' | 'labels' | 'backend' | 'model'>,
): UsageRow {
  return {
    day,
    key: entry.key,
    labels: [...entry.labels],
    backend: entry.backend,
    model: entry.model,
    requests: 0,
    input: 0,
    output: 0,
    cacheRead: 0,
    cacheWrite: 0,
    costUsd: 0,
    unpriced: 0,
  };
}

/**
 * The identity an entry is summed under: its model as `labels` counts it (the client names models; the
 * aggregates stay bounded). The entry itself when its model is its own label.
 */
export function aggregateIdentity(entry: UsageEntry, labels: ModelLabels): RowIdentity {
  const model = labels.of(entry.backend, entry.model);
  return model === entry.model
    ? entry
    : { key: entry.key, labels: entry.labels, backend: entry.backend, model };
}

/**
 * One instance's usage, as day aggregates: bounded by days × keys × models, not by requests — models as
 * `labels` counts them (src/observability/model-labels.ts), not as clients name them.
 */
export class MemoryUsageLedger implements UsageLedger {
  private readonly days = new Map<string, Map<string, UsageRow>>();
  private readonly ids = new RowIds();

  constructor(private readonly labels: ModelLabels = new ModelLabels()) {}

  record(entry: UsageEntry): void {
    const day = dayOf(entry.at);
    let rows = this.days.get(day);
    if (rows === undefined) {
      rows = new Map();
      this.days.set(day, rows);
    }
    const identity = aggregateIdentity(entry, this.labels);
    const id = this.ids.of(identity);
    let row = rows.get(id);
    if (row === undefined) {
      row = emptyRow(day, identity);
      rows.set(id, row);
    }
    addToRow(row, entry);
  }

  rows(fromDay: string, toDay: string): Promise<UsageRow[]> {
    const out: UsageRow[] = [];
    for (const [day, rows] of this.days) {
      if (day < fromDay || day > toDay) continue;
      for (const row of rows.values()) out.push({ ...row, labels: [...row.labels] });
    }
    return Promise.resolve(out);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const NUMBER_FIELDS = ['at', 'input', 'output', 'cacheRead', 'cacheWrite', 'costUsd'] as const;

/** A ledger line as an entry; null for a line that is not one. */
export function parseEntry(line: string): UsageEntry | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const e = value as Record<string, unknown>;
  if (typeof e.key !== 'string' || typeof e.backend !== 'string' || typeof e.model !== 'string') return null;
  if (!Array.isArray(e.labels) || !e.labels.every((l) => typeof l === 'string')) return null;
  if (!NUMBER_FIELDS.every((f) => typeof e[f] === 'number' && Number.isFinite(e[f]) && (e[f] as number) >= 0))
    return null;
  if (typeof e.priced !== 'boolean') return null;
  if (e.continuation !== undefined && e.continuation !== true) return null;
  return e as unknown as UsageEntry;
}

export interface FileLedgerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * The memory ledger, replayed from `path` at start and appended to as requests end: one JSON line per
 * request, written by an append-only stream (never rewritten). The file is created readable by the
 * proxy's user only (0600) and never written through a symbolic link. Lines that are not entries (a line
 * cut by a crash, a hand edit) are counted and reported, not fatal.
 */
/** Whether the file's last byte is not a newline (an empty file is not inside a line). */
function endsInsideALine(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const { size } = fstatSync(fd);
    if (size === 0) return false;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } finally {
    closeSync(fd);
  }
}

export class FileUsageLedger implements UsageLedger {
  private readonly memory: MemoryUsageLedger;
  private out: WriteStream | null = null;
  private failed = false;

  private constructor(
    private readonly path: string,
    private readonly log: FileLedgerLog,
    labels: ModelLabels,
  ) {
    this.memory = new MemoryUsageLedger(labels);
  }

  /**
   * Each line keeps the model's own name (the file is the record); what is summed in memory, replayed lines
   * too, names models as `labels` counts them.
   */
  static async open(
    path: string,
    log: FileLedgerLog,
    labels: ModelLabels = new ModelLabels(),
  ): Promise<FileUsageLedger> {
    const ledger = new FileUsageLedger(path, log, labels);
    // Private, never through a link; a path it cannot write is a startup error naming the setting.
    const fd = openPrivateAppend('usage file (--usage-file)', path);
    await ledger.replay();
    // A line cut by a crash (no newline at its end) is ended first: the next entry starts a line of its own
    // instead of being glued to it, and lost with it, at the next replay.
    if (endsInsideALine(path)) writeSync(fd, '\n');
    ledger.out = createWriteStream('', { fd, flags: 'a' });
    ledger.out.on('error', (err) => ledger.writeFailed(err));
    return ledger;
  }

  private async replay(): Promise<void> {
    const lines = createInterface({
      input: createReadStream(this.path, { encoding: 'utf8' }),
      crlfDelay: Infinity,
    });
    let entries = 0;
    const bad: number[] = [];
    let lineNumber = 0;
    for await (const line of lines) {
      lineNumber++;
      if (line.trim() === '') continue;
      const entry = parseEntry(line);
      if (entry === null) bad.push(lineNumber);
      else {
        this.memory.record(entry);
        entries++;
      }
    }
    if (bad.length > 0) {
      this.log.warn(
        { file: this.path, bad_lines: bad.length, first_bad_lines: bad.slice(0, 10) },
        'Usage file: lines that are not usage entries were skipped',
      );
    }
    if (entries > 0) this.log.info({ file: this.path, entries }, 'Usage file replayed');
  }

  private writeFailed(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.log.error(
      { file: this.path, code: (err as NodeJS.ErrnoException | null)?.code },
      'Usage file: cannot append; usage is kept in memory only until restart',
    );
  }

  record(entry: UsageEntry): void {
    this.memory.record(entry);
    if (this.out !== null && !this.failed) this.out.write(`${JSON.stringify(entry)}\n`);
  }

  rows(fromDay: string, toDay: string): Promise<UsageRow[]> {
    return this.memory.rows(fromDay, toDay);
  }

  close(): Promise<void> {
    const out = this.out;
    this.out = null;
    if (out === null) return Promise.resolve();
    return new Promise((done) => out.end(() => done()));
  }
}
