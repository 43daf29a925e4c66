import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../test/helpers/seeded-random.js';
import type { StreamEvent } from './canonical.js';
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

/**
 * What the Anthropic encoder wrote for a text answer's events when it serialised every event's object
 * (before its templates): the reference its output is held to, byte for byte.
 */
function anthropicBySerialiser(meta: { model: string; id: string }, events: StreamEvent[]): string {
  const sse = (name: string, payload: unknown) => `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;
  const stops: Record<string, string> = {
    end_turn: 'end_turn',
    max_tokens: 'max_tokens',
    stop_sequence: 'stop_sequence',
    tool_use: 'tool_use',
    content_filter: 'refusal',
  };
  let out = '';
  let started = false;
  let done = false;
  // Changed inside the closures below: typed by hand, so the loop does not read it as always null.
  let open = null as { index: number; kind: string } | null;
  let next = 0;
  const close = () => {
    if (open === null) return '';
    const { index } = open;
    open = null;
    return sse('content_block_stop', { type: 'content_block_stop', index });
  };
  const openBlock = (block: { type: string; [member: string]: unknown }) => {
    const index = next++;
    open = { index, kind: block.type };
    return sse('content_block_start', { type: 'content_block_start', index, content_block: block });
  };
  for (const event of events) {
    if (done) continue;
    if (!started) {
      started = true;
      const inputTokens = event.type === 'start' ? (event.inputTokens ?? 0) : 0;
      out += sse('message_start', {
        type: 'message_start',
        message: {
          id: meta.id,
          type: 'message',
          role: 'assistant',
          model: meta.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: inputTokens, output_tokens: 0 },
        },
      });
    }
    if (event.type === 'text') {
      if (open?.kind !== 'text') out += close() + openBlock({ type: 'text', text: '' });
      const delta = { type: 'text_delta', text: event.text };
      out += sse('content_block_delta', { type: 'content_block_delta', index: open!.index, delta });
    } else if (event.type === 'reasoning') {
      if (open?.kind !== 'thinking')
        out += close() + openBlock({ type: 'thinking', thinking: '', signature: '' });
      const delta = { type: 'thinking_delta', thinking: event.text };
      out += sse('content_block_delta', { type: 'content_block_delta', index: open!.index, delta });
    } else if (event.type === 'finish') {
      done = true;
      out +=
        close() +
        sse('message_delta', {
          type: 'message_delta',
          delta: { stop_reason: stops[event.stopReason], stop_sequence: event.stopSequence ?? null },
          usage: {
            output_tokens: event.usage?.outputTokens ?? 0,
            ...(event.usage ? { input_tokens: event.usage.inputTokens } : {}),
          },
        }) +
        sse('message_stop', { type: 'message_stop' });
    }
  }
  return out;
}

describe('anthropic stream encoder: templates against the serialiser', () => {
  it('writes random text answers byte for byte as serialising their events did', () => {
    const { random, pick } = seededRandom(0x7a17e5);
    const strings = [
      'req_1',
      'client-model',
      'a "quote"',
      'é 👋',
      'lone \ud800',
      'back\\slash',
      'x'.repeat(70),
      '',
    ];
    const texts = [
      'tok1 ',
      '',
      'a "q"',
      'line\nbreak',
      '\u0001',
      'é 👋',
      '\udc00',
      'y'.repeat(65),
      'z'.repeat(64),
    ];
    const numbers = [0, 5, 1234567, 1e21, -0, Number.NaN, 2.5];
    const reasons = ['end_turn', 'max_tokens', 'stop_sequence', 'tool_use', 'content_filter', 'other'];
    for (let round = 0; round < 400; round++) {
      // Meta and usage members missing at run time too (the encoder falls back to the serialiser).
      const meta = {
        id: random() < 0.1 ? (undefined as unknown as string) : pick(strings),
        model: random() < 0.1 ? (undefined as unknown as string) : pick(strings),
      };
      const events: StreamEvent[] = [];
      if (random() < 0.7) {
        events.push({ type: 'start', inputTokens: random() < 0.3 ? undefined : pick(numbers) });
      }
      for (let n = Math.floor(random() * 8); n > 0; n--) {
        events.push(
          random() < 0.8 ? { type: 'text', text: pick(texts) } : { type: 'reasoning', text: pick(texts) },
        );
      }
      const usage =
        random() < 0.3
          ? undefined
          : {
              inputTokens: random() < 0.1 ? (undefined as unknown as number) : pick(numbers),
              outputTokens: random() < 0.1 ? (undefined as unknown as number) : pick(numbers),
            };
      events.push({
        type: 'finish',
        stopReason: pick(reasons) as 'end_turn',
        stopSequence:
          random() < 0.5 ? undefined : random() < 0.2 ? (null as unknown as string) : pick(strings),
        usage,
      });
      if (random() < 0.2) events.push({ type: 'text', text: 'after the end' });
      const encoder = codecs.anthropic.createStreamEncoder(meta);
      const written = events.map((event) => encoder.encode(event)).join('');
      expect(written).toBe(anthropicBySerialiser(meta, events));
    }
  });
});
