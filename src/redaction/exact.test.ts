import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExactMatcher } from './exact.js';

/** The answer by brute force: at each position from `from`, the longest needle that starts there. */
function bruteFind(needles: readonly string[], text: string, from: number) {
  const longestFirst = [...needles].filter((n) => n !== '').sort((a, b) => b.length - a.length);
  for (let start = from; start < text.length; start++) {
    const needle = longestFirst.find((n) => text.startsWith(n, start));
    if (needle !== undefined) return { start, needle };
  }
  return null;
}

describe('ExactMatcher', () => {
  it('is undefined without a needle', () => {
    expect(ExactMatcher.of([])).toBeUndefined();
    expect(ExactMatcher.of(['', ''])).toBeUndefined();
  });

  it('finds the leftmost occurrence, and of those starting there the longest', () => {
    const matcher = ExactMatcher.of(['team-key', 'team-key-extended', 'key-ext'])!;
    expect(matcher.find('a team-key-extended b', 0)).toEqual({ start: 2, needle: 'team-key-extended' });
    expect(matcher.find('a team-key-extended b', 3)).toEqual({ start: 7, needle: 'key-ext' });
    expect(matcher.find('a team-key b', 0)).toEqual({ start: 2, needle: 'team-key' });
    expect(matcher.find('nothing here', 0)).toBeNull();
  });

  it('takes regular-expression characters literally', () => {
    const matcher = ExactMatcher.of(['a.b*c(d)', '[x]|y\\z'])!;
    expect(matcher.find('aXbbbcd', 0)).toBeNull();
    expect(matcher.find('.. a.b*c(d) [x]|y\\z', 0)).toEqual({ start: 3, needle: 'a.b*c(d)' });
    expect(matcher.replaceAll('.. a.b*c(d) [x]|y\\z', '#')).toBe('.. # #');
  });

  it('matches needles far longer than a regular expression literal may be', () => {
    const long = 'k'.repeat(100_000);
    const other = `${'k'.repeat(99_999)}x`;
    const matcher = ExactMatcher.of([long, other, 'short-one'])!;
    const text = `a ${long} b ${other} c short-one`;
    expect(matcher.replaceAll(text, '#')).toBe('a # b # c #');
    expect(matcher.longestAt(text, 2)).toBe(long);
    expect(matcher.longestAt(text, 3)).toBeUndefined();
  });

  it('answers longestAt, test and replaceAll consistently with find', () => {
    const matcher = ExactMatcher.of(['abcd', 'abcdef', 'cdef'])!;
    expect(matcher.longestAt('xxabcdefyy', 2)).toBe('abcdef');
    expect(matcher.longestAt('xxabcdyy', 2)).toBe('abcd');
    expect(matcher.longestAt('xxabcdyy', 1)).toBeUndefined();
    expect(matcher.test('..cdef..')).toBe(true);
    expect(matcher.test('..cde..')).toBe(false);
    const text = 'abcdefcdef';
    expect(matcher.replaceAll(text, '-')).toBe('--');
    expect(matcher.replaceAll('nothing', '-')).toBe('nothing');
  });

  it('agrees with a brute-force search on random needles and text', () => {
    const word = fc.string({
      unit: fc.constantFrom('a', 'b', 'c', '.', '\\', '"'),
      minLength: 1,
      maxLength: 20,
    });
    fc.assert(
      fc.property(
        fc.array(word, { minLength: 1, maxLength: 6 }),
        fc.array(fc.oneof(word, fc.constantFrom('a', 'b', 'x')), { maxLength: 30 }),
        fc.nat(40),
        (needles, parts, from) => {
          const matcher = ExactMatcher.of(needles)!;
          const text = parts.join('');
          const start = Math.min(from, text.length);
          expect(matcher.find(text, start)).toEqual(bruteFind(needles, text, start));
        },
      ),
      { numRuns: 1000 },
    );
  });
});
