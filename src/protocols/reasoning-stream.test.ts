import { describe, expect, it } from 'vitest';
import type { Signature, StreamEvent } from './canonical.js';
import { codecs } from './registry.js';
import { createSignatureSealer, FAMILIES, openRequestSignatures, signatureKey } from './signatures.js';
import { chunked, decodeSseText } from './testing/fixtures.js';
import { translateStream } from './translate.js';
import type { Protocol } from './types.js';

const PROTOCOLS: Protocol[] = ['openai', 'anthropic', 'gemini', 'responses'];
const PAIRS = PROTOCOLS.flatMap((from) => PROTOCOLS.map((to) => [from, to] as const));
const sealer = createSignatureSealer(signatureKey('reasoning-stream-test-secret-0123456789'));
const SIGNATURE = 'EqQBCkYI+/Sig==';
/** Protocols whose clients have a field a signature can ride in. */
const CARRIES: Record<Protocol, boolean> = { openai: false, anthropic: true, gemini: true, responses: true };

/** A backend's stream in its own protocol: reasoning in two deltas, its signature, then a tool call. */
function sourceOf(from: Protocol): string {
  const encoder = codecs[from].createStreamEncoder({ model: 'm', id: 'resp_src' });
  const events: StreamEvent[] = [
    { type: 'start', id: 'resp_src', model: 'm', inputTokens: 3 },
    { type: 'reasoning', text: 'Let me think.' },
    { type: 'reasoning', text: ' More.' },
    { type: 'reasoning_signature', signature: { family: FAMILIES[from], value: SIGNATURE } },
    { type: 'tool_call_start', index: 0, id: 'call_1', name: 'weather' },
    { type: 'tool_call_delta', index: 0, arguments: '{"city":"Oslo"}' },
    { type: 'finish', stopReason: 'tool_use', usage: { inputTokens: 3, outputTokens: 5 } },
  ];
  return events.map((e) => encoder.encode(e)).join('');
}

async function translated(from: Protocol, to: Protocol): Promise<StreamEvent[]> {
  let out = '';
  const gen = translateStream(
    chunked(sourceOf(from), 7),
    from,
    to,
    { model: 'm', requestId: 'r' },
    undefined,
    sealer,
  );
  for await (const text of gen) out += text;
  return decodeSseText(to, out);
}

describe('reasoning streamed between families', () => {
  it.each(PAIRS)('%s → %s: the text arrives, the signature comes back to its family', async (from, to) => {
    const events = await translated(from, to);
    const text = events.map((e) => (e.type === 'reasoning' ? e.text : '')).join('');
    expect(text).toBe('Let me think. More.');
    const signatures = events
      .filter(
        (e): e is Extract<StreamEvent, { type: 'reasoning_signature' }> => e.type === 'reasoning_signature',
      )
      .map((e) => e.signature)
      .filter((s) => s.value !== '');
    // OpenAI chat makes no signature: its reasoning is known by its family alone.
    const made: Signature = { family: FAMILIES[from], value: from === 'openai' ? '' : SIGNATURE };
    if (!CARRIES[to]) {
      expect(signatures).toEqual([]);
    } else if (FAMILIES[to] === FAMILIES[from]) {
      expect(signatures).toEqual(made.value ? [{ family: FAMILIES[to], value: made.value }] : []);
    } else {
      expect(signatures).toHaveLength(1);
      const given = signatures[0] as Signature;
      expect(given.family).toBe(FAMILIES[to]);
      expect(sealer.unwrap(given.value)).toEqual(made);
    }
    const calls = events.filter((e) => e.type === 'tool_call_start');
    expect(calls.map((e) => e.type === 'tool_call_start' && e.name)).toEqual(['weather']);
    expect(events.at(-1)).toMatchObject({ type: 'finish', stopReason: 'tool_use' });
  });

  it('without reasoning, a translated stream has no reasoning events', async () => {
    const encoder = codecs.openai.createStreamEncoder({ model: 'm', id: 'x' });
    const source = [
      encoder.encode({ type: 'start' }),
      encoder.encode({ type: 'text', text: 'hi' }),
      encoder.encode({ type: 'finish', stopReason: 'end_turn' }),
    ].join('');
    let out = '';
    const gen = translateStream(chunked(source, 9), 'openai', 'anthropic', { model: 'm', requestId: 'r' });
    for await (const text of gen) out += text;
    expect(out).not.toContain('thinking');
    const events = await decodeSseText('anthropic', out);
    expect(events.some((e) => e.type === 'reasoning' || e.type === 'reasoning_signature')).toBe(false);
  });
});

describe('a Gemini client gives another family’s thoughts back', () => {
  it('whole: the text its signature signs, in one reasoning part', async () => {
    let out = '';
    const gen = translateStream(
      chunked(sourceOf('anthropic'), 11),
      'anthropic',
      'gemini',
      { model: 'm', requestId: 'r' },
      undefined,
      sealer,
    );
    for await (const text of gen) out += text;
    // The client keeps every part of the streamed answer, as Gemini's SDK history does.
    const parts = out
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => JSON.parse(e.slice(6)) as { candidates: Array<{ content: { parts: unknown[] } }> })
      .flatMap((chunk) => chunk.candidates.flatMap((c) => c.content.parts));
    const req = codecs.gemini.decodeRequest(
      {
        contents: [
          { role: 'user', parts: [{ text: 'hi' }] },
          { role: 'model', parts },
          { role: 'user', parts: [{ functionResponse: { name: 'weather', response: { output: 'ok' } } }] },
        ],
      },
      { model: 'm', stream: false },
    );
    openRequestSignatures(req, 'anthropic', sealer, () => undefined);
    const wire = codecs.anthropic.encodeRequest(req);
    expect((wire.messages as Array<{ content: unknown[] }>)[1]?.content[0]).toEqual({
      type: 'thinking',
      thinking: 'Let me think. More.',
      signature: SIGNATURE,
    });
  });
});
