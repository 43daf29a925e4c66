import { mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CaptureWriter, type CaptureDropInfo } from './writer.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'capture-writer-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fixedClock = () => new Date('2025-01-02T03:04:05.678Z');

async function readLines(path: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(path, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('CaptureWriter', () => {
  it('writes one JSON object a line, stamped with timestamp and increasing sequence', async () => {
    const path = join(dir, 'capture.jsonl');
    const writer = new CaptureWriter({ path, now: fixedClock });
    for (let i = 0; i < 50; i++)
      writer.write({ request_id: `r${i}`, direction: 'inbound_request', payload: { i } });
    await writer.close();

    const lines = await readLines(path);
    expect(lines).toHaveLength(50);
    lines.forEach((line, i) => {
      expect(line).toEqual({
        timestamp: '2025-01-02T03:04:05.678Z',
        sequence: i + 1,
        request_id: `r${i}`,
        direction: 'inbound_request',
        payload: { i },
      });
      expect(Object.keys(line).slice(0, 2)).toEqual(['timestamp', 'sequence']);
    });
    expect(writer.dropped).toBe(0);
  });

  it('keeps its own stamps over same-named event fields', async () => {
    const path = join(dir, 'c.jsonl');
    const writer = new CaptureWriter({ path, now: fixedClock });
    writer.write({ sequence: 99, timestamp: 'forged', x: 1 });
    await writer.close();
    expect(await readLines(path)).toEqual([{ timestamp: '2025-01-02T03:04:05.678Z', sequence: 1, x: 1 }]);
  });

  it('appends to an existing file', async () => {
    const path = join(dir, 'c.jsonl');
    await writeFile(path, '{"old":true}\n');
    const writer = new CaptureWriter({ path });
    writer.write({ new: true });
    await writer.close();
    expect((await readLines(path)).map((l) => Object.keys(l).pop())).toEqual(['old', 'new']);
  });

  it('keeps files within the size bound when lines hold characters beyond ASCII', async () => {
    const path = join(dir, 'u.jsonl');
    const writer = new CaptureWriter({ path, maxBytes: 600, maxFiles: 50, now: fixedClock });
    const total = 60;
    // Varying widths (1- to 4-byte characters) so that character counts and byte counts disagree.
    for (let n = 1; n <= total; n++) {
      writer.write({ n, text: ['ascii', 'é'.repeat(n % 9), '✓'.repeat(n % 5), '🦊'.repeat(n % 3)].join('') });
      if (n % 11 === 0) await writer.flush();
    }
    await writer.close();
    const files = (await readdir(dir)).filter((f) => f.startsWith('u.jsonl'));
    let seen = 0;
    for (const name of files) {
      expect(Buffer.byteLength(await readFile(join(dir, name)))).toBeLessThanOrEqual(600);
      seen += (await readLines(join(dir, name))).length;
    }
    expect(seen).toBe(total);
  });

  it('rotates by size into PATH.1..PATH.N, newest first, deleting the oldest', async () => {
    const path = join(dir, 'c.jsonl');
    const writer = new CaptureWriter({ path, maxBytes: 400, maxFiles: 3, now: fixedClock });
    const lineBytes =
      Buffer.byteLength(JSON.stringify({ timestamp: fixedClock().toISOString(), sequence: 10, n: 10 })) + 1;
    const perFile = Math.floor(400 / lineBytes);
    const total = perFile * 6 + 1;
    // Written in several turns so that rotation happens between and within batches.
    for (let n = 1; n <= total; n++) {
      writer.write({ n });
      if (n % 7 === 0) await writer.flush();
    }
    await writer.close();

    const files = (await readdir(dir)).sort();
    expect(files).toEqual(['c.jsonl', 'c.jsonl.1', 'c.jsonl.2', 'c.jsonl.3']);
    const numbers = async (name: string) => (await readLines(join(dir, name))).map((l) => l['n'] as number);
    const current = await numbers('c.jsonl');
    const first = await numbers('c.jsonl.1');
    const second = await numbers('c.jsonl.2');
    const third = await numbers('c.jsonl.3');
    // Newest in PATH, then PATH.1, …; each file within the size bound; nothing reordered.
    expect([...third, ...second, ...first, ...current]).toEqual(
      Array.from(
        { length: third.length + second.length + first.length + current.length },
        (_, i) => third[0]! + i,
      ),
    );
    expect(current.at(-1)).toBe(total);
    expect(third[0]).toBeGreaterThan(1); // the oldest entries went with the deleted file
    for (const name of files) {
      expect(Buffer.byteLength(await readFile(join(dir, name)))).toBeLessThanOrEqual(400);
    }
  });

  it('with maxFiles 0 starts the file afresh instead of keeping rotated copies', async () => {
    const path = join(dir, 'c.jsonl');
    const writer = new CaptureWriter({ path, maxBytes: 100, maxFiles: 0 });
    for (let n = 0; n < 20; n++) writer.write({ n });
    await writer.close();
    expect(await readdir(dir)).toEqual(['c.jsonl']);
    expect((await readLines(path)).at(-1)?.['n']).toBe(19);
  });

  it('writes lines of every size, before and after the queue ran empty, in order', async () => {
    const path = join(dir, 'c.jsonl');
    const writer = new CaptureWriter({ path });
    const sizes = [10, 300 * 1024, 10, 600 * 1024, 200 * 1024, 100 * 1024, 10];
    for (const [i, size] of sizes.entries()) {
      writer.write({ i, text: 'é'.repeat(size) });
      // Every other line once everything before it was written (the queue empty).
      if (i % 2 === 0) await writer.flush();
    }
    await writer.close();
    expect((await readLines(path)).map((l) => [l['i'], (l['text'] as string).length])).toEqual(
      sizes.map((size, i) => [i, size]),
    );
  });

  it('writes a line larger than maxBytes alone in its file', async () => {
    const path = join(dir, 'c.jsonl');
    const writer = new CaptureWriter({ path, maxBytes: 50, maxFiles: 2 });
    writer.write({ a: 1 });
    writer.write({ big: 'x'.repeat(200) });
    writer.write({ b: 2 });
    await writer.close();
    expect((await readLines(`${path}.2`)).map((l) => Object.keys(l)[2])).toEqual(['a']);
    expect((await readLines(`${path}.1`)).map((l) => Object.keys(l)[2])).toEqual(['big']);
    expect((await readLines(path)).map((l) => Object.keys(l)[2])).toEqual(['b']);
  });

  it('drops and counts entries beyond the queue bound instead of blocking', async () => {
    const path = join(dir, 'c.jsonl');
    const drops: CaptureDropInfo[] = [];
    const writer = new CaptureWriter({ path, maxQueueEntries: 10, onDrop: (info) => drops.push(info) });
    // All written in one synchronous turn: the background writer cannot have taken any yet.
    for (let n = 1; n <= 100; n++) writer.write({ n });
    expect(writer.dropped).toBe(90);
    expect(drops).toHaveLength(90);
    expect(drops[0]).toMatchObject({ reason: 'queue_full', entries: 1, totalDropped: 1 });
    expect(drops.at(-1)).toMatchObject({ totalDropped: 90 });
    await writer.close();
    // The kept entries are the first ten; sequence numbers show the gap left by the drops.
    expect((await readLines(path)).map((l) => l['sequence'])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('bounds the queue by size as well', () => {
    const writer = new CaptureWriter({ path: join(dir, 'c.jsonl'), maxQueueBytes: 1000 });
    for (let n = 0; n < 10; n++) writer.write({ blob: 'y'.repeat(250) }); // ~300 characters a line
    expect(writer.queued).toBe(3);
    expect(writer.dropped).toBe(7);
    return writer.close();
  });

  it('never throws: unserialisable events and writes after close are dropped and counted', async () => {
    const reasons: string[] = [];
    const writer = new CaptureWriter({
      path: join(dir, 'c.jsonl'),
      onDrop: (info) => reasons.push(info.reason),
    });
    expect(() => writer.write({ big: 10n })).not.toThrow();
    await writer.close();
    expect(() => writer.write({ late: true })).not.toThrow();
    expect(reasons).toEqual(['unserialisable', 'closed']);
    expect(writer.dropped).toBe(2);
  });

  it('drops entries it cannot write (unwritable path) without throwing', async () => {
    const reasons: string[] = [];
    const writer = new CaptureWriter({
      path: join(dir, 'missing-dir', 'c.jsonl'),
      onDrop: (info) => reasons.push(info.reason),
    });
    writer.write({ a: 1 });
    writer.write({ a: 2 });
    await writer.close();
    expect(writer.dropped).toBe(2);
    expect(reasons.every((r) => r === 'write_failed')).toBe(true);
  });

  it('flush waits for everything written so far; close flushes the rest', async () => {
    const path = join(dir, 'c.jsonl');
    const writer = new CaptureWriter({ path });
    writer.write({ a: 1 });
    await writer.flush();
    expect(await readLines(path)).toHaveLength(1);
    writer.write({ a: 2 });
    writer.write({ a: 3 });
    await writer.close();
    expect(await readLines(path)).toHaveLength(3);
    expect(writer.queued).toBe(0);
  });

  it('creates its files 0600 and never writes through a symbolic link at its path (the lines are dropped)', async () => {
    const path = join(dir, 'capture.jsonl');
    const writer = new CaptureWriter({ path, maxBytes: 200, maxFiles: 2, now: fixedClock });
    for (let i = 0; i < 5; i++) writer.write({ request_id: `r${i}`, payload: 'x'.repeat(100) });
    await writer.flush();
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(`${path}.1`)).mode & 0o777).toBe(0o600);
    await writer.close();

    const target = join(dir, 'elsewhere.txt');
    await writeFile(target, 'precious\n');
    const link = join(dir, 'linked.jsonl');
    await symlink(target, link);
    const drops: CaptureDropInfo[] = [];
    const linked = new CaptureWriter({ path: link, onDrop: (info) => drops.push(info) });
    linked.write({ request_id: 'r', payload: 'secret-ish' });
    await linked.close();
    expect(await readFile(target, 'utf8')).toBe('precious\n');
    expect(drops).toMatchObject([{ reason: 'write_failed', entries: 1, error: { code: 'ELOOP' } }]);
  });
});
