import { describe, expect, it } from 'vitest';
import { codecs } from './registry.js';

// The stream encoders write their hottest events from templates (docs/performance.md, "Translation"):
// each must be exactly what serialising the event's object writes.
const meta = { model: 'client-model', id: 'req_1' };
const TEXT = 'say "hi" \\ wörld 👋\n';

/** The data lines of SSE text, each checked to be JSON as JSON.stringify writes it, parsed. */
function dataOf(sse: string): unknown[] {
  return sse
    .split('\n')
    .filter((line) => line.startsWith('data: ') && line !== 'data: [DONE]')
    .map((line) => {
      const json = line.slice('data: '.length);
      expect(JSON.stringify(JSON.parse(json))).toBe(json);
      return JSON.parse(json) as unknown;
    });
}

describe('stream encoders write what serialising their events writes', () => {
  it('openai', () => {
    const encoder = codecs.openai.createStreamEncoder(meta);
    const text = encoder.encode({ type: 'text', text: TEXT });
    const finish = encoder.encode({
      type: 'finish',
      stopReason: 'end_turn',
      usage: { inputTokens: 3, outputTokens: 5 },
    });
    const chunk = (delta: object, finish_reason: string | null) => ({
      id: 'req_1',
      object: 'chat.completion.chunk',
      created: expect.any(Number) as number,
      model: 'client-model',
      choices: [{ index: 0, delta, logprobs: null, finish_reason }],
    });
    expect(dataOf(text)).toEqual([
      chunk({ role: 'assistant', content: '' }, null),
      chunk({ content: TEXT }, null),
    ]);
    // Byte for byte, members in order: a text event after the opening is written from a template.
    const { created } = dataOf(text)[0] as { created: number };
    const delta = { content: TEXT };
    const whole = { id: 'req_1', object: 'chat.completion.chunk', created, model: 'client-model' };
    const choices = [{ index: 0, delta, logprobs: null, finish_reason: null }];
    expect(text.endsWith(`data: ${JSON.stringify({ ...whole, choices })}\n\n`)).toBe(true);
    expect(dataOf(finish)[0]).toEqual(chunk({}, 'stop'));
    expect(finish.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('anthropic', () => {
    const encoder = codecs.anthropic.createStreamEncoder(meta);
    const out = encoder.encode({ type: 'text', text: TEXT }) + encoder.encode({ type: 'text', text: 'more' });
    const deltas = dataOf(out).filter((e) => (e as { type: string }).type === 'content_block_delta');
    expect(deltas).toEqual([
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: TEXT } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'more' } },
    ]);
    expect(out).toContain(`event: content_block_delta\ndata: ${JSON.stringify(deltas[1])}\n\n`);
  });

  it('gemini', () => {
    const encoder = codecs.gemini.createStreamEncoder(meta);
    const text = encoder.encode({ type: 'text', text: TEXT });
    const finish = encoder.encode({
      type: 'finish',
      stopReason: 'max_tokens',
      usage: { inputTokens: 3, outputTokens: 5 },
    });
    expect(dataOf(text)).toEqual([
      {
        candidates: [{ content: { role: 'model', parts: [{ text: TEXT }] }, index: 0 }],
        modelVersion: 'client-model',
        responseId: 'req_1',
      },
    ]);
    // Byte for byte what serialising the whole chunk writes (the text's part is written from a template).
    const whole = {
      candidates: [{ content: { role: 'model', parts: [{ text: TEXT }] }, index: 0 }],
      modelVersion: 'client-model',
      responseId: 'req_1',
    };
    expect(text).toBe(`data: ${JSON.stringify(whole)}\n\n`);
    expect(dataOf(finish)).toEqual([
      {
        candidates: [
          { content: { role: 'model', parts: [{ text: '' }] }, finishReason: 'MAX_TOKENS', index: 0 },
        ],
        usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 5, totalTokenCount: 8 },
        modelVersion: 'client-model',
        responseId: 'req_1',
      },
    ]);
  });

  it('gemini: a text written without the serialiser when it needs no escaping, else with it', () => {
    const texts = [
      'tok1 ',
      '',
      'plain ASCII, and é 👋 too',
      'a "quote"',
      'a \\ backslash',
      'a line\nbreak',
      'a \u0001 control',
      'a lone \ud800 surrogate',
      'its pair \udc00 alone',
      'x'.repeat(64),
      'y'.repeat(65),
      `${'z'.repeat(70)}"`,
    ];
    for (const text of texts) {
      const encoder = codecs.gemini.createStreamEncoder(meta);
      const whole = {
        candidates: [{ content: { role: 'model', parts: [{ text }] }, index: 0 }],
        modelVersion: 'client-model',
        responseId: 'req_1',
      };
      expect(encoder.encode({ type: 'text', text })).toBe(`data: ${JSON.stringify(whole)}\n\n`);
    }
  });
});
