import { describe, expect, it } from 'vitest';
import { EXACT_CHARS, pieces, sampledCounter, textCounter } from './text-tokens.js';

describe('sampledCounter', () => {
  it('counts a short text exactly, once', () => {
    const seen: string[] = [];
    const count = sampledCounter((text) => {
      seen.push(text);
      return text.length;
    });
    expect(count('hello world')).toBe(11);
    expect(seen).toEqual(['hello world']);
  });

  it('counts a long text from samples of about EXACT_CHARS characters, scaled to its length', () => {
    let counted = 0;
    const count = sampledCounter((text) => {
      counted += text.length;
      return text.split('word').length - 1;
    });
    const text = 'word '.repeat(100_000);
    // One token a word: the scaled count is the number of words, give or take the windows' edges.
    expect(Math.abs(count(text) - 100_000)).toBeLessThan(1_000);
    expect(counted).toBeLessThanOrEqual(EXACT_CHARS);
  });
});

describe('pieces', () => {
  it('counts words, digit groups of three, line-break runs and other characters; spaces join', () => {
    expect(pieces('hello world')).toBe(2);
    expect(pieces('internationalisation')).toBe(1 + 3);
    expect(pieces('12345')).toBe(2);
    expect(pieces('a\n\n\nb')).toBe(3);
    expect(pieces('| 0.93× |')).toBe(6);
    expect(pieces('x2y', 1, 2)).toBe(1);
    expect(pieces('   ')).toBe(0);
  });

  it('scales a long text by pieces: a counter of pieces is extrapolated to the exact total', () => {
    const prose = 'the proxy holds the provider keys and streams answers back to the client. ';
    const table = '| 0.93× | 221 µs | 1,534 ms | 0.68× (474/310) |\n';
    // Prose and tables in long stretches, so that the evenly spaced windows land on them unevenly.
    const text = (prose.repeat(40) + table.repeat(60)).repeat(30);
    const count = sampledCounter((t) => pieces(t));
    expect(count(text)).toBe(pieces(text));
  });

  it('falls back to length when the windows hold no pieces', () => {
    const count = sampledCounter((t) => t.length);
    expect(count(' '.repeat(EXACT_CHARS * 4))).toBe(EXACT_CHARS * 4);
  });
});

describe('textCounter', () => {
  it('counts with the cl100k vocabulary, special-token markers as plain text', async () => {
    const count = await textCounter();
    expect(count('Hello, world!')).toBe(4);
    expect(count('<|endoftext|>')).toBeGreaterThan(1);
    expect(await textCounter()).toBe(count);
  });
});
