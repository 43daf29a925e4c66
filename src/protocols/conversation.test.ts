import { describe, expect, it } from 'vitest';
import { CONVERSATIONS } from './conversation.js';

describe('CONVERSATIONS', () => {
  it('reads the words of an Anthropic turn, not its other blocks, and replaces one', () => {
    const a = CONVERSATIONS.anthropic;
    const turn = {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: 't1', content: 'ok' },
        { type: 'text', text: '<system-reminder>x</system-reminder>' },
        { type: 'text', text: '!/help' },
      ],
    };
    const texts = a.texts(turn);
    expect(texts).toEqual([
      { text: '<system-reminder>x</system-reminder>', part: 1 },
      { text: '!/help', part: 2 },
    ]);
    expect(a.withText(turn, texts[1]!, 'rest')).toEqual({
      role: 'user',
      content: [turn.content[0], turn.content[1], { type: 'text', text: 'rest' }],
    });
    expect(turn.content[2]).toEqual({ type: 'text', text: '!/help' });
    expect(a.role(turn)).toBe('user');
    expect(a.role({ role: 'assistant', content: 'x' })).toBe('assistant');
  });

  it('reads Gemini parts without thoughts; a turn without a role is the user’s', () => {
    const g = CONVERSATIONS.gemini;
    const turn = { parts: [{ text: 'thinking', thought: true }, { text: '!/session' }] };
    expect(g.role(turn)).toBe('user');
    expect(g.role({ role: 'model', parts: [] })).toBe('assistant');
    expect(g.texts(turn)).toEqual([{ text: '!/session', part: 1 }]);
  });

  it('sets temperature and reasoning in each protocol’s own fields', () => {
    expect(CONVERSATIONS.openai.withReasoning({ reasoning_effort: 'low', model: 'm' }, 'off')).toEqual({
      model: 'm',
    });
    expect(CONVERSATIONS.openai.withReasoning({ model: 'm' }, 'high')).toEqual({
      model: 'm',
      reasoning_effort: 'high',
    });
    expect(
      CONVERSATIONS.anthropic.withReasoning({ max_tokens: 64000, temperature: 0.2, top_k: 5 }, 'low'),
    ).toEqual({ max_tokens: 64000, thinking: { type: 'enabled', budget_tokens: 1024 } });
    expect(
      CONVERSATIONS.anthropic.withReasoning({ thinking: { type: 'enabled' }, max_tokens: 5 }, 'off'),
    ).toEqual({
      max_tokens: 5,
    });
    expect(
      CONVERSATIONS.gemini.withReasoning(
        {
          generationConfig: {
            temperature: 1,
            thinkingConfig: { thinkingLevel: 'low', includeThoughts: true },
          },
        },
        'high',
      ),
    ).toEqual({
      generationConfig: { temperature: 1, thinkingConfig: { includeThoughts: true, thinkingBudget: 24576 } },
    });
    expect(CONVERSATIONS.gemini.withTemperature({ contents: [] }, 0.1)).toEqual({
      contents: [],
      generationConfig: { temperature: 0.1 },
    });
  });
});
