import { describe, expect, it } from 'vitest';
import type { ChatResponse, ResponsePart, StopReason } from './canonical.js';
import { createGeminiCodec } from './gemini/codec.js';
import { jsonText, numberJson, quotedJson } from './json-text.js';

/** A deterministic generator (mulberry32), so a failure names its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Characters JSON writes as they are, and every kind it does not: quotes, backslashes, controls, surrogates. */
const PIECES = [
  'a',
  'Z',
  ' ',
  'completion. ',
  '"',
  '\\',
  '/',
  '\n',
  '\t',
  '\u0000',
  '\u001f',
  '\u007f',
  'é',
  '\u2028',
  '日本',
  '😀',
  '\ud83d',
  '\ude00',
  '\ufffd',
  '\uffff',
];

function text(next: () => number, max = 12): string {
  let out = '';
  const n = Math.floor(next() * max);
  for (let i = 0; i < n; i++) out += PIECES[Math.floor(next() * PIECES.length)]!;
  return out;
}

const NUMBERS = [
  0,
  -0,
  1,
  -1,
  42,
  0.2,
  1e21,
  1e-7,
  -3.5e300,
  Number.MAX_SAFE_INTEGER,
  NaN,
  Infinity,
  -Infinity,
];

function value(next: () => number, depth: number): unknown {
  const kind = Math.floor(next() * (depth > 3 ? 5 : 9));
  switch (kind) {
    case 0:
      return text(next);
    case 1:
      return NUMBERS[Math.floor(next() * NUMBERS.length)];
    case 2:
      return next() < 0.5;
    case 3:
      return null;
    case 4:
      return next() < 0.5 ? undefined : () => 1;
    case 5:
    case 6: {
      const out: unknown[] = [];
      const n = Math.floor(next() * 4);
      for (let i = 0; i < n; i++) out.push(value(next, depth + 1));
      return out;
    }
    default: {
      const out: Record<string, unknown> = {};
      const n = Math.floor(next() * 4);
      for (let i = 0; i < n; i++)
        out[next() < 0.2 ? String(Math.floor(next() * 10)) : text(next, 4)] = value(next, depth + 1);
      return out;
    }
  }
}

describe('quotedJson and numberJson', () => {
  it('write what JSON.stringify writes, for every kind of character', () => {
    const next = random(1);
    for (const piece of PIECES) expect(quotedJson(piece)).toBe(JSON.stringify(piece));
    for (let i = 0; i < 3000; i++) {
      const s = text(next, 30);
      expect(quotedJson(s)).toBe(JSON.stringify(s));
    }
    for (const n of NUMBERS) expect(numberJson(n)).toBe(JSON.stringify(n));
  });
});

describe('jsonText', () => {
  it('writes what JSON.stringify writes, over 3,000 random values', () => {
    const next = random(2);
    for (let i = 0; i < 3000; i++) {
      const v = value(next, 0);
      if (v === undefined || typeof v === 'function') continue;
      expect(jsonText(v)).toBe(JSON.stringify(v));
    }
  });

  it('leaves what is not plain data to JSON.stringify (toJSON, other prototypes, boxed values)', () => {
    const values: unknown[] = [
      { at: new Date(0) },
      { own: { toJSON: () => 'mine' } },
      [new Number(3), new String('s'), new Boolean(false)],
      { map: new Map([[1, 2]]) },
      Object.assign(Object.create(null) as object, { a: 1 }),
      { a: undefined, b: Symbol('s'), c: [undefined, () => 1, Symbol('t')] },
      { 2: 'two', 1: 'one', b: 'b', a: 'a' },
    ];
    for (const v of values) expect(jsonText(v)).toBe(JSON.stringify(v));
  });
});

describe('Gemini encodeResponseText', () => {
  const codec = createGeminiCodec();
  const stops: StopReason[] = ['end_turn', 'stop_sequence', 'tool_use', 'max_tokens', 'content_filter'];

  it('writes JSON.stringify(encodeResponse(res)) byte for byte, text-only answers and others', () => {
    const next = random(3);
    for (let i = 0; i < 2000; i++) {
      const content: ResponsePart[] = [];
      const n = Math.floor(next() * 4);
      for (let j = 0; j < n; j++) {
        const r = next();
        if (r < 0.75) content.push({ type: 'text', text: text(next, 20) });
        else if (r < 0.85)
          content.push({ type: 'tool_call', id: `call_${j}`, name: 'f', arguments: '{"a":1}' });
        else
          content.push({
            type: 'reasoning',
            text: text(next),
            signature: { family: 'gemini', value: 'sig' },
          });
      }
      const res: ChatResponse = {
        id: next() < 0.9 ? text(next, 6) : '',
        model: text(next, 6),
        content,
        stopReason: stops[Math.floor(next() * stops.length)]!,
        usage: {
          inputTokens: NUMBERS[Math.floor(next() * NUMBERS.length)]!,
          outputTokens: Math.floor(next() * 500),
        },
      };
      expect(codec.encodeResponseText!(res)).toBe(JSON.stringify(codec.encodeResponse(res)));
    }
  });

  it('writes the usual text answer as the serialiser did', () => {
    const res: ChatResponse = {
      id: 'chatcmpl-1',
      model: 'gpt-4o-mini',
      content: [{ type: 'text', text: 'Hello, "world" — \u00e9\n' }],
      stopReason: 'end_turn',
      usage: { inputTokens: 42, outputTokens: 180 },
    };
    expect(codec.encodeResponseText!(res)).toBe(
      '{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello, \\"world\\" — é\\n"}]},' +
        '"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":42,"candidatesTokenCount":180,' +
        '"totalTokenCount":222},"modelVersion":"gpt-4o-mini","responseId":"chatcmpl-1"}',
    );
  });
});
