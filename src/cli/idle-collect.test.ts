import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { collectWhenIdle, oldGenerationBytes } from './idle-collect.js';

const MB = 1024 * 1024;

/**
 * A heap whose readings the test sets — the heap in use, and the committed bytes of the old generation and of
 * the young one — and a record of what the collector did.
 */
function fakeHeap(used: number, old: number, looks = { checkMs: 1000, favourCheckMs: 1000 }) {
  const heap = { used, old, young: 2 * MB };
  const calls: string[] = [];
  const stop = collectWhenIdle({
    ...looks,
    heap: {
      used: () => heap.used,
      spaces: () => [
        { space_name: 'read_only_space', space_size: 0 },
        { space_name: 'new_space', space_size: heap.young },
        { space_name: 'old_space', space_size: heap.old - 2 * MB },
        { space_name: 'code_space', space_size: MB },
        { space_name: 'new_large_object_space', space_size: 0 },
        { space_name: 'large_object_space', space_size: MB },
        { space_name: 'code_large_object_space', space_size: 0 },
      ],
    },
    collect: () => {
      calls.push('collect');
      heap.used = 30 * MB;
      heap.old = 60 * MB;
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
    // Busy: the heap in use moves between looks; the old generation grows.
    heap.used = 60 * MB;
    heap.old = 100 * MB;
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
    heap.old = 100 * MB;
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

  it('leaves a quiet heap alone whose old generation has not grown by more than 16 MB', () => {
    vi.useFakeTimers();
    const { heap, calls, stop } = fakeHeap(25 * MB, 50 * MB);
    heap.old = 65 * MB;
    vi.advanceTimersByTime(5000);
    expect(calls).toEqual([]);
    stop();
  });

  it('does not collect when only the young generation regrew in a burst, and judges the old generation after it', () => {
    vi.useFakeTimers();
    const { heap, calls, stop } = fakeHeap(25 * MB, 50 * MB);
    // A burst after a gap: V8 grows the new space back from 2 to 16 MB, the old generation moves by 3 MB.
    heap.used = 40 * MB;
    heap.young = 16 * MB;
    heap.old = 53 * MB;
    vi.advanceTimersByTime(1000);
    // Quiet: the whole committed heap is 19 MB above its quiet size, the old generation 3 MB.
    vi.advanceTimersByTime(3000);
    expect(calls).toEqual([]);
    // The next burst leaves the old generation 20 MB above its quiet size: one collection once quiet.
    heap.used = 70 * MB;
    heap.old = 70 * MB;
    vi.advanceTimersByTime(1000);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(1000);
    expect(calls).toEqual(['favour memory', 'collect']);
    stop();
  });

  it('collects again after a second busy spell has grown the heap again', () => {
    vi.useFakeTimers();
    const { heap, calls, stop } = fakeHeap(25 * MB, 50 * MB);
    heap.old = 100 * MB;
    vi.advanceTimersByTime(1000);
    expect(calls).toEqual(['favour memory', 'collect']);
    // The collection left 60 MB of old generation; V8 then shrinks it to 35 MB while quiet.
    heap.old = 35 * MB;
    vi.advanceTimersByTime(1000);
    heap.used = 50 * MB;
    heap.old = 55 * MB;
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

  it('in a real process, leaves alone a burst that grew only the young generation', () => {
    const module = fileURLToPath(new URL('../../dist/cli/idle-collect.js', import.meta.url));
    // Objects that live a little while (a ring of 2,000, as a request's do) make V8 grow the new space to
    // its most (32 MB); hardly any reach the old generation. Then quiet, with the collector looking every
    // 100 ms: the whole committed heap is more than 16 MB above its start, the old generation is not.
    const script = `
      import v8 from 'node:v8';
      import { collectWhenIdle } from ${JSON.stringify(module)};
      const total = () => v8.getHeapStatistics().total_heap_size / 1048576;
      let collections = 0;
      collectWhenIdle({ checkMs: 100, collect: () => collections++, favourMemory: () => undefined });
      const start = total();
      const ring = new Array(2000);
      let k = 0;
      for (let round = 0; round < 300; round++) {
        for (let i = 0; i < 20000; i++) ring[k++ % ring.length] = { i, s: 'x'.repeat(10) + i };
        await new Promise((resolve) => setImmediate(resolve));
      }
      ring.fill(undefined);
      const grown = total() - start;
      await new Promise((resolve) => setTimeout(resolve, 1500));
      console.log(grown.toFixed(0), collections);
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, NODE_OPTIONS: '' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    const [grown, collections] = out.trim().split(' ').map(Number);
    expect(grown).toBeGreaterThan(16);
    expect(collections).toBe(0);
  }, 40_000);
});

describe('oldGenerationBytes', () => {
  it('counts every space of the heap but the young generation', () => {
    const spaces = [
      { space_name: 'read_only_space', space_size: 1 },
      { space_name: 'new_space', space_size: 1000 },
      { space_name: 'old_space', space_size: 20 },
      { space_name: 'code_space', space_size: 300 },
      { space_name: 'shared_space', space_size: 4000 },
      { space_name: 'new_large_object_space', space_size: 50_000 },
      { space_name: 'large_object_space', space_size: 600_000 },
      { space_name: 'code_large_object_space', space_size: 7_000_000 },
      { space_name: 'shared_large_object_space', space_size: 80_000_000 },
    ];
    expect(oldGenerationBytes(spaces)).toBe(87_604_321);
  });

  it("with this process's heap: its committed size less the new spaces", () => {
    const spaces = v8.getHeapSpaceStatistics();
    const young = spaces
      .filter((s) => s.space_name === 'new_space' || s.space_name === 'new_large_object_space')
      .reduce((sum, s) => sum + s.space_size, 0);
    const committed = spaces.reduce((sum, s) => sum + s.space_size, 0);
    expect(oldGenerationBytes(spaces)).toBe(committed - young);
    expect(oldGenerationBytes(spaces)).toBeGreaterThan(0);
  });
});
