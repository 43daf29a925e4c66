import { describe, expect, it } from 'vitest';
import type { ChatRequest } from './canonical.js';
import { CONVERSATIONS } from './conversation.js';
import {
  applyReasoningSetting,
  effortForBudget,
  effortFromWire,
  REASONING_TABLE,
  reasoningBudget,
  reasoningEffort,
  reasoningWord,
  type ReasoningSetting,
} from './reasoning.js';
import { codecs } from './registry.js';
import type { Protocol } from './types.js';

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

describe("the session's reasoning setting", () => {
  /** A client's request with sampling, an output limit and a reasoning control of its own. */
  const request = (): ChatRequest => ({
    model: 'm',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'think' }] }],
    temperature: 0.5,
    maxTokens: 1000,
    stream: false,
    reasoning: { mode: 'enabled', effort: 'minimal', includeThoughts: true },
  });
  const settings: ReasoningSetting[] = ['off', 'low', 'medium', 'high'];
  const backends: Protocol[] = ['openai', 'responses', 'anthropic', 'gemini'];

  // Translated, the setting goes on the canonical request; passed through, on the body in its own shape:
  // a backend gets the same either way, so every client × backend pair gets what a client of its own gets.
  it.each(backends.flatMap((to) => settings.map((setting) => [to, setting] as const)))(
    'to %s, %s: the same as a client of that protocol gets',
    (to, setting) => {
      const translated = request();
      applyReasoningSetting(translated, setting);
      const own = CONVERSATIONS[to].withReasoning(codecs[to].encodeRequest(request()), setting);
      expect(codecs[to].encodeRequest(translated)).toEqual(own);
    },
  );

  it('reaches Anthropic beside sampling it refuses and a small limit, by the table’s budget', () => {
    const req = request();
    applyReasoningSetting(req, 'high');
    expect(codecs.anthropic.encodeRequest(req)).toMatchObject({
      max_tokens: 24576 + 1024,
      thinking: { type: 'enabled', budget_tokens: 24576 },
    });
    // The client's own control beside that sampling is dropped with notice, as before.
    const own = request();
    expect(codecs.anthropic.encodeRequest(own)).not.toHaveProperty('thinking');
    expect(own.dropped).toEqual(['reasoning']);
  });

  it('turns Gemini’s thinking off, and leaves the others at their default', () => {
    const req = request();
    applyReasoningSetting(req, 'off');
    expect(codecs.gemini.encodeRequest(req).generationConfig).toEqual({
      temperature: 0.5,
      maxOutputTokens: 1000,
      thinkingConfig: { thinkingBudget: 0 },
    });
    expect(codecs.openai.encodeRequest(req)).not.toHaveProperty('reasoning_effort');
    expect(codecs.anthropic.encodeRequest(req)).not.toHaveProperty('thinking');
  });
});
