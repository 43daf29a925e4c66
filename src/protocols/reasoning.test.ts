import { describe, expect, it } from 'vitest';
import {
  effortForBudget,
  effortFromWire,
  REASONING_TABLE,
  reasoningBudget,
  reasoningEffort,
  reasoningWord,
} from './reasoning.js';

describe('the reasoning table', () => {
  it('is ordered by budget, one row per level', () => {
    const budgets = REASONING_TABLE.map((r) => r.budget);
    expect(budgets).toEqual([...budgets].sort((a, b) => a - b));
    expect(new Set(REASONING_TABLE.map((r) => r.effort)).size).toBe(REASONING_TABLE.length);
  });

  it.each([
    ['openai', 'minimal', 'minimal'],
    ['openai', 'xhigh', 'max'],
    ['responses', 'medium', 'medium'],
    ['responses', 'xhigh', 'max'],
    ['anthropic', 'low', 'low'],
    ['anthropic', 'max', 'max'],
    ['gemini', 'HIGH', 'high'],
    ['gemini', 'minimal', 'minimal'],
  ] as const)('reads %s %s as the level %s', (column, word, effort) => {
    expect(effortFromWire(column, word)).toBe(effort);
  });

  it('knows no level for a word outside the table', () => {
    expect(effortFromWire('openai', 'max')).toBeUndefined();
    expect(effortFromWire('anthropic', 'xhigh')).toBeUndefined();
    expect(effortFromWire('responses', 'none')).toBeUndefined();
  });

  it.each([
    [1, 'minimal'],
    [1024, 'minimal'],
    [1025, 'low'],
    [8192, 'medium'],
    [24576, 'high'],
    [100_000, 'max'],
  ] as const)('maps a budget of %i tokens to %s', (budget, effort) => {
    expect(effortForBudget(budget)).toBe(effort);
  });

  it('takes a control’s own level first, then its budget’s, then medium', () => {
    expect(reasoningEffort({ mode: 'enabled', effort: 'low', budgetTokens: 30_000 })).toBe('low');
    expect(reasoningEffort({ mode: 'enabled', budgetTokens: 30_000 })).toBe('max');
    expect(reasoningEffort({ mode: 'adaptive' })).toBe('medium');
  });

  it('takes a control’s own budget first, then its level’s', () => {
    expect(reasoningBudget({ mode: 'enabled', effort: 'high', budgetTokens: 2000 })).toBe(2000);
    expect(reasoningBudget({ mode: 'enabled', effort: 'high' })).toBe(24576);
    expect(reasoningWord({ mode: 'enabled', effort: 'max' }, 'openai')).toBe('xhigh');
  });
});
