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

  it('tells whether a turn holds more after a text, and leaves a text out, in each protocol', () => {
    const image = { type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' } };
    const o = CONVERSATIONS.openai;
    const parts = (...content: unknown[]) => ({ role: 'user', content });
    const text = (t: string) => ({ type: 'text', text: t });
    const turn = parts(text('note'), text('!/help'), text(' \n'));
    const at = o.texts(turn)[1]!;
    expect(o.holdsMoreAfter(turn, at)).toBe(false);
    expect(
      o.holdsMoreAfter(parts(text('!/help'), text('what now')), o.texts(parts(text('!/help')))[0]!),
    ).toBe(true);
    expect(o.holdsMoreAfter(parts(text('!/help'), image), { text: '!/help', part: 0 })).toBe(true);
    expect(o.holdsMoreAfter({ role: 'user', content: '!/help' }, { text: '!/help', part: -1 })).toBe(false);
    expect(o.withoutText(turn, at)).toEqual(parts(text('note'), text(' \n')));
    expect(o.withoutText({ role: 'user', content: '!/help' }, { text: '!/help', part: -1 })).toEqual({
      role: 'user',
      content: '',
    });
    const g = CONVERSATIONS.gemini;
    const gTurn = { role: 'user', parts: [{ text: '!/session' }, { text: 'go' }] };
    expect(g.holdsMoreAfter(gTurn, { text: '!/session', part: 0 })).toBe(true);
    expect(g.withoutText(gTurn, { text: '!/session', part: 0 })).toEqual({
      role: 'user',
      parts: [{ text: 'go' }],
    });
    const r = CONVERSATIONS.responses;
    const rTurn = {
      type: 'message',
      role: 'user',
      content: [
        { type: 'input_text', text: '!/session' },
        { type: 'input_image', image_url: 'data:image/png;base64,AA==' },
      ],
    };
    expect(r.holdsMoreAfter(rTurn, { text: '!/session', part: 0 })).toBe(true);
    expect(r.holdsMoreAfter(rTurn, { text: '!/session', part: 1 })).toBe(false);
  });

  it('sets temperature and reasoning in each protocol’s own fields', () => {
    expect(CONVERSATIONS.openai.withReasoning({ reasoning_effort: 'low', model: 'm' }, 'off')).toEqual({
      model: 'm',
    });
    expect(CONVERSATIONS.openai.withReasoning({ model: 'm' }, 'high')).toEqual({
      model: 'm',
      reasoning_effort: 'high',
    });
    // The budgets of the one reasoning table (src/protocols/reasoning.ts); the sampling Anthropic refuses
    // beside thinking left out, a top_p it takes kept.
    expect(
      CONVERSATIONS.anthropic.withReasoning(
        { max_tokens: 64000, temperature: 0.2, top_k: 5, top_p: 0.97 },
        'low',
      ),
    ).toEqual({ max_tokens: 64000, top_p: 0.97, thinking: { type: 'enabled', budget_tokens: 4096 } });
    expect(CONVERSATIONS.anthropic.withReasoning({ max_tokens: 100, top_p: 0.5 }, 'medium')).toEqual({
      max_tokens: 13312,
      thinking: { type: 'enabled', budget_tokens: 12288 },
    });
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
    expect(
      CONVERSATIONS.gemini.withReasoning(
        { generationConfig: { thinkingConfig: { thinkingLevel: 'high', includeThoughts: true } } },
        'off',
      ),
    ).toEqual({ generationConfig: { thinkingConfig: { thinkingBudget: 0 } } });
    expect(CONVERSATIONS.responses.withReasoning({ reasoning: { summary: 'auto' } }, 'medium')).toEqual({
      reasoning: { summary: 'auto', effort: 'medium' },
    });
    expect(CONVERSATIONS.gemini.withTemperature({ contents: [] }, 0.1)).toEqual({
      contents: [],
      generationConfig: { temperature: 0.1 },
    });
  });
});
