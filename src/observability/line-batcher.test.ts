import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LineBatcher } from './line-batcher.js';

class RecordingTarget {
  writes: string[] = [];
  syncFlushes = 0;
  write(text: string): boolean {
    this.writes.push(text);
    return true;
  }
  flushSync(): void {
    this.syncFlushes++;
  }
}

const line = (n: number) => `{"n":${n}}\n`;

describe('LineBatcher', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('hands lines over in one write once a batch is full, in order', () => {
    const target = new RecordingTarget();
    const batcher = new LineBatcher(target, { maxBytes: 40, maxDelayMs: 1_000 });
    for (let n = 0; n < 5; n++) batcher.write(line(n));
    expect(target.writes).toEqual([line(0) + line(1) + line(2) + line(3) + line(4)]);
    batcher.write(line(5));
    expect(target.writes).toHaveLength(1);
    batcher.flush();
    expect(target.writes).toEqual([line(0) + line(1) + line(2) + line(3) + line(4), line(5)]);
  });

  it('writes a lone line once the delay has passed, and only once', () => {
    vi.useFakeTimers();
    const target = new RecordingTarget();
    const batcher = new LineBatcher(target, { maxBytes: 1_024, maxDelayMs: 25 });
    batcher.write(line(1));
    batcher.write(line(2));
    vi.advanceTimersByTime(24);
    expect(target.writes).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(target.writes).toEqual([line(1) + line(2)]);
    vi.advanceTimersByTime(1_000);
    expect(target.writes).toHaveLength(1);
  });

  it('a full batch cancels the pending delay: nothing is written twice or empty', () => {
    vi.useFakeTimers();
    const target = new RecordingTarget();
    const batcher = new LineBatcher(target, { maxBytes: 20, maxDelayMs: 25 });
    batcher.write(line(1));
    batcher.write(line(2));
    batcher.write(line(3));
    vi.advanceTimersByTime(100);
    expect(target.writes).toEqual([line(1) + line(2) + line(3)]);
  });

  it('flushSync hands over what is pending and has the destination write it out', () => {
    const target = new RecordingTarget();
    const batcher = new LineBatcher(target, { maxBytes: 1_024, maxDelayMs: 1_000 });
    batcher.write(line(7));
    batcher.flushSync();
    expect(target.writes).toEqual([line(7)]);
    expect(target.syncFlushes).toBe(1);
  });

  it('writes pending lines when the process exits, process.exit() included', () => {
    // The built module (the test script runs in a plain node, as the proxy does): `npm test` builds first.
    const module = fileURLToPath(new URL('../../dist/observability/line-batcher.js', import.meta.url));
    const script = `
      import { LineBatcher } from ${JSON.stringify(module)};
      const out = { write: (text) => process.stdout.write(text), flushSync() {} };
      const batcher = new LineBatcher(out, { maxBytes: 1 << 20, maxDelayMs: 60_000 });
      batcher.write('first\\n');
      batcher.write('second\\n');
      process.exit(3);
    `;
    let stdout = '';
    try {
      execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
      });
    } catch (err) {
      const failure = err as { status: number; stdout: string };
      expect(failure.status).toBe(3);
      stdout = failure.stdout;
    }
    expect(stdout).toBe('first\nsecond\n');
  });
});
