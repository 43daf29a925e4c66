/**
 * The key comparison must take the same time however much of a guess is right (README, Keys: compared in
 * constant time). Wall-clock thresholds would flake on a loaded machine, so this compares *distributions*:
 * many interleaved, randomly ordered samples of two candidates, judged by a rank statistic (the probability
 * that one candidate's sample is slower than the other's; 0.5 means indistinguishable) and by the ratio of
 * medians, both with generous bounds. Load hits both candidates alike, so it widens the noise but does not
 * bias the result. The same harness run on a deliberately leaky comparison shows the test can see a real
 * leak.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeySet } from '../../src/auth/keys.js';

const SAMPLES = 2_000;
/** Calls per sample: one call is too short for the clock; a batch is still far below a scheduler slice. */
const BATCH = 16;

/** A fresh flat string (never a slice or concatenation of another), so both candidates are stored alike. */
const flat = (text: string): string => Buffer.from(text, 'utf8').toString('utf8');

function randomKey(length: number): string {
  return randomBytes(length).toString('base64url').slice(0, length);
}

/** A key of the same length differing only in the last character. */
function sharingAllButLast(key: string): string {
  return flat(key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A'));
}

/** A key of the same length differing from the first character on. */
function sharingNothing(key: string): string {
  let other = randomKey(key.length);
  while (other[0] === key[0]) other = randomKey(key.length);
  return flat(other);
}

interface Comparison {
  /** P(sample of a > sample of b) + ½·P(equal): 0.5 when the two cannot be told apart. */
  probabilitySlower: number;
  medianRatio: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Mann–Whitney U as a probability, computed from mid-ranks of the pooled samples. */
function probabilitySlower(a: number[], b: number[]): number {
  const pooled = [...a.map((v) => ({ v, a: true })), ...b.map((v) => ({ v, a: false }))].sort(
    (x, y) => x.v - y.v,
  );
  let rankSumA = 0;
  for (let i = 0; i < pooled.length;) {
    let j = i;
    while (j < pooled.length && pooled[j]?.v === pooled[i]?.v) j++;
    const midRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (pooled[k]?.a) rankSumA += midRank;
    i = j;
  }
  const u = rankSumA - (a.length * (a.length + 1)) / 2;
  return u / (a.length * b.length);
}

function measure(compare: (candidate: string) => unknown, a: string, b: string): Comparison {
  const times: Record<'a' | 'b', number[]> = { a: [], b: [] };
  const once = (label: 'a' | 'b', candidate: string) => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) compare(candidate);
    times[label].push(Number(process.hrtime.bigint() - start));
  };
  for (let i = 0; i < 500; i++) compare(i % 2 ? a : b); // warm up the JIT on both
  for (let i = 0; i < SAMPLES; i++) {
    // Random order within each pair: neither candidate always runs with a warmer cache.
    if (Math.random() < 0.5) {
      once('a', a);
      once('b', b);
    } else {
      once('b', b);
      once('a', a);
    }
  }
  return {
    probabilitySlower: probabilitySlower(times.a, times.b),
    medianRatio: median(times.a) / median(times.b),
  };
}

function expectIndistinguishable(result: Comparison): void {
  expect(result.probabilitySlower).toBeGreaterThan(0.3);
  expect(result.probabilitySlower).toBeLessThan(0.7);
  expect(result.medianRatio).toBeGreaterThan(0.67);
  expect(result.medianRatio).toBeLessThan(1.5);
}

describe('KeySet.verify timing does not depend on how much of the key is right', () => {
  const key = flat(randomKey(64));

  it('a guess sharing all but the last character vs a guess sharing nothing', () => {
    const keys = new KeySet([{ name: 'only', key }]);
    expectIndistinguishable(measure((c) => keys.verify(c), sharingAllButLast(key), sharingNothing(key)));
  });

  it('the same with several configured keys (every entry is compared, no early exit)', () => {
    const keys = new KeySet([
      { name: 'a', key: randomKey(64) },
      { name: 'target', key },
      { name: 'b', key: randomKey(64) },
      { name: 'c', key: randomKey(64) },
    ]);
    expectIndistinguishable(measure((c) => keys.verify(c), sharingAllButLast(key), sharingNothing(key)));
  });

  it('the harness does detect a leaky comparison (so a pass above means something)', () => {
    const long = flat(randomKey(4096));
    // Character by character with an early exit: the classic timing leak.
    const leaky = (candidate: string) => {
      if (candidate.length !== long.length) return false;
      for (let i = 0; i < long.length; i++) if (candidate.charCodeAt(i) !== long.charCodeAt(i)) return false;
      return true;
    };
    const result = measure(leaky, sharingAllButLast(long), sharingNothing(long));
    expect(result.probabilitySlower).toBeGreaterThan(0.9);
  });
});
