import { describe, expect, it } from 'vitest';
import type { ChatRequest, ChatResponse, ContentPart, ReasoningPart } from './canonical.js';
import {
  createSignatureSealer,
  isWrapped,
  openRequestSignatures,
  sealResponseSignatures,
  sealStreamEvent,
  signatureKey,
} from './signatures.js';

const SECRET = 'state-secret-for-tests-0123456789';
const sealer = createSignatureSealer(signatureKey(SECRET));
const anthropic = { family: 'anthropic', value: 'EqQBCkYIBhgCKkD+/a=' };

describe('reasoning signatures across families', () => {
  it('wraps as lip1.<family>.<payload>.<mac> and unwraps byte for byte', () => {
    const wrapped = sealer.wrap(anthropic);
    expect(wrapped).toMatch(/^lip1\.anthropic\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(isWrapped(wrapped)).toBe(true);
    expect(sealer.unwrap(wrapped)).toEqual(anthropic);
    expect(sealer.unwrap(sealer.wrap({ family: 'gemini', value: '' }))).toEqual({
      family: 'gemini',
      value: '',
    });
  });

  it('answers null for a changed family, payload or MAC', () => {
    const [prefix, family, payload, mac] = sealer.wrap(anthropic).split('.') as [
      string,
      string,
      string,
      string,
    ];
    const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    expect(sealer.unwrap([prefix, 'gemini', payload, mac].join('.'))).toBeNull();
    expect(sealer.unwrap([prefix, family, flip(payload), mac].join('.'))).toBeNull();
    expect(sealer.unwrap([prefix, family, payload, flip(mac)].join('.'))).toBeNull();
    expect(sealer.unwrap([prefix, family, payload, mac.slice(1)].join('.'))).toBeNull();
  });

  it('answers null for another key’s signature and for text that is not wrapped', () => {
    const other = createSignatureSealer(signatureKey('another-secret'));
    expect(sealer.unwrap(other.wrap(anthropic))).toBeNull();
    expect(sealer.unwrap(anthropic.value)).toBeNull();
    expect(isWrapped(anthropic.value)).toBe(false);
  });

  it('derives the same key from the same secret, a random one without', () => {
    expect(signatureKey(SECRET).equals(signatureKey(SECRET))).toBe(true);
    expect(signatureKey(undefined).equals(signatureKey(undefined))).toBe(false);
    const wrapped = sealer.wrap(anthropic);
    expect(wrapped).not.toContain(SECRET);
    expect(wrapped).not.toContain(signatureKey(SECRET).toString('base64url'));
  });

  it('refuses a family name that would break the format', () => {
    expect(() => sealer.wrap({ family: 'a.b', value: 'x' })).toThrow();
  });
});

describe('signatures on the request path', () => {
  const gemini = { family: 'gemini', value: 'CiQB+/gem==' };
  const request = (content: ContentPart[]): ChatRequest => ({
    model: 'm',
    stream: false,
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'hi' }] },
      { role: 'assistant', content },
    ],
  });

  it('opens a wrap for its own family, leaves another family’s reasoning out, keeps unsigned reasoning', () => {
    const req = request([
      { type: 'reasoning', text: 'g', signature: { family: 'anthropic', value: sealer.wrap(gemini) } },
      { type: 'reasoning', text: 'a', signature: { family: 'anthropic', value: 'raw-anthropic' } },
      { type: 'reasoning', text: 'u' },
      { type: 'tool_call', id: 'c', name: 'f', arguments: '{}' },
    ]);
    const dropped: unknown[] = [];
    openRequestSignatures(req, 'gemini', sealer, (d) => dropped.push(d));
    expect(req.messages[1]?.content).toEqual([
      { type: 'reasoning', text: 'g', signature: gemini },
      { type: 'reasoning', text: 'u' },
      { type: 'tool_call', id: 'c', name: 'f', arguments: '{}' },
    ]);
    expect(dropped).toEqual([]);
  });

  it('drops a changed or foreign wrap and reports its place only', () => {
    const other = createSignatureSealer(signatureKey('another-secret-0123456789abcdef'));
    const changed = sealer.wrap(gemini).replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    const req = request([
      { type: 'reasoning', text: 'x', signature: { family: 'anthropic', value: changed } },
      { type: 'reasoning', text: 'y', signature: { family: 'anthropic', value: other.wrap(gemini) } },
    ]);
    const dropped: unknown[] = [];
    openRequestSignatures(req, 'gemini', sealer, (d) => dropped.push(d));
    expect(req.messages[1]?.content).toEqual([]);
    expect(dropped).toEqual([
      { at: 'messages[1].content[0]', reason: 'tampered' },
      { at: 'messages[1].content[1]', reason: 'tampered' },
    ]);
  });

  it('wraps a foreign signature for the client, redacted thinking coming back redacted', () => {
    const res: ChatResponse = {
      id: 'r',
      model: 'm',
      stopReason: 'end_turn',
      usage: { inputTokens: 1, outputTokens: 1 },
      content: [
        { type: 'reasoning', text: '', signature: { family: 'anthropic', value: 'data' }, redacted: true },
        { type: 'reasoning', text: 'own', signature: gemini },
      ],
    };
    sealResponseSignatures(res, 'gemini', sealer);
    const [redacted, own] = res.content as [ReasoningPart, ReasoningPart];
    expect(own.signature).toEqual(gemini);
    expect(redacted.signature?.family).toBe('gemini');
    const back = request([{ type: 'reasoning', text: '', signature: redacted.signature }]);
    openRequestSignatures(back, 'anthropic', sealer, () => undefined);
    expect(back.messages[1]?.content).toEqual([
      { type: 'reasoning', text: '', signature: { family: 'anthropic', value: 'data' }, redacted: true },
    ]);
    const event = sealStreamEvent(
      { type: 'reasoning_signature', signature: { family: 'openai', value: 'enc' } },
      'anthropic',
      sealer,
    );
    expect(event.type === 'reasoning_signature' && sealer.unwrap(event.signature.value)).toEqual({
      family: 'openai',
      value: 'enc',
    });
  });
});
