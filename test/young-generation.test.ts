import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { growthFactor } from '../src/cli/young-generation.js';

const MODULE = fileURLToPath(new URL('../dist/cli/young-generation.js', import.meta.url));

/**
 * Script source of `churn(rounds)`: allocates short- and longer-lived objects (as a busy proxy does), a
 * turn of the event loop each round, and returns the largest new space it saw, in MB.
 */
const CHURN = `
  import { capYoungGeneration, newSpaceSize } from ${JSON.stringify(MODULE)};
  const kept = [];
  async function churn(rounds) {
    let largest = 0;
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < 20000; i++) {
        const o = { a: i, b: 'x' + i, c: [i, i] };
        if (i % 40 === 0) kept.push(o);
      }
      if (kept.length > 30000) kept.splice(0, 15000);
      largest = Math.max(largest, newSpaceSize());
      await new Promise((resolve) => setImmediate(resolve));
    }
    return largest / 1048576;
  }
`;

/** Runs `script` (an ES module) in a fresh node process with `nodeFlags`; returns what it printed. */
function runScript(script: string, nodeFlags: string[] = []): string {
  return execFileSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', script], {
    env: { ...process.env, NODE_OPTIONS: '' },
    encoding: 'utf8',
  }).trim();
}

/** The largest new space, in MB, of a fresh process's churn. `cap` turns the in-process cap on (semi-space MB). */
function largestNewSpace(cap: number | null, nodeFlags: string[] = []): number {
  const script = `${CHURN}
    const stop = ${cap === null ? '() => {}' : `capYoungGeneration(${cap})`};
    const largest = await churn(300);
    stop();
    console.log(largest);
  `;
  return Number(runScript(script, nodeFlags));
}

describe('capYoungGeneration', () => {
  it('keeps the new space at twice the semi-space cap, where V8 alone grows it further', () => {
    expect(largestNewSpace(null)).toBeGreaterThan(8);
    expect(largestNewSpace(2)).toBeLessThanOrEqual(4);
  });

  it('holds the cap when a worker thread starts, whose heap set-up resets the growth factor', () => {
    // At the cap, a worker thread starts (as the capture's does); the churn goes on once it runs. Without
    // the cap set again as the worker came online, the new space doubled past it (V8 put its growth factor
    // back to 2 while setting up the worker's heap).
    const script = `${CHURN}
      import { Worker } from 'node:worker_threads';
      const stop = capYoungGeneration(2);
      const before = await churn(150);
      const worker = new Worker('setTimeout(() => {}, 60000)', { eval: true });
      await new Promise((resolve) => worker.once('online', resolve));
      const after = await churn(300);
      await worker.terminate();
      stop();
      console.log(JSON.stringify({ before, after }));
    `;
    const out = runScript(script);
    const { before, after } = JSON.parse(out) as { before: number; after: number };
    expect(before).toBe(4);
    expect(after).toBe(4);
  });

  it('leaves the young generation alone when the operator sized it with node flags', () => {
    expect(largestNewSpace(2, ['--max-semi-space-size=16'])).toBeGreaterThan(8);
  });
});

describe('growthFactor', () => {
  const MB = 1024 * 1024;

  it('doubles until the cap was first reached, then takes the new space back to the cap in one growth', () => {
    expect(growthFactor(false, false, 0.98 * MB, 8 * MB)).toBe(2);
    expect(growthFactor(true, false, 7.87 * MB, 8 * MB)).toBe(1);
    // After V8 shrank it to its least (1 MB semi-spaces) or to 2 or 4 MB: straight back to 8 MB.
    expect(growthFactor(false, true, 0.98 * MB, 8 * MB)).toBe(8);
    expect(growthFactor(false, true, 1.97 * MB, 8 * MB)).toBe(4);
    expect(growthFactor(false, true, 3.94 * MB, 8 * MB)).toBe(2);
    // An odd size with no whole multiple under the cap stays where it is rather than passing the cap.
    expect(growthFactor(false, true, 5 * MB, 8 * MB)).toBe(1);
    expect(growthFactor(false, true, 0, 8 * MB)).toBe(2);
  });
});

describe('capYoungGeneration after a quiet spell', () => {
  it('grows the semi-spaces V8 shrank straight back to the cap, with no size between', () => {
    // Churn until the cap (4 MB semi-spaces), stay quiet long enough for V8 to judge the allocation rate low
    // (it shrinks the new space at the next collection), then churn again; print each semi-space's size in
    // MB at every collection after the quiet spell.
    const script = `
      import v8 from 'node:v8';
      import { PerformanceObserver } from 'node:perf_hooks';
      import { capYoungGeneration } from ${JSON.stringify(MODULE)};
      const stop = capYoungGeneration(4);
      const sizes = [];
      const semi = () => {
        const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
        return Math.round((s.space_used_size + s.space_available_size) / 1048576);
      };
      const seen = new PerformanceObserver(() => sizes.push(semi()));
      seen.observe({ entryTypes: ['gc'] });
      const kept = [];
      async function churn(rounds) {
        for (let round = 0; round < rounds; round++) {
          for (let i = 0; i < 20000; i++) {
            const o = { a: i, b: 'x' + i, c: [i, i] };
            if (i % 20 === 0) kept.push(o);
          }
          if (kept.length > 30000) kept.splice(0, 15000);
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      await churn(300);
      const first = Math.max(...sizes);
      // Whether V8 judges 8 s quiet enough to shrink is its heuristic (a loaded machine may keep it from
      // shrinking): the quiet spell is tried again, up to three times, until it shrank.
      for (let attempt = 0; attempt < 3; attempt++) {
        sizes.length = 0;
        await new Promise((resolve) => setTimeout(resolve, 8000));
        await churn(300);
        if (Math.min(...sizes) < 4) break;
      }
      stop();
      seen.disconnect();
      console.log(JSON.stringify({ first, after: sizes }));
    `;
    const out = runScript(script);
    const { first, after } = JSON.parse(out) as { first: number; after: number[] };
    expect(first).toBe(4);
    // V8 shrank the semi-spaces after the quiet spell (the case this is about) …
    const least = Math.min(...after);
    expect(least).toBeLessThan(4);
    // … and they came back to the cap without stopping on the way (doubling went 1, 2, 4).
    expect(after.slice(after.indexOf(least)).every((size) => size === least || size === 4)).toBe(true);
    expect(after.at(-1)).toBe(4);
  }, 60_000);
});
