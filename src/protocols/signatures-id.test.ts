import { describe, expect, it } from 'vitest';
import type { ChatRequest, ChatResponse, StreamEvent } from './canonical.js';
import {
  bareId,
  ID_MARK,
  idCarrying,
  MAX_CARRIER_ID,
  openIdCarrier,
  type CarriedReasoning,
} from './signatures-id.js';
import {
  createSignatureSealer,
  openIdCarriers,
  openRequestSignatures,
  sealResponseSignatures,
  signatureKey,
  streamIdCarrier,
} from './signatures.js';

const sealer = createSignatureSealer(signatureKey('id-carrier-test-secret-0123456789'));
const anthropic = { family: 'anthropic', value: 'EqQB+/ant==' };
const gemini = { family: 'gemini', value: 'CiQB+/gem==' };
const thinking: CarriedReasoning = {
  part: { type: 'reasoning', text: 'I think', signature: anthropic },
  lead: true,
};
const thought: CarriedReasoning = {
  part: { type: 'reasoning', text: 'hmm', signature: gemini },
  lead: false,
};

describe('the tool call id as a signature carrier', () => {
  it('appends the carrier after the mark in the id-safe alphabet and opens it byte for byte', () => {
    const id = idCarrying('toolu_01', [thinking, thought], sealer);
    expect(id).toMatch(/^toolu_01__lip1_[A-Za-z0-9_-]+_[A-Za-z0-9_-]{43}$/);
    // Anthropic's thinking text comes back with its signature; Gemini's signature alone.
    expect(openIdCarrier(id, sealer)).toEqual({
      id: 'toolu_01',
      carried: [thinking, { part: { type: 'reasoning', text: '', signature: gemini }, lead: false }],
    });
    expect(bareId(id)).toBe('toolu_01');
    expect(bareId('call_1')).toBe('call_1');
    expect(openIdCarrier('call_1', sealer)).toBeUndefined();
  });

  it('keeps redacted thinking redacted', () => {
    const redacted: CarriedReasoning = {
      part: { type: 'reasoning', text: '', signature: anthropic, redacted: true },
      lead: true,
    };
    expect(openIdCarrier(idCarrying('c', [redacted], sealer), sealer)?.carried).toEqual([redacted]);
  });

  it('refuses a changed payload, MAC or id, another key’s carrier, and one moved to another call', () => {
    const id = idCarrying('call_a', [thought], sealer);
    const flip = (s: string, at: number) => s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1);
    const payloadAt = id.indexOf(ID_MARK) + ID_MARK.length;
    expect(openIdCarrier(flip(id, payloadAt), sealer)).toEqual({ id: 'call_a', carried: null });
    expect(openIdCarrier(flip(id, id.length - 1), sealer)).toEqual({ id: 'call_a', carried: null });
    expect(openIdCarrier(id.replace('call_a', 'call_b'), sealer)).toEqual({ id: 'call_b', carried: null });
    expect(openIdCarrier(`${id}x`, sealer)?.carried).toBeNull();
    expect(openIdCarrier('call_a__lip1_', sealer)).toEqual({ id: 'call_a', carried: null });
    const other = createSignatureSealer(signatureKey('another-secret-0123456789abcdef'));
    expect(openIdCarrier(idCarrying('call_a', [thought], other), sealer)?.carried).toBeNull();
  });

  it('leaves an id bare past the bound, or that already has a mark, or with nothing to carry', () => {
    const long: CarriedReasoning = {
      part: { type: 'reasoning', text: 'x'.repeat(MAX_CARRIER_ID), signature: anthropic },
      lead: true,
    };
    expect(idCarrying('c', [long], sealer)).toBe('c');
    expect(idCarrying(`c${ID_MARK}x`, [thought], sealer)).toBe(`c${ID_MARK}x`);
    expect(idCarrying('c', [], sealer)).toBe('c');
    expect(openIdCarrier(`c${ID_MARK}${'A'.repeat(MAX_CARRIER_ID)}`, sealer)?.carried).toBeNull();
  });
});

describe('an OpenAI chat client’s answers and requests', () => {
  const answer = (): ChatResponse => ({
    id: 'r',
    model: 'm',
    stopReason: 'tool_use',
    usage: { inputTokens: 1, outputTokens: 1 },
    content: [
      { type: 'reasoning', text: 'I think', signature: anthropic },
      { type: 'text', text: 'Looking.' },
      { type: 'reasoning', text: '', signature: gemini },
      { type: 'tool_call', id: 'call_1', name: 'f', arguments: '{}' },
      { type: 'tool_call', id: 'call_2', name: 'g', arguments: '{}' },
      { type: 'reasoning', text: 'after', signature: { family: 'openai', value: '' } },
    ],
  });

  it('whole: the signatures before a call ride on its id; other clients’ ids stay as they are', () => {
    const res = answer();
    sealResponseSignatures(res, 'openai', sealer);
    const [first, second] = res.content.filter((p) => p.type === 'tool_call');
    expect(openIdCarrier(first?.id ?? '', sealer)?.carried).toEqual([
      { part: { type: 'reasoning', text: 'I think', signature: anthropic }, lead: true },
      { part: { type: 'reasoning', text: '', signature: gemini }, lead: false },
    ]);
    expect(second?.id).toBe('call_2');
    const other = answer();
    sealResponseSignatures(other, 'anthropic', sealer);
    expect(other.content.filter((p) => p.type === 'tool_call').map((p) => p.id)).toEqual([
      'call_1',
      'call_2',
    ]);
  });

  it('streamed: the same carrier as the whole answer; none for other clients', () => {
    const events: StreamEvent[] = [
      { type: 'reasoning', text: 'I ' },
      { type: 'reasoning', text: 'think' },
      { type: 'reasoning_signature', signature: anthropic },
      { type: 'text', text: 'Looking.' },
      { type: 'reasoning_signature', signature: gemini },
      { type: 'tool_call_start', index: 0, id: 'call_1', name: 'f' },
      { type: 'tool_call_start', index: 1, id: 'call_2', name: 'g' },
    ];
    const carry = streamIdCarrier('openai', sealer);
    const ids = events.map((e) => carry?.(e)).flatMap((e) => (e?.type === 'tool_call_start' ? [e.id] : []));
    const whole = answer();
    sealResponseSignatures(whole, 'openai', sealer);
    expect(ids).toEqual(whole.content.flatMap((p) => (p.type === 'tool_call' ? [p.id] : [])));
    expect(streamIdCarrier('anthropic', sealer)).toBeUndefined();
  });

  it('request: reasoning goes back where it was, ids and tool results lose the carrier', () => {
    const res = answer();
    sealResponseSignatures(res, 'openai', sealer);
    const id = res.content.find((p) => p.type === 'tool_call')?.id ?? '';
    const req: ChatRequest = {
      model: 'm',
      stream: false,
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'hi' }] },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'Looking.' },
            { type: 'tool_call', id, name: 'f', arguments: '{}' },
          ],
        },
        { role: 'tool', content: [{ type: 'tool_result', toolCallId: id, content: 'ok' }] },
      ],
    };
    const dropped: unknown[] = [];
    openIdCarriers(req, sealer, (d) => dropped.push(d));
    expect(dropped).toEqual([]);
    expect(req.messages.slice(1)).toEqual([
      {
        role: 'assistant',
        content: [
          { type: 'reasoning', text: 'I think', signature: anthropic },
          { type: 'text', text: 'Looking.' },
          { type: 'reasoning', text: '', signature: gemini },
          { type: 'tool_call', id: 'call_1', name: 'f', arguments: '{}' },
        ],
      },
      { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_1', content: 'ok' }] },
    ]);
    // For a Gemini backend only Gemini's signature stays, on the reasoning just before its call.
    openRequestSignatures(req, 'gemini', sealer, () => undefined);
    expect(req.messages[1]?.content.map((p) => p.type)).toEqual(['text', 'reasoning', 'tool_call']);
  });

  it('request: a changed carrier is dropped and reported by place, the id still cleaned', () => {
    const id = idCarrying('call_1', [thought], sealer);
    const changed = `${id.slice(0, -1)}${id.endsWith('A') ? 'B' : 'A'}`;
    const req: ChatRequest = {
      model: 'm',
      stream: false,
      messages: [
        { role: 'assistant', content: [{ type: 'tool_call', id: changed, name: 'f', arguments: '{}' }] },
        { role: 'tool', content: [{ type: 'tool_result', toolCallId: changed, content: 'ok' }] },
      ],
    };
    const dropped: unknown[] = [];
    openIdCarriers(req, sealer, (d) => dropped.push(d));
    expect(dropped).toEqual([{ at: 'messages[0].content[0].id', reason: 'tampered' }]);
    expect(req.messages).toEqual([
      { role: 'assistant', content: [{ type: 'tool_call', id: 'call_1', name: 'f', arguments: '{}' }] },
      { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_1', content: 'ok' }] },
    ]);
  });
});
