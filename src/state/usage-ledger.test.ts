import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModelLabels } from '../observability/model-labels.js';
import { FileUsageLedger, MemoryUsageLedger, parseEntry, type UsageEntry } from './usage-ledger.js';

const entry = (over: Partial<UsageEntry> = {}): UsageEntry => ({
  at: Date.UTC(2026, 11, 6, 10),
  key: 'alice',
  labels: ['team-a'],
  backend: 'openai',
  model: 'gpt-4o',
  input: 10,
  output: 5,
  cacheRead: 2,
  cacheWrite: 0,
  costUsd: 0.5,
  priced: true,
  ...over,
});

const log = () => {
  const lines: Array<{ obj: object; msg: string }> = [];
  const push = (obj: object, msg: string) => void lines.push({ obj, msg });
  return { lines, info: push, warn: push, error: push };
};

describe('the usage ledger', () => {
  it('sums per day, key, labels, backend and model in memory', async () => {
    const ledger = new MemoryUsageLedger();
    ledger.record(entry());
    ledger.record(entry({ priced: false, costUsd: 0 }));
    ledger.record(entry({ at: Date.UTC(2026, 11, 7, 1) }));
    expect(await ledger.rows('2026-12-06', '2026-12-06')).toEqual([
      {
        day: '2026-12-06',
        key: 'alice',
        labels: ['team-a'],
        backend: 'openai',
        model: 'gpt-4o',
        requests: 2,
        input: 20,
        output: 10,
        cacheRead: 4,
        cacheWrite: 0,
        costUsd: 0.5,
        unpriced: 1,
      },
    ]);
    expect((await ledger.rows('2026-12-01', '2026-12-31')).map((r) => r.day)).toEqual([
      '2026-12-06',
      '2026-12-07',
    ]);
  });

  it('sums models under their labels: the names clients send do not grow it', async () => {
    const ledger = new MemoryUsageLedger(new ModelLabels({ maxOthers: 1 }));
    for (const model of ['first', 'second', 'third']) ledger.record(entry({ model }));
    const rows = await ledger.rows('2026-12-06', '2026-12-06');
    expect(rows.map((r) => [r.model, r.requests])).toEqual([
      ['first', 1],
      ['other', 2],
    ]);
  });

  it('reads only whole entries back', () => {
    expect(parseEntry(JSON.stringify(entry()))).toEqual(entry());
    expect(parseEntry('{"key":"a"}')).toBeNull();
    expect(parseEntry(JSON.stringify({ ...entry(), input: -1 }))).toBeNull();
    expect(parseEntry('not json')).toBeNull();
    const continued = entry({ continuation: true });
    expect(parseEntry(JSON.stringify(continued))).toEqual(continued);
    expect(parseEntry(JSON.stringify({ ...entry(), continuation: false }))).toBeNull();
  });

  it("counts a continuation's tokens and cost, not as another request", async () => {
    const ledger = new MemoryUsageLedger();
    ledger.record(entry());
    ledger.record(entry({ continuation: true, input: 7, costUsd: 0.25 }));
    const [row] = await ledger.rows('2026-12-06', '2026-12-06');
    expect(row).toMatchObject({ requests: 1, input: 17, costUsd: 0.75 });
  });
});

describe('the usage file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'usage-ledger-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('appends JSON lines (0600) and replays them at open, reporting lines that are not entries', async () => {
    const path = join(dir, 'sub', 'usage.jsonl');
    const first = await FileUsageLedger.open(path, log());
    first.record(entry());
    await first.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toBe(`${JSON.stringify(entry())}\n`);
    writeFileSync(path, `${readFileSync(path, 'utf8')}{"cut\n\n${JSON.stringify(entry({ key: 'bob' }))}\n`);
    const logged = log();
    const second = await FileUsageLedger.open(path, logged);
    expect((await second.rows('2026-12-06', '2026-12-06')).map((r) => [r.key, r.requests])).toEqual([
      ['alice', 1],
      ['bob', 1],
    ]);
    expect(logged.lines[0]).toEqual({
      obj: { file: path, bad_lines: 1, first_bad_lines: [2] },
      msg: 'Usage file: lines that are not usage entries were skipped',
    });
    await second.close();
  });

  it('keeps each model name in the file, and sums replayed lines under their labels', async () => {
    const path = join(dir, 'usage.jsonl');
    const first = await FileUsageLedger.open(path, log(), new ModelLabels({ maxOthers: 1 }));
    for (const model of ['first', 'second', 'third']) first.record(entry({ model }));
    expect((await first.rows('2026-12-06', '2026-12-06')).map((r) => [r.model, r.requests])).toEqual([
      ['first', 1],
      ['other', 2],
    ]);
    await first.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines.map((line) => (JSON.parse(line) as UsageEntry).model)).toEqual(['first', 'second', 'third']);
    const second = await FileUsageLedger.open(path, log(), new ModelLabels({ maxOthers: 1 }));
    expect((await second.rows('2026-12-06', '2026-12-06')).map((r) => [r.model, r.requests])).toEqual([
      ['first', 1],
      ['other', 2],
    ]);
    await second.close();
  });

  it('ends a line a crash cut before appending: the next entry survives the next replay', async () => {
    const path = join(dir, 'usage.jsonl');
    writeFileSync(path, `${JSON.stringify(entry())}\n{"at":1796681343790,"key":"bud","labe`);
    const first = await FileUsageLedger.open(path, log());
    first.record(entry({ key: 'free' }));
    await first.close();
    const logged = log();
    const second = await FileUsageLedger.open(path, logged);
    expect((await second.rows('2026-12-06', '2026-12-06')).map((r) => [r.key, r.requests])).toEqual([
      ['alice', 1],
      ['free', 1],
    ]);
    expect(logged.lines[0]?.obj).toEqual({ file: path, bad_lines: 1, first_bad_lines: [2] });
    // A file that ends its last line gets no empty one.
    second.record(entry({ key: 'free' }));
    await second.close();
    expect(
      readFileSync(path, 'utf8')
        .split('\n')
        .filter((line) => line === ''),
    ).toHaveLength(1);
  });
});
