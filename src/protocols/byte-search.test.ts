import { describe, expect, it } from 'vitest';
import { BytePattern } from './byte-search.js';

describe('BytePattern', () => {
  it('finds what Buffer.indexOf finds, from any start and up to any end (fuzz)', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = Buffer.from('"error":{}, usage\\n\n');
    const some = (length: number) =>
      Buffer.from(Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]!));
    for (let round = 0; round < 2000; round++) {
      const needle = some(1 + Math.floor(random() * 8)).toString('latin1');
      const pattern = new BytePattern(needle);
      const hay = some(Math.floor(random() * 200));
      const from = Math.floor(random() * (hay.length + 2));
      const to = Math.floor(random() * (hay.length + 2));
      const window = hay.subarray(0, to);
      const expected = from > window.length ? -1 : window.indexOf(Buffer.from(needle, 'latin1'), from);
      expect(pattern.indexIn(hay, from, to), `${needle} in ${hay.toString('latin1')} [${from}, ${to})`).toBe(
        expected,
      );
    }
  });

  it('finds a needle at the very start and the very end, and not one cut by the end', () => {
    const pattern = new BytePattern('"error"');
    expect(pattern.indexIn(Buffer.from('"error": 1'))).toBe(0);
    expect(pattern.indexIn(Buffer.from('{"x":"error"'))).toBe(5);
    expect(pattern.indexIn(Buffer.from('{"x":"error"'), 0, 11)).toBe(-1);
    expect(pattern.isIn(new Uint8Array(Buffer.from('a"error"b')))).toBe(true);
    expect(pattern.isIn(Buffer.from('"errors"'))).toBe(false);
  });

  it('takes 1 to 255 bytes', () => {
    expect(() => new BytePattern('')).toThrow(RangeError);
    expect(() => new BytePattern('x'.repeat(256))).toThrow(RangeError);
    expect(new BytePattern('x'.repeat(255)).length).toBe(255);
  });
});
