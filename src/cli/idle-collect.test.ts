import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { collectWhenIdle } from './idle-collect.js';

const MB = 1024 * 1024;

/** A heap whose readings the test sets, and a record of what the collector did. */
function fakeHeap(used: number, total: number, looks = { checkMs: 1000, favourCheckMs: 1000 }) {
  const heap = { used, total };
  const calls: string[] = [];
  const stop = collectWhenIdle({
    ...looks,
    heap: { used: () => heap.used, total: () => heap.total },
    collect: () => {
      calls.push('collect');
      heap.used = 30 * MB;
      heap.total = 60 * MB;
    },
    favourMemory: (on) => calls.push(on ? 'favour memory' : 'favour speed'),
  });
  return { heap, calls, stop };
}

describe('collectWhenIdle', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('collects once when the heap stops changing after it grew, and favours memory until traffic returns', () => {
    vi.useFakeTimers();
    const { heap, calls, stop } = fakeHeap(25 * MB, 50 * MB);
    // Busy: the heap in use moves between looks; the committed heap grows.
    heap.used = 60 * MB;
    heap.total = 100 * MB;
    vi.advanceTimersByTime(1000);
    heap.used = 80 * MB;
    vi.advanceTimersByTime(1000);
    expect(calls).toEqual([]);
    // Quiet, and 50 MB above the quiet size: one collection.
    vi.advanceTimersByTime(1000);
    expect(calls).toEqual(['favour memory', 'collect']);
    // Still quiet: nothing more.
    vi.advanceTimersByTime(3000);
    expect(calls).toEqual(['favour memory', 'collect']);
    // Traffic again: back to speed, once.
    heap.used = 45 * MB;
    vi.advanceTimersByTime(1000);
    heap.used = 70 * MB;
    vi.advanceTimersByTime(1000);
    expect(calls).toEqual(['favour memory', 'collect', 'favour speed']);
    stop();
  });

  it('turns back to speed at the first quick look that sees traffic, not at the next slow one', () => {
    vi.useFakeTimers();
    const { heap, calls, stop } = fakeHeap(25 * MB, 50 * MB, { checkMs: 10_000, favourCheckMs: 1000 });
    heap.total = 100 * MB;
    vi.advanceTimersByTime(10_000);
    expect(calls).toEqual(['favour memory', 'collect']);
    // Quiet quick looks change nothing.
    vi.advanceTimersByTime(3000);
    expect(calls).toEqual(['favour memory', 'collect']);
    // Traffic: the next quick look (within 1 s, the slow look 6 s away) turns V8 back to speed, once.
    heap.used = 40 * MB;
    vi.advanceTimersByTime(1000);
    expect(calls).toEqual(['favour memory', 'collect', 'favour speed']);
    heap.used = 70 * MB;
    vi.advanceTimersByTime(10_000);
    expect(calls).toEqual(['favour memory', 'collect', 'favour speed']);
    stop();
  });

  it('leaves a quiet heap alone that has not grown by more than 16 MB', () => {
    vi.useFakeTimers();
    const { heap, calls, stop } = fakeHeap(25 * MB, 50 * MB);
    heap.total = 65 * MB;
    vi.advanceTimersByTime(5000);
    expect(calls).toEqual([]);
    stop();
  });

  it('collects again after a second busy spell has grown the heap again', () => {
    vi.useFakeTimers();
    const { heap, calls, stop } = fakeHeap(25 * MB, 50 * MB);
    heap.total = 100 * MB;
    vi.advanceTimersByTime(1000);
    expect(calls).toEqual(['favour memory', 'collect']);
    // The collection left 60 MB committed; V8 then shrinks it to 35 MB while quiet.
    heap.total = 35 * MB;
    vi.advanceTimersByTime(1000);
    heap.used = 50 * MB;
    heap.total = 55 * MB;
    vi.advanceTimersByTime(1000);
    // Quiet again at 55 MB: 20 MB above the 35 it had shrunk to.
    vi.advanceTimersByTime(1000);
    expect(calls).toEqual(['favour memory', 'collect', 'favour speed', 'favour memory', 'collect']);
    stop();
  });

  it('in a real process, gives the heap back once garbage stops being made (V8 gc and memory reducer)', () => {
    const module = fileURLToPath(new URL('../../dist/cli/idle-collect.js', import.meta.url));
    // 40 MB of objects that survive long enough to reach the old generation, then are dropped; the process
    // then only does what an idle proxy does (a timer allocating a little). Prints the committed heap when
    // the objects are dropped and once it is below 24 MB (V8's memory reducer starts 8 s after a collection).
    const script = `
      import v8 from 'node:v8';
      import { collectWhenIdle } from ${JSON.stringify(module)};
      const total = () => v8.getHeapStatistics().total_heap_size / 1048576;
      collectWhenIdle({ checkMs: 100 });
      let kept = [];
      for (let i = 0; i < 400000; i++) kept.push({ i, s: 'x'.repeat(20) + i });
      await new Promise((resolve) => setTimeout(resolve, 50));
      kept = null;
      console.log(total().toFixed(0));
      const ticking = setInterval(() => Array.from({ length: 100 }, (_, i) => ({ i })), 20);
      while (total() >= 24) await new Promise((resolve) => setTimeout(resolve, 100));
      clearInterval(ticking);
      console.log(total().toFixed(0));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, NODE_OPTIONS: '' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    const [before, after] = out.trim().split('\n').map(Number);
    expect(before).toBeGreaterThan(40);
    expect(after).toBeLessThan(24);
  }, 40_000);
});
