import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../dist/cli/young-generation.js', import.meta.url));

/**
 * A fresh node process that churns through short- and longer-lived objects (as a busy proxy does) and
 * prints the largest new space it saw, in MB. `cap` turns the in-process cap on (semi-space MB).
 */
function largestNewSpace(cap: number | null, nodeFlags: string[] = []): number {
  const script = `
    import { capYoungGeneration, newSpaceSize } from ${JSON.stringify(MODULE)};
    const stop = ${cap === null ? '() => {}' : `capYoungGeneration(${cap})`};
    const kept = [];
    let largest = 0;
    for (let round = 0; round < 300; round++) {
      for (let i = 0; i < 20000; i++) {
        const o = { a: i, b: 'x' + i, c: [i, i] };
        if (i % 40 === 0) kept.push(o);
      }
      if (kept.length > 30000) kept.splice(0, 15000);
      largest = Math.max(largest, newSpaceSize());
      await new Promise((resolve) => setImmediate(resolve));
    }
    stop();
    console.log(largest / 1048576);
  `;
  const out = execFileSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', script], {
    env: { ...process.env, NODE_OPTIONS: '' },
    encoding: 'utf8',
  });
  return Number(out.trim());
}

describe('capYoungGeneration', () => {
  it('keeps the new space at twice the semi-space cap, where V8 alone grows it further', () => {
    expect(largestNewSpace(null)).toBeGreaterThan(8);
    expect(largestNewSpace(2)).toBeLessThanOrEqual(4);
  });

  it('leaves the young generation alone when the operator sized it with node flags', () => {
    expect(largestNewSpace(2, ['--max-semi-space-size=16'])).toBeGreaterThan(8);
  });
});
