import { describe, expect, it } from 'vitest';
import { EXACT_CHARS, sampledCounter, textCounter } from './text-tokens.js';

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

describe('textCounter', () => {
  it('counts with the cl100k vocabulary, special-token markers as plain text', async () => {
    const count = await textCounter();
    expect(count('Hello, world!')).toBe(4);
    expect(count('<|endoftext|>')).toBeGreaterThan(1);
    expect(await textCounter()).toBe(count);
  });
});
