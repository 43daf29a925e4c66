import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arrayTail } from './array-tail.js';

function tailOf(text: string, count: number) {
  const bytes = Buffer.from(`{"messages":${text}}`);
  return arrayTail(bytes, 12, bytes.length - 1, count);
}

describe('arrayTail', () => {
  it('parses the last elements only, and says when they are all', () => {
    const text = '[ {"a":"x]}\\"\\\\"}, [1,[2]] ,"s,t", 3, null ]';
    expect(tailOf(text, 2)).toEqual({ elements: [3, null], all: false });
    expect(tailOf(text, 4)).toEqual({ elements: [[1, [2]], 's,t', 3, null], all: false });
    expect(tailOf(text, 5)).toEqual({ elements: JSON.parse(text), all: true });
    expect(tailOf(text, 9)).toEqual({ elements: JSON.parse(text), all: true });
    expect(tailOf('[]', 3)).toEqual({ elements: [], all: true });
    expect(tailOf('"not an array"', 3)).toBeNull();
    expect(tailOf('{"a":1}', 3)).toBeNull();
  });

  it('agrees with JSON.parse on any array', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue(), { maxLength: 12 }),
        fc.integer({ min: 1, max: 14 }),
        (value, count) => {
          const text = JSON.stringify(value, null, count % 3 === 0 ? 1 : undefined);
          const tail = tailOf(text, count);
          const expected = JSON.parse(text) as unknown[];
          expect(tail).toEqual({
            elements: expected.slice(Math.max(0, expected.length - count)),
            all: expected.length <= count,
          });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('reads strings of quotes, backslashes and brackets backwards as JSON.parse does', () => {
    const tricky = fc.string({
      unit: fc.constantFrom('"', '\\', ',', '[', ']', '{', '}', ' ', 'a', 'é', 'x'.repeat(40)),
    });
    fc.assert(
      fc.property(
        fc.array(fc.oneof(tricky, fc.array(tricky, { maxLength: 3 }), fc.dictionary(tricky, tricky)), {
          maxLength: 8,
        }),
        fc.integer({ min: 1, max: 9 }),
        (value, count) => {
          const text = JSON.stringify(value);
          const expected = JSON.parse(text) as unknown[];
          expect(tailOf(text, count)).toEqual({
            elements: expected.slice(Math.max(0, expected.length - count)),
            all: expected.length <= count,
          });
        },
      ),
      { numRuns: 500 },
    );
  });
});
