import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, nestedTooDeeply } from './json-depth.js';

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const objects = (depth: number) => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
const tooDeep = (text: string, max?: number) => nestedTooDeeply(text, JSON.parse(text), max);

describe('nestedTooDeeply', () => {
  it('allows MAX_JSON_DEPTH levels and refuses one more, for arrays, objects and a mix', () => {
    expect(tooDeep(nested(MAX_JSON_DEPTH))).toBe(false);
    expect(tooDeep(nested(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(JSON.parse(objects(3))).toEqual({ a: { a: {} } });
    expect(tooDeep(objects(MAX_JSON_DEPTH))).toBe(false);
    expect(tooDeep(objects(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(tooDeep('[{"a":'.repeat(70) + '1' + '}]'.repeat(70))).toBe(true);
    expect(tooDeep(nested(100_000))).toBe(true);
  });

  it('counts depth, not brackets: many shallow containers pass', () => {
    expect(tooDeep(JSON.stringify(Array.from({ length: 10_000 }, () => [{ a: [1] }])))).toBe(false);
  });

  it('is not fooled by brackets inside strings', () => {
    expect(
      tooDeep(JSON.stringify({ content: '['.repeat(10_000), other: 'say "[[[" and \\', more: '{{{' })),
    ).toBe(false);
    expect(tooDeep(JSON.stringify({ s: '"]]]]"', deep: JSON.parse(nested(200)) }))).toBe(true);
  });

  it('takes a lower limit, and skips text too short to be that deep', () => {
    expect(tooDeep(nested(3), 2)).toBe(true);
    expect(tooDeep(nested(2), 2)).toBe(false);
    expect(nestedTooDeeply('[[[', [[[]]], 3)).toBe(false);
  });
});
