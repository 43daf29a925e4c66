import { describe, expect, it } from 'vitest';
import type { ChatRequest, ChatResponse } from './canonical.js';
import { codecs } from './registry.js';
import type { Protocol } from './types.js';

const PROTOCOLS: Protocol[] = ['openai', 'anthropic', 'gemini'];
const PAIRS = PROTOCOLS.flatMap((a) => PROTOCOLS.map((b) => [a, b] as const));
const PNG = 'iVBORw0KGgo=';

/** A conversation every protocol can express: what must survive any trip. */
const request: ChatRequest = {
  model: 'm',
  system: 'You are terse.',
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'Weather in the photo’s city? 🌦' },
        { type: 'image', source: 'base64', mediaType: 'image/png', data: PNG },
        { type: 'image', source: 'url', url: 'https://example.com/city.png' },
      ],
    },
    {
      role: 'assistant',
      content: [
        { type: 'text', text: 'Checking two cities.' },
        { type: 'tool_call', id: 'call_a', name: 'weather', arguments: '{"city":"Paris"}' },
        { type: 'tool_call', id: 'call_b', name: 'time', arguments: '{"tz":"Europe/Rome"}' },
      ],
    },
    {
      role: 'tool',
      content: [
        { type: 'tool_result', toolCallId: 'call_a', content: 'rain' },
        { type: 'tool_result', toolCallId: 'call_b', content: '{"now":"12:00"}' },
      ],
    },
    { role: 'user', content: [{ type: 'text', text: 'Thanks!' }] },
  ],
  temperature: 0.7,
  topP: 0.9,
  maxTokens: 300,
  stop: ['STOP'],
  tools: [
    {
      name: 'weather',
      description: 'Weather by city',
      parameters: { type: 'object', properties: { city: { type: 'string' } } },
    },
    { name: 'time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } },
  ],
  toolChoice: { type: 'auto' },
  stream: true,
};

/** What the request means, without ids (Gemini has none) or protocol-specific spelling. */
function meaning(req: ChatRequest): unknown {
  const names = new Map<string, string>();
  for (const m of req.messages)
    for (const p of m.content) if (p.type === 'tool_call') names.set(p.id, p.name);
  return {
    system: req.system,
    messages: req.messages.map((m) => ({
      role: m.role,
      content: m.content.map((p) => {
        switch (p.type) {
          case 'text':
            return p;
          case 'image':
            return p.source === 'base64' ? p : { type: 'image', url: p.url };
          case 'tool_call':
            return { call: p.name, args: JSON.parse(p.arguments) as unknown };
          case 'tool_result':
            return { resultOf: names.get(p.toolCallId), content: p.content, isError: p.isError === true };
        }
      }),
    })),
    sampling: [req.temperature, req.topP, req.maxTokens, req.stop],
    tools: req.tools,
    toolChoice: req.toolChoice,
    stream: req.stream,
  };
}

const response: ChatResponse = {
  id: 'resp_1',
  model: 'm',
  content: [
    { type: 'text', text: 'Let me look — ✓' },
    { type: 'tool_call', id: 'call_1', name: 'weather', arguments: '{"city":"Oslo","days":[1,2]}' },
  ],
  stopReason: 'tool_use',
  usage: { inputTokens: 12, outputTokens: 34 },
};

const responseMeaning = (res: ChatResponse): unknown => ({
  content: res.content.map((p) =>
    p.type === 'tool_call' ? { call: p.name, args: JSON.parse(p.arguments) as unknown } : p,
  ),
  stopReason: res.stopReason,
  usage: res.usage,
});

describe.each(PAIRS)('round trip %s → %s and back', (a, b) => {
  it('keeps the meaning of a request', () => {
    const ctx = { model: 'm', stream: true };
    const first = codecs[a].decodeRequest(codecs[a].encodeRequest(request), ctx);
    const across = codecs[b].decodeRequest(codecs[b].encodeRequest(first), ctx);
    const back = codecs[a].decodeRequest(codecs[a].encodeRequest(across), ctx);
    expect(meaning(first)).toEqual(meaning(request));
    expect(meaning(across)).toEqual(meaning(request));
    expect(meaning(back)).toEqual(meaning(request));
  });

  it('keeps the meaning of a response', () => {
    const first = codecs[a].decodeResponse(codecs[a].encodeResponse(response));
    const across = codecs[b].decodeResponse(JSON.parse(JSON.stringify(codecs[b].encodeResponse(first))));
    const back = codecs[a].decodeResponse(codecs[a].encodeResponse(across));
    expect(responseMeaning(back)).toEqual(responseMeaning(response));
  });

  it.each(['end_turn', 'max_tokens', 'content_filter'] as const)('keeps stop reason %s', (stopReason) => {
    const textOnly: ChatResponse = { ...response, content: [{ type: 'text', text: 'x' }], stopReason };
    const across = codecs[b].decodeResponse(
      codecs[b].encodeResponse(codecs[a].decodeResponse(codecs[a].encodeResponse(textOnly))),
    );
    expect(across.stopReason).toBe(stopReason);
  });
});
