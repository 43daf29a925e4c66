import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_OUTPUT_TOKENS, maxOutputTokens, periodOf } from './spend.js';

describe('budget periods (UTC)', () => {
  const at = Date.UTC(2026, 11, 6, 13, 30); // a Sunday
  it('day, ISO week (Monday first), month and total', () => {
    expect(periodOf('day', at)).toEqual({ start: Date.UTC(2026, 11, 6), end: Date.UTC(2026, 11, 7) });
    expect(periodOf('week', at)).toEqual({ start: Date.UTC(2026, 10, 30), end: Date.UTC(2026, 11, 7) });
    expect(periodOf('month', at)).toEqual({ start: Date.UTC(2026, 11, 1), end: Date.UTC(2027, 0, 1) });
    expect(periodOf('total', at)).toEqual({ start: 0, end: 8.64e15 });
  });
});

describe("a request's output limit", () => {
  it('is read where each protocol puts it, with a default when absent', () => {
    expect(maxOutputTokens('openai', { max_completion_tokens: 5, max_tokens: 9 })).toBe(5);
    expect(maxOutputTokens('openai', { max_tokens: 9 })).toBe(9);
    expect(maxOutputTokens('anthropic', { max_tokens: 7 })).toBe(7);
    expect(maxOutputTokens('responses', { max_output_tokens: 3 })).toBe(3);
    expect(maxOutputTokens('gemini', { generationConfig: { maxOutputTokens: 11 } })).toBe(11);
    expect(maxOutputTokens('gemini', {})).toBe(DEFAULT_MAX_OUTPUT_TOKENS);
  });
});
