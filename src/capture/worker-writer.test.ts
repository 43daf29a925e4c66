import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Redactor } from '../redaction/redactor.js';
import { CaptureRecorder, type CaptureSink } from './events.js';
import { operatorSetMinSemiSpace, WorkerCaptureWriter } from './worker-writer.js';
import type { CaptureDropInfo } from './writer.js';

const OLD_KEY = 'canary-old-proxy-key-0001';
const NEW_KEY = 'canary-new-proxy-key-0002';

let dir: string;
const writers: WorkerCaptureWriter[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'capture-worker-'));
});
afterEach(async () => {
  await Promise.all(writers.splice(0).map((w) => w.close()));
  await rm(dir, { recursive: true, force: true });
});

function open(options: Partial<ConstructorParameters<typeof WorkerCaptureWriter>[0]> = {}) {
  const drops: CaptureDropInfo[] = [];
  const writer = new WorkerCaptureWriter({
    path: join(dir, 'wire.jsonl'),
    now: () => new Date('2025-01-02T03:04:05.678Z'),
    onDrop: (info) => drops.push(info),
    ...options,
  });
  writers.push(writer);
  return { writer, drops };
}

async function lines(file = 'wire.jsonl'): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(dir, file), 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('WorkerCaptureWriter', () => {
  it('stamps events here and has the worker redact and write them, in order', async () => {
    const { writer, drops } = open();
    const redactor = new Redactor([OLD_KEY]);
    for (let i = 0; i < 300; i++) {
      writer.writeEvent(
        [`"n":${i}`, `,"payload":"key ${OLD_KEY} and sk-proj-Abcdefgh12345678XYZ"`],
        redactor,
      );
    }
    writer.writeEvent([], redactor);
    await writer.close();

    const written = await lines();
    expect(written).toHaveLength(301);
    written.slice(0, 300).forEach((line, i) => {
      expect(line).toEqual({
        timestamp: '2025-01-02T03:04:05.678Z',
        sequence: i + 1,
        n: i,
        payload: 'key **** and sk-proj-****',
      });
    });
    expect(written[300]).toEqual({ timestamp: '2025-01-02T03:04:05.678Z', sequence: 301 });
    expect(drops).toEqual([]);
    expect(writer.dropped).toBe(0);
    expect(writer.queued).toBe(0);
  });

  it('redacts each event with the secrets of the redactor it was recorded under', async () => {
    const { writer } = open();
    const before = new Redactor([OLD_KEY]);
    const after = new Redactor([NEW_KEY]);
    const payload = `,"payload":"${OLD_KEY} ${NEW_KEY}"`;
    writer.writeEvent(['"at":"before"', payload], before);
    writer.writeEvent(['"at":"after"', payload], after);
    writer.writeEvent(['"at":"before again"', payload], before);
    await writer.flush();
    expect((await lines()).map((l) => [l['at'], l['payload']])).toEqual([
      ['before', `**** ${NEW_KEY}`],
      ['after', `${OLD_KEY} ****`],
      ['before again', `**** ${NEW_KEY}`],
    ]);
  });

  it('turns bodies given as bytes into JSON in the worker, redacted there', async () => {
    const { writer } = open();
    const redactor = new Redactor([OLD_KEY]);
    const body = Buffer.from(`{"messages":[{"content":"${OLD_KEY} ü"}]}`);
    const answer = Buffer.from(`{"text":"answer with ${OLD_KEY}"}`);
    writer.writeEvent(['"payload":', { utf8: body, as: 'json' }], redactor);
    writer.writeEvent(['"payload":', { utf8: answer, as: 'string' }, ',"metadata":{"status":200}'], redactor);
    await writer.flush();
    const written = await lines();
    expect(written[0]?.['payload']).toEqual({ messages: [{ content: '**** ü' }] });
    expect(written[1]).toMatchObject({ payload: '{"text":"answer with ****"}', metadata: { status: 200 } });
    expect(await readFile(join(dir, 'wire.jsonl'), 'utf8')).not.toContain(OLD_KEY);
  });

  it('writes text beyond ASCII and a line larger than its buffer intact', async () => {
    const { writer } = open();
    const redactor = new Redactor();
    const big = 'ü€😀'.repeat(300_000); // ~2.7 MB of UTF-8 in one line
    writer.writeEvent(['"small":"Grüße 😀"'], redactor);
    writer.writeEvent([`"big":${JSON.stringify(big)}`], redactor);
    writer.writeEvent(['"after":"ok"'], redactor);
    await writer.flush();
    const written = await lines();
    expect(written.map((l) => l['sequence'])).toEqual([1, 2, 3]);
    expect(written[0]?.['small']).toBe('Grüße 😀');
    expect(written[1]?.['big']).toBe(big);
    expect(written[2]?.['after']).toBe('ok');
  });

  it('drops and counts what is over its bound, keeping the dropped sequence numbers', async () => {
    const { writer, drops } = open({ maxQueueEntries: 5 });
    const redactor = new Redactor();
    for (let i = 0; i < 8; i++) writer.writeEvent([`"n":${i}`], redactor);
    expect(writer.dropped).toBe(3);
    expect(drops.map((d) => d.reason)).toEqual(['queue_full', 'queue_full', 'queue_full']);
    await writer.flush();
    // Written entries leave the bound: recording goes on.
    writer.writeEvent(['"n":8'], redactor);
    await writer.close();
    expect((await lines()).map((l) => [l['sequence'], l['n']])).toEqual([
      [1, 0],
      [2, 1],
      [3, 2],
      [4, 3],
      [5, 4],
      [9, 8],
    ]);
  });

  it('settles each batch once written, its buffer back: the bound is released batch after batch', async () => {
    const { writer, drops } = open({ maxQueueBytes: 2_500_000 });
    const redactor = new Redactor([OLD_KEY]);
    const pad = 'x'.repeat(100_000);
    for (let round = 0; round < 4; round++) {
      // ~1 MB a round: a buffer filled and sent, the rest sent by flush.
      for (let i = 0; i < 10; i++)
        writer.writeEvent([`"n":${round * 10 + i},"pad":"${pad} ${OLD_KEY}"`], redactor);
      await writer.flush();
      expect(writer.queued).toBe(0);
    }
    await writer.close();
    expect(drops).toEqual([]);
    const written = await lines();
    expect(written.map((l) => l['n'])).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(written.every((l) => l['pad'] === `${pad} ****`)).toBe(true);
  });

  it('tells when its worker runs, and when it could not start', async () => {
    const { writer } = open();
    await writer.online;
    const redactor = new Redactor();
    writer.writeEvent(['"n":1'], redactor);
    await writer.close();
    expect((await lines()).map((l) => l['n'])).toEqual([1]);
    // A worker that ends before it runs (here: terminated at once) settles it too: start-up never hangs.
    const gone = open({ path: join(dir, 'gone.jsonl') }).writer;
    void (gone as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await gone.online;
  });

  it('reports writes the worker could not do as drops, and never throws', async () => {
    const path = join(dir, 'a-directory');
    await mkdir(path);
    const { writer, drops } = open({ path });
    const redactor = new Redactor();
    for (let i = 0; i < 4; i++) writer.writeEvent([`"n":${i}`], redactor);
    await writer.flush();
    expect(writer.dropped).toBe(4);
    expect(drops.every((d) => d.reason === 'write_failed')).toBe(true);
    expect(drops.reduce((sum, d) => sum + d.entries, 0)).toBe(4);
    expect(writer.queued).toBe(0);
  });

  it('rotates the file in the worker', async () => {
    const { writer } = open({ maxBytes: 1000, maxFiles: 2 });
    const redactor = new Redactor();
    for (let i = 0; i < 60; i++) writer.writeEvent([`"n":${i}`, `,"pad":"${'x'.repeat(80)}"`], redactor);
    await writer.close();
    expect((await readdir(dir)).sort()).toEqual(['wire.jsonl', 'wire.jsonl.1', 'wire.jsonl.2']);
    const newest = await lines();
    expect(newest.at(-1)?.['n']).toBe(59);
  });

  it('drops what comes after close, and closes once', async () => {
    const { writer, drops } = open();
    const redactor = new Redactor();
    writer.writeEvent(['"n":1'], redactor);
    await Promise.all([writer.close(), writer.close()]);
    writer.writeEvent(['"n":2'], redactor);
    await writer.flush();
    expect(drops.map((d) => d.reason)).toEqual(['closed']);
    expect((await lines()).map((l) => l['n'])).toEqual([1]);
  });

  /**
   * The same streams recorded twice: by the worker's redaction of each stream (the writer's openStream),
   * and by the redaction in this thread that came before it (a sink without openStream, which hands the
   * writer each chunk's text redacted already). The files must be the same, byte for byte.
   */
  it("redacts a stream's text in the worker into the same bytes as in this thread", async () => {
    const secrets = [PROXY_KEY_IN_STREAM, 'canary-short-0007'];
    const texts = [
      // Configured secrets, key formats and a bearer token, each cut across chunks somewhere.
      `data: {"c":"use ${PROXY_KEY_IN_STREAM} now"}\n\ndata: {"c":"sk-proj-Abcdefgh12345678XYZ and Bearer tok_0123456789abcdef"}\n\n`,
      `data: {"c":"escaped \\"${PROXY_KEY_IN_STREAM}\\" ü 😀 canary-short-0007"}\n\n`.repeat(3),
      `data: {"c":"a long run sk-${'k'.repeat(300)} then ?key=AIzaSyCanary012345678901234567890123&alt=sse"}\n\n`,
    ];
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const plans = texts.flatMap((text) =>
      Array.from({ length: 12 }, () => {
        const cuts = new Set<number>();
        for (let i = 0, n = 1 + random(8); i < n; i++) cuts.add(1 + random(text.length - 1));
        const points = [0, ...[...cuts].sort((a, b) => a - b), text.length];
        return points.slice(1).map((end, i) => text.slice(points[i], end));
      }),
    );
    const record = async (file: string, inWorker: boolean): Promise<string> => {
      const { writer } = open({ path: join(dir, file) });
      const sink: CaptureSink = inWorker ? writer : { writeEvent: (m, r) => writer.writeEvent(m, r) };
      let redactor = new Redactor(secrets);
      const recorder = new CaptureRecorder(() => redactor, sink);
      plans.forEach((chunks, i) => {
        const events = recorder.forRequest({ request_id: `req-${i}`, backend: 'openai' });
        if (i % 3 === 0) {
          const legs = events.openPassThrough({ status: 200 });
          // Every fifth stream whole in one piece, as the stream's end (the worker redacts it as one text).
          if (i % 5 === 0) legs.end({}, null, chunks.join(''), chunks.length);
          else {
            for (const chunk of chunks) legs.chunk(chunk, 2);
            legs.end({}, i % 2 === 0 ? `data: {"error":"${PROXY_KEY_IN_STREAM}"}\n\n` : null);
          }
        } else if (i % 4 === 1) {
          // Both legs whole in one piece each (a short answer whose chunks came together).
          const inbound = events.openStream('inbound', { status: 200 });
          const outbound = events.openStream('outbound', { status: 200 });
          inbound.end({}, chunks.join(''), chunks.length);
          outbound.end({}, chunks.join('').replaceAll('data:', 'event: x\ndata:'), chunks.length);
        } else {
          const inbound = events.openStream('inbound', { status: 200 });
          const outbound = events.openStream('outbound', { status: 200 });
          chunks.forEach((chunk, k) => {
            inbound.chunk(chunk);
            outbound.chunk(chunk.replaceAll('data:', 'event: x\ndata:'));
            // A key rotated while the streams run: their text keeps the redactor they opened with.
            if (k === 1) redactor = new Redactor(i % 2 === 0 ? secrets : [...secrets, 'canary-rotated-0009']);
            events.record('inbound_response', {
              payload: `between ${PROXY_KEY_IN_STREAM} canary-rotated-0009`,
            });
          });
          inbound.end({}, 'data: [DONE]\n\n', 1);
          outbound.end({ error: 'x' });
        }
      });
      await writer.close();
      return readFile(join(dir, file), 'utf8');
    };
    const inThread = await record('in-thread.jsonl', false);
    const inWorker = await record('in-worker.jsonl', true);
    expect(inWorker).toBe(inThread);
    expect(inWorker.split('\n').length).toBeGreaterThan(plans.length * 4);
    for (const secret of [PROXY_KEY_IN_STREAM, 'Abcdefgh12345678XYZ', 'tok_0123456789abcdef', 'kkkkkkkk']) {
      expect(inWorker).not.toContain(secret);
    }
  });

  it("drops a stream's text after a gap, and no part of a secret cut by it", async () => {
    const { writer, drops } = open({ maxQueueEntries: 3 });
    const recorder = new CaptureRecorder(() => new Redactor([PROXY_KEY_IN_STREAM]), writer);
    const events = recorder.forRequest({ request_id: 'req-gap' });
    const leg = events.openStream('inbound', { status: 200 });
    const [head, middle, tail] = [
      PROXY_KEY_IN_STREAM.slice(0, 8),
      PROXY_KEY_IN_STREAM.slice(8, 16),
      PROXY_KEY_IN_STREAM.slice(16),
    ];
    leg.chunk(`data: {"c":"${'x'.repeat(200)} ${head}`);
    events.record('inbound_response', { payload: 'filler' });
    // The bound is full (stream_start, the first chunk, the filler): this chunk is dropped, a gap.
    leg.chunk(middle);
    await writer.flush();
    leg.chunk(`${tail} and more text after the gap"}\n\n`);
    leg.end({});
    events.record('outbound_response', { payload: 'after' });
    await writer.close();
    const text = await readFile(join(dir, 'wire.jsonl'), 'utf8');
    const written = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(written.map((l) => [l['sequence'], l['direction']])).toEqual([
      [1, 'stream_start'],
      [2, 'stream_chunk'],
      [3, 'inbound_response'],
      // 4: the dropped chunk; 5: the text after the gap, dropped too.
      [6, 'stream_end'],
      [7, 'outbound_response'],
    ]);
    // What was released before the gap: the text up to the part held back, which held the secret's start.
    expect(written[1]?.['payload']).toMatch(/^data: \{"c":"x{100,}$/);
    for (const part of [head, middle, tail, 'after the gap']) expect(text).not.toContain(part);
    expect(drops.map((d) => [d.reason, d.entries])).toEqual([
      ['queue_full', 1],
      ['queue_full', 1],
    ]);
  });
});

const PROXY_KEY_IN_STREAM = 'canary-stream-key-0123456789';

describe('operatorSetMinSemiSpace', () => {
  it("tells when the operator set the worker's semi-space floor themselves, in either spelling", () => {
    expect(operatorSetMinSemiSpace([], undefined)).toBe(false);
    expect(operatorSetMinSemiSpace(['--max-semi-space-size=8'], '--max-old-space-size=512')).toBe(false);
    expect(operatorSetMinSemiSpace(['--min-semi-space-size=4'], undefined)).toBe(true);
    expect(operatorSetMinSemiSpace([], '--trace-gc --min_semi_space_size=2')).toBe(true);
    expect(operatorSetMinSemiSpace(['--min-semi-space-size', '4'], '')).toBe(true);
  });
});
