import { describe, expect, it } from 'vitest';
import { PriceTable, costOf } from './prices.js';

describe('the price table', () => {
  it('ships current models, finds dated and prefixed names, and lets YAML override and add', () => {
    const table = new PriceTable({
      'openai:gpt-4o': { input: 1, output: 1 },
      'my-model': { input: 2, output: 3, cache_read: 0.5 },
    });
    expect(table.priceOf('anthropic', 'claude-sonnet-4-5-20250929')).toEqual({
      input: 3,
      output: 15,
      cache_read: 0.3,
      cache_write: 3.75,
    });
    expect(table.priceOf('openrouter', 'openai/gpt-4o-mini')).toEqual({
      input: 0.15,
      output: 0.6,
      cache_read: 0.075,
    });
    expect(table.priceOf('openai', 'gpt-4o-2024-08-06')).toEqual({ input: 1, output: 1 });
    expect(table.priceOf('azure', 'gpt-4o')).toEqual({ input: 2.5, output: 10, cache_read: 1.25 });
    expect(table.priceOf('custom', 'my-model')).toEqual({ input: 2, output: 3, cache_read: 0.5 });
    expect(table.priceOf('custom', 'unknown-model')).toBeNull();
  });

  it('names only the models it holds themselves, not the dated or prefixed forms a client can make up', () => {
    const table = new PriceTable({
      'openai:gpt-4o': { input: 1, output: 1 },
      'my-model': { input: 2, output: 3 },
    });
    expect(table.names('openai', 'gpt-4o')).toBe(true);
    expect(table.names('custom', 'my-model')).toBe(true);
    expect(table.names('anthropic', 'claude-sonnet-4-5')).toBe(true);
    expect(table.names('anthropic', 'claude-sonnet-4-5-20250929')).toBe(false);
    expect(table.names('openrouter', 'anything/gpt-4o-mini')).toBe(false);
    expect(table.names('custom', 'unknown-model')).toBe(false);
    // Priced all the same.
    expect(table.priceOf('openrouter', 'anything/gpt-4o-mini')).not.toBeNull();
  });

  it('costs tokens per million, cache without a price of its own at the input price', () => {
    const tokens = { input: 1_000_000, output: 500_000, cacheRead: 2_000_000, cacheWrite: 1_000_000 };
    expect(costOf(tokens, { input: 3, output: 15, cache_read: 0.3, cache_write: 3.75 })).toBeCloseTo(
      3 + 7.5 + 0.6 + 3.75,
      10,
    );
    expect(costOf(tokens, { input: 1, output: 2 })).toBe(1 + 1 + 2 + 1);
    expect(costOf(tokens, null)).toBe(0);
  });
});
