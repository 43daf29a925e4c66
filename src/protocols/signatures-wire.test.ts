import { describe, expect, it } from 'vitest';
import { createSignatureSealer, signatureKey } from './signatures.js';
import { openWireSignatures } from './signatures-wire.js';
import { idCarrying } from './signatures-id.js';

const sealer = createSignatureSealer(signatureKey('wire-signatures-test-secret-0123456789'));
const gemini = { family: 'gemini', value: 'CiQB+/gem==' };
const anthropic = { family: 'anthropic', value: 'EqQB+/ant==' };

describe('wrapped signatures in a same-protocol body', () => {
  it('answers null when the body holds no wrap', () => {
    const body = {
      messages: [{ role: 'assistant', content: [{ type: 'thinking', thinking: 't', signature: 's' }] }],
    };
    expect(openWireSignatures(body, 'anthropic', sealer, () => undefined)).toBeNull();
    expect(openWireSignatures({ messages: [] }, 'openai', sealer, () => undefined)).toBeNull();
  });

  it('Anthropic: restores its own, leaves another family’s out, turns thinking off for the loop', () => {
    const body = {
      thinking: { type: 'enabled', budget_tokens: 2048 },
      messages: [
        { role: 'user', content: 'hi' },
        {
          role: 'assistant',
          content: [{ type: 'thinking', thinking: 'a', signature: sealer.wrap(anthropic) }],
        },
        { role: 'user', content: 'again' },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'g', signature: sealer.wrap(gemini) },
            { type: 'tool_use', id: 'c', name: 'f', input: {} },
          ],
        },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'c', content: 'ok' }] },
      ],
    };
    const copy = structuredClone(body);
    const opened = openWireSignatures(body, 'anthropic', sealer, () => undefined);
    expect(body).toEqual(copy);
    expect(opened?.dropped).toEqual(['thinking']);
    expect(opened?.body).toEqual({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'a', signature: anthropic.value }] },
        { role: 'user', content: 'again' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'c', name: 'f', input: {} }] },
        body.messages[4],
      ],
    });
  });

  it('Anthropic: a turn left empty goes, a changed wrap is reported by place', () => {
    const changed = `${sealer.wrap(anthropic).slice(0, -1)}~`;
    const body = {
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'x', signature: changed }] },
        { role: 'user', content: 'again' },
      ],
    };
    const at: string[] = [];
    const opened = openWireSignatures(body, 'anthropic', sealer, (place) => at.push(place));
    expect(at).toEqual(['messages[1].content[0].signature']);
    expect(opened?.body.messages).toEqual([body.messages[0], body.messages[2]]);
    expect(opened?.dropped).toEqual([]);
  });

  it('Gemini: the call keeps its own signature; another family’s thought goes, its call stays unsigned', () => {
    const body = {
      contents: [
        { role: 'user', parts: [{ text: 'hi' }] },
        {
          role: 'model',
          parts: [
            { text: 'a', thought: true, thoughtSignature: sealer.wrap(anthropic) },
            { functionCall: { name: 'f', args: {} }, thoughtSignature: sealer.wrap(gemini) },
            { functionCall: { name: 'g', args: {} }, thoughtSignature: sealer.wrap(anthropic) },
          ],
        },
      ],
    };
    const opened = openWireSignatures(body, 'gemini', sealer, () => undefined);
    expect(opened?.body.contents).toEqual([
      body.contents[0],
      {
        role: 'model',
        parts: [
          { functionCall: { name: 'f', args: {} }, thoughtSignature: gemini.value },
          { functionCall: { name: 'g', args: {} } },
        ],
      },
    ]);
  });

  it('Responses: encrypted_content restored for OpenAI, another family’s reasoning item left out', () => {
    const openai = { family: 'openai', value: 'gAAAA+/=' };
    const body = {
      input: [
        { type: 'reasoning', summary: [], encrypted_content: sealer.wrap(openai) },
        { type: 'reasoning', summary: [], encrypted_content: sealer.wrap(gemini) },
        { role: 'user', content: 'hi' },
      ],
    };
    const opened = openWireSignatures(body, 'responses', sealer, () => undefined);
    expect(opened?.body.input).toEqual([
      { type: 'reasoning', summary: [], encrypted_content: openai.value },
      { role: 'user', content: 'hi' },
    ]);
  });

  it('OpenAI chat: tool call ids and tool results lose their carrier, a changed one is reported', () => {
    const carried = idCarrying(
      'call_1',
      [{ part: { type: 'reasoning', text: '', signature: gemini }, lead: false }],
      sealer,
    );
    const changed = idCarrying(
      'call_2',
      [{ part: { type: 'reasoning', text: '', signature: gemini }, lead: false }],
      sealer,
    ).replace('call_2', 'call_3');
    const call = (id: string) => ({ id, type: 'function', function: { name: 'f', arguments: '{}' } });
    const body = {
      model: 'gpt',
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: null, tool_calls: [call(carried), call(changed), call('call_4')] },
        { role: 'tool', tool_call_id: carried, content: 'ok' },
        { role: 'tool', tool_call_id: changed, content: 'ok' },
        { role: 'tool', tool_call_id: 'call_4', content: 'ok' },
      ],
    };
    const copy = structuredClone(body);
    const at: string[] = [];
    const opened = openWireSignatures(body, 'openai', sealer, (place) => at.push(place));
    expect(body).toEqual(copy);
    expect(at).toEqual(['messages[1].tool_calls[1].id']);
    expect(opened?.body).toEqual({
      model: 'gpt',
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: null, tool_calls: [call('call_1'), call('call_3'), call('call_4')] },
        { role: 'tool', tool_call_id: 'call_1', content: 'ok' },
        { role: 'tool', tool_call_id: 'call_3', content: 'ok' },
        body.messages[4],
      ],
    });
  });
});
