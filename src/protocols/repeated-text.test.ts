import { describe, expect, it } from 'vitest';
import type { StreamEvent } from './canonical.js';
import type { ProtocolCodec, SseMessage } from './codec.js';
import { RepeatedText } from './repeated-text.js';
import { codecs } from './registry.js';
import { SseParser } from './sse.js';
import { StreamTranslation } from './translate.js';
import type { Protocol } from './types.js';

const OPENAI_HEAD =
  '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-x","choices":[{"index":0,"delta":';
const openaiText = (text: string) =>
  `${OPENAI_HEAD}{"content":${JSON.stringify(text)}},"logprobs":null,"finish_reason":null}]}`;
const text = (t: string): StreamEvent[] => [{ type: 'text', text: t }];

/** A RepeatedText that learned `data` as the text `t`. */
function learned(data: string, t: string, event?: string): RepeatedText {
  const repeated = new RepeatedText();
  repeated.learn({ event, data }, text(t));
  return repeated;
}

describe('RepeatedText', () => {
  it('reads the next event of the learned shape as its text', () => {
    const repeated = learned(openaiText('Hello'), 'Hello');
    expect(repeated.match({ data: openaiText(' wörld 👋') })).toBe(' wörld 👋');
    expect(repeated.match({ data: openaiText('x') })).toBe('x');
  });

  it('leaves to the decoder a text that needs escaping, an empty one, and any other shape', () => {
    const repeated = learned(openaiText('Hello'), 'Hello');
    for (const other of ['say "hi"', 'back\\slash', 'line\nbreak', 'tab\t', '\u0001', ''])
      expect(repeated.match({ data: openaiText(other) })).toBeUndefined();
    // Quotes written unescaped would make other JSON: never read as text.
    expect(repeated.match({ data: openaiText('a').replace('"a"', '"a","x":"b"') })).toBeUndefined();
    expect(repeated.match({ data: openaiText('a').replace('"index":0', '"index":1') })).toBeUndefined();
    expect(repeated.match({ data: openaiText('a').replace('null}]}', '"stop"}]}') })).toBeUndefined();
    expect(repeated.match({ data: `${openaiText('a')} ` })).toBeUndefined();
    expect(repeated.match({ event: 'message', data: openaiText('a') })).toBeUndefined();
  });

  it('matches the event name learned', () => {
    const data = (t: string) =>
      `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":${JSON.stringify(t)}}}`;
    const repeated = learned(data('Hi'), 'Hi', 'content_block_delta');
    expect(repeated.match({ event: 'content_block_delta', data: data('there') })).toBe('there');
    expect(repeated.match({ data: data('there') })).toBeUndefined();
    expect(repeated.match({ event: 'other', data: data('there') })).toBeUndefined();
  });

  it.each([
    ['an event with a backslash anywhere', openaiText('Hi').replace('chatcmpl-1', 'chat\\u0063mpl-1'), 'Hi'],
    ['a text that occurs twice as a string', openaiText('gpt-x'), 'gpt-x'],
    ['a text the event does not hold as a string', openaiText('Hi'), 'Hx'],
    ['a text written with escapes', openaiText('Hi').replace('"Hi"', '"H\\u0069"'), 'Hi'],
  ])('learns nothing from %s', (_, data, t) => {
    const repeated = learned(data, t);
    expect(repeated.match({ data: openaiText('other') })).toBeUndefined();
    expect(repeated.match({ data })).toBeUndefined();
  });

  it('learns nothing from events other than one non-empty text, and forgets on each', () => {
    const repeated = learned(openaiText('Hello'), 'Hello');
    const next: SseMessage = { data: openaiText('Hi') };
    repeated.learn(next, [{ type: 'start' }, ...text('Hi')]);
    expect(repeated.match({ data: openaiText('again') })).toBeUndefined();
    const fresh = learned(openaiText('Hello'), 'Hello');
    fresh.learn({ data: openaiText('') }, text(''));
    expect(fresh.match({ data: openaiText('again') })).toBeUndefined();
    const reasoning = learned(openaiText('Hello'), 'Hello');
    reasoning.learn({ data: openaiText('Hm') }, [{ type: 'reasoning', text: 'Hm' }]);
    expect(reasoning.match({ data: openaiText('again') })).toBeUndefined();
  });
});

// --- the translation with and without it: the same text, byte for byte --------------------------------------

/** The codecs with decoders that do not declare `textRepeats`: every event goes through the decoder. */
const plainCodecs = Object.fromEntries(
  (Object.entries(codecs) as Array<[Protocol, ProtocolCodec]>).map(([protocol, codec]) => [
    protocol,
    {
      ...codec,
      createStreamDecoder: () => {
        const decoder = codec.createStreamDecoder();
        return { push: (m: SseMessage) => decoder.push(m), end: () => decoder.end() };
      },
    },
  ]),
) as Record<Protocol, ProtocolCodec>;

/** The codecs as they are, counting the events their decoders read (those RepeatedText did not). */
let decoded = 0;
const countingCodecs = Object.fromEntries(
  (Object.entries(codecs) as Array<[Protocol, ProtocolCodec]>).map(([protocol, codec]) => [
    protocol,
    {
      ...codec,
      createStreamDecoder: () => {
        const decoder = codec.createStreamDecoder();
        return {
          textRepeats: decoder.textRepeats,
          push: (m: SseMessage) => {
            decoded++;
            return decoder.push(m);
          },
          end: () => decoder.end(),
        };
      },
    },
  ]),
) as Record<Protocol, ProtocolCodec>;

const eventCount = (wire: string) => {
  const parser = new SseParser();
  return parser.feedText(wire).length + parser.end().length;
};

/** A seeded generator (mulberry32): the same streams on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Texts that test the edges: quotes, escapes, control characters, a lone surrogate, members' own names. */
const PIECES = [
  'tok ',
  'Héllo',
  ' 👋',
  '"',
  '\\',
  '\n',
  '\u0001',
  '\ud800',
  '\u2028',
  'content',
  'text',
  'gpt-x',
  'model',
  'text_delta',
  '0',
  'null',
  '',
  ',',
  '}',
];

/** Encodes a string as JSON, sometimes with needless `\u` escapes (a server may write them). */
function literal(rand: () => number, s: string): string {
  const plain = JSON.stringify(s);
  if (rand() > 0.15 || s.length === 0) return plain;
  return `"${[...s].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`;
}

const PLAIN = ['tok ', 'Héllo', ' 👋', ' wörld', '.'];

type Step = 'text' | 'reasoning' | 'tool' | 'usage';
const STEPS: Step[] = ['text', 'text', 'text', 'text', 'text', 'reasoning', 'tool', 'usage'];

/** One random backend stream of `from`'s wire format: mostly text deltas, with what else may interleave. */
function wireStream(from: Protocol, rand: () => number, pieces: readonly string[]): string {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const piece = () => Array.from({ length: 1 + Math.floor(rand() * 3) }, () => pick(pieces)).join('');
  const steps = Array.from({ length: 4 + Math.floor(rand() * 14) }, () => pick(STEPS));
  let out = '';
  if (from === 'openai') {
    const chunk = (delta: string, finish = 'null', usage = '') =>
      `data: ${OPENAI_HEAD}${delta},"logprobs":null,"finish_reason":${finish}}]${usage}}\n\n`;
    out += chunk('{"role":"assistant","content":""}');
    let tools = 0;
    for (const step of steps) {
      if (step === 'text') out += chunk(`{"content":${literal(rand, piece())}}`);
      else if (step === 'reasoning') out += chunk(`{"reasoning_content":${literal(rand, piece())}}`);
      else if (step === 'tool')
        out += chunk(
          `{"tool_calls":[{"index":${tools},"id":"call_${tools++}","type":"function","function":{"name":"f","arguments":"{}"}}]}`,
        );
      else
        out += chunk(`{"content":${literal(rand, piece())}}`, 'null', `,"usage":{"prompt_tokens":${tools}}`);
    }
    return `${out}${chunk('{}', '"stop"')}data: [DONE]\n\n`;
  }
  if (from === 'anthropic') {
    const ev = (name: string, data: string) => `event: ${name}\ndata: ${data}\n\n`;
    out += ev(
      'message_start',
      '{"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":3,"output_tokens":1}}}',
    );
    let index = 0;
    let open: Step | null = null;
    const block = (kind: Step, start: string) => {
      if (open === kind && kind !== 'tool') return;
      if (open !== null) out += ev('content_block_stop', `{"type":"content_block_stop","index":${index++}}`);
      open = kind;
      out += ev(
        'content_block_start',
        `{"type":"content_block_start","index":${index},"content_block":${start}}`,
      );
    };
    const delta = (d: string) =>
      ev('content_block_delta', `{"type":"content_block_delta","index":${index},"delta":${d}}`);
    for (const step of steps) {
      if (step === 'text' || step === 'usage') {
        block('text', '{"type":"text","text":""}');
        out += delta(`{"type":"text_delta","text":${literal(rand, piece())}}`);
      } else if (step === 'reasoning') {
        block('reasoning', '{"type":"thinking","thinking":""}');
        out += delta(`{"type":"thinking_delta","thinking":${literal(rand, piece())}}`);
      } else {
        block('tool', `{"type":"tool_use","id":"toolu_${index}","name":"f","input":{}}`);
        out += delta(`{"type":"input_json_delta","partial_json":${literal(rand, '{"a":1}')}}`);
      }
    }
    if (open !== null) out += ev('content_block_stop', `{"type":"content_block_stop","index":${index}}`);
    out += ev(
      'message_delta',
      '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}',
    );
    return out + ev('message_stop', '{"type":"message_stop"}');
  }
  // Gemini: one candidate a chunk, its usage growing now and then.
  const chunk = (parts: string, usage: number, finish = '') =>
    `data: {"candidates":[{"content":{"role":"model","parts":[${parts}]}${finish},"index":0}],"usageMetadata":{"promptTokenCount":${usage}},"modelVersion":"gemini-x","responseId":"r1"}\r\n\r\n`;
  let usage = 5;
  for (const step of steps) {
    if (step === 'text') out += chunk(`{"text":${literal(rand, piece())}}`, usage);
    else if (step === 'reasoning') out += chunk(`{"text":${literal(rand, piece())},"thought":true}`, usage);
    else if (step === 'tool') out += chunk('{"functionCall":{"name":"f","args":{"a":1}}}', usage);
    else out += chunk(`{"text":${literal(rand, piece())}}`, ++usage);
  }
  return out + chunk('{"text":""}', usage, ',"finishReason":"STOP"');
}

function translate(
  from: Protocol,
  to: Protocol,
  wire: string,
  cuts: number[],
  use: Record<Protocol, ProtocolCodec>,
): string {
  const translation = new StreamTranslation(from, to, { model: 'client-model', requestId: 'req_1' }, use);
  let out = '';
  let at = 0;
  for (const cut of [...cuts, wire.length]) {
    out += translation.push(wire.slice(at, cut));
    at = cut;
  }
  // Ids the encoders make up, and the clock, are not what is compared.
  return (out + translation.end())
    .replace(/[0-9a-f]{24,}/g, 'ID')
    .replace(/"(created|created_at)":\d+/g, '"$1":0');
}

describe('translated streams read with and without RepeatedText', () => {
  const FROM: Protocol[] = ['openai', 'anthropic', 'gemini'];
  const TO: Protocol[] = ['openai', 'anthropic', 'gemini', 'responses'];

  it.each(FROM.flatMap((from) => TO.filter((to) => to !== from).map((to) => [from, to] as const)))(
    '%s → %s: 150 random streams give the same client text',
    (from, to) => {
      const rand = random(from.length * 31 + to.length);
      let events = 0;
      decoded = 0;
      for (let n = 0; n < 150; n++) {
        // Every other stream of plain words, as most answers are; the others full of edges.
        const wire = wireStream(from, rand, n % 2 === 0 ? PLAIN : PIECES);
        const cuts = Array.from({ length: Math.floor(rand() * 6) }, () =>
          Math.floor(rand() * wire.length),
        ).sort((a, b) => a - b);
        expect(translate(from, to, wire, cuts, countingCodecs)).toBe(
          translate(from, to, wire, cuts, plainCodecs),
        );
        events += eventCount(wire);
      }
      // Read without the decoder: a good part of the events, not all.
      expect(events - decoded).toBeGreaterThan(events / 20);
      expect(decoded).toBeGreaterThan(events / 4);
    },
  );

  it('reads the OpenAI, Anthropic and Gemini decoders as allowing it, not the Responses one', () => {
    expect(codecs.openai.createStreamDecoder().textRepeats).toBe(true);
    expect(codecs.anthropic.createStreamDecoder().textRepeats).toBe(true);
    expect(codecs.gemini.createStreamDecoder().textRepeats).toBe(true);
    expect(codecs.responses.createStreamDecoder().textRepeats).toBeUndefined();
  });
});
