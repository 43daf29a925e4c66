import { describe, expect, it } from 'vitest';
import type { ChatRequest } from '../canonical.js';
import { createGeminiCodec } from './codec.js';

const codec = createGeminiCodec();
const ctx = { model: 'gemini-x', stream: false };
const PNG = 'iVBORw0KGgo=';

const wireRequest = {
  systemInstruction: { parts: [{ text: 'Be brief.' }] },
  contents: [
    {
      role: 'user',
      parts: [
        { text: 'Look' },
        { inlineData: { mimeType: 'image/png', data: PNG } },
        { fileData: { mimeType: 'image/jpeg', fileUri: 'https://example.com/a.jpg' } },
      ],
    },
    {
      role: 'model',
      parts: [
        { functionCall: { name: 'weather', args: { city: 'Paris' } } },
        { functionCall: { name: 'weather', args: { city: 'Rome' } } },
      ],
    },
    {
      role: 'user',
      parts: [
        { functionResponse: { name: 'weather', response: { output: 'rain' } } },
        { functionResponse: { name: 'weather', response: { temp: 30 } } },
      ],
    },
  ],
  generationConfig: {
    temperature: 0.4,
    topP: 0.8,
    topK: 20,
    maxOutputTokens: 64,
    stopSequences: ['END'],
    candidateCount: 1,
  },
  tools: [
    {
      functionDeclarations: [
        {
          name: 'weather',
          description: 'Weather',
          parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } } },
        },
      ],
    },
  ],
  toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['weather'] } },
};

const canonical: ChatRequest = {
  model: 'gemini-x',
  system: 'Be brief.',
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'Look' },
        { type: 'image', source: 'base64', mediaType: 'image/png', data: PNG },
        { type: 'image', source: 'url', url: 'https://example.com/a.jpg', mediaType: 'image/jpeg' },
      ],
    },
    {
      role: 'assistant',
      content: [
        { type: 'tool_call', id: 'call_1_0', name: 'weather', arguments: '{"city":"Paris"}' },
        { type: 'tool_call', id: 'call_1_1', name: 'weather', arguments: '{"city":"Rome"}' },
      ],
    },
    {
      role: 'tool',
      content: [
        { type: 'tool_result', toolCallId: 'call_1_0', name: 'weather', content: 'rain', isError: false },
        {
          type: 'tool_result',
          toolCallId: 'call_1_1',
          name: 'weather',
          content: '{"temp":30}',
          isError: false,
        },
      ],
    },
  ],
  temperature: 0.4,
  topP: 0.8,
  topK: 20,
  maxTokens: 64,
  stop: ['END'],
  tools: [
    {
      name: 'weather',
      description: 'Weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } } },
    },
  ],
  toolChoice: { type: 'tool', name: 'weather' },
  stream: false,
  sourcePaths: { topK: ['generationConfig.topK'] },
};

const strip = <T>(o: T): T => JSON.parse(JSON.stringify(o)) as T;

describe('Gemini codec: requests', () => {
  it('decodes contents, images, function calls with synthesised ids paired to responses by name', () => {
    expect(strip(codec.decodeRequest(wireRequest, ctx))).toEqual(canonical);
  });

  it('encodes canonical into generateContent, naming function responses from the matching call', () => {
    const fromOpenAI: ChatRequest = {
      ...canonical,
      messages: [
        canonical.messages[0]!,
        canonical.messages[1]!,
        { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_1_0', content: 'rain' }] },
        { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_1_1', content: '{"temp":30}' }] },
      ],
    };
    expect(codec.encodeRequest(fromOpenAI)).toEqual({
      ...wireRequest,
      generationConfig: {
        temperature: 0.4,
        topP: 0.8,
        topK: 20,
        maxOutputTokens: 64,
        stopSequences: ['END'],
      },
      tools: [
        {
          functionDeclarations: [
            {
              name: 'weather',
              description: 'Weather',
              parametersJsonSchema: { type: 'object', properties: { city: { type: 'string' } } },
            },
          ],
        },
      ],
      // Each call and its response carry the call's id.
      contents: [
        wireRequest.contents[0],
        {
          role: 'model',
          parts: [
            { functionCall: { id: 'call_1_0', name: 'weather', args: { city: 'Paris' } } },
            { functionCall: { id: 'call_1_1', name: 'weather', args: { city: 'Rome' } } },
          ],
        },
        {
          role: 'user',
          parts: [
            { functionResponse: { id: 'call_1_0', name: 'weather', response: { output: 'rain' } } },
            { functionResponse: { id: 'call_1_1', name: 'weather', response: { temp: 30 } } },
          ],
        },
      ],
    });
  });

  it('puts function responses in the order of the calls they answer, with their images', () => {
    // As a Responses (or OpenAI, Anthropic) client may send them: B's output, then A's.
    const req: ChatRequest = {
      model: 'm',
      stream: false,
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'run both' }] },
        {
          role: 'assistant',
          content: [
            { type: 'tool_call', id: 'call_A', name: 'shell', arguments: '{"command":"echo A"}' },
            { type: 'tool_call', id: 'call_B', name: 'shell', arguments: '{"command":"echo B"}' },
          ],
        },
        {
          role: 'tool',
          content: [
            {
              type: 'tool_result',
              toolCallId: 'call_B',
              content: 'result-B',
              images: [{ type: 'image', source: 'base64', mediaType: 'image/png', data: PNG }],
            },
          ],
        },
        { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_A', content: 'result-A' }] },
        { role: 'user', content: [{ type: 'text', text: 'and now?' }] },
      ],
    };
    expect((codec.encodeRequest(req).contents as unknown[]).slice(1)).toEqual([
      {
        role: 'model',
        parts: [
          { functionCall: { id: 'call_A', name: 'shell', args: { command: 'echo A' } } },
          { functionCall: { id: 'call_B', name: 'shell', args: { command: 'echo B' } } },
        ],
      },
      {
        role: 'user',
        parts: [
          { functionResponse: { id: 'call_A', name: 'shell', response: { output: 'result-A' } } },
          { functionResponse: { id: 'call_B', name: 'shell', response: { output: 'result-B' } } },
          { inlineData: { mimeType: 'image/png', data: PNG } },
          { text: 'and now?' },
        ],
      },
    ]);
  });

  it('wraps failed tool results in response.error and decodes them back as errors', () => {
    const req: ChatRequest = {
      model: 'm',
      stream: false,
      messages: [
        { role: 'assistant', content: [{ type: 'tool_call', id: 'toolu_9', name: 'f', arguments: '{}' }] },
        {
          role: 'tool',
          content: [{ type: 'tool_result', toolCallId: 'toolu_9', content: 'boom', isError: true }],
        },
      ],
    };
    const wire = codec.encodeRequest(req);
    expect((wire.contents as unknown[])[1]).toEqual({
      role: 'user',
      parts: [{ functionResponse: { id: 'toolu_9', name: 'f', response: { error: 'boom' } } }],
    });
    const back = codec.decodeRequest(wire, ctx);
    expect(back.messages[1]?.content[0]).toMatchObject({
      type: 'tool_result',
      content: 'boom',
      isError: true,
    });
  });

  it('refuses a tool result whose call it cannot name', () => {
    const req: ChatRequest = {
      model: 'm',
      stream: false,
      messages: [{ role: 'tool', content: [{ type: 'tool_result', toolCallId: 'nope', content: 'x' }] }],
    };
    expect(() => codec.encodeRequest(req)).toThrow(
      expect.objectContaining({ status: 400, param: 'messages[0].content[0]' }),
    );
  });

  it.each([
    [{ cachedContent: 'cachedContents/1' }, 'cachedContent'],
    [{ generationConfig: { responseMimeType: 'text/x.enum' } }, 'generationConfig.responseMimeType'],
    [
      { generationConfig: { thinkingConfig: { thinkingLevel: 'extreme' } } },
      'generationConfig.thinkingConfig.thinkingLevel',
    ],
    [{ generationConfig: { responseModalities: ['IMAGE'] } }, 'generationConfig.responseModalities'],
    [{ tools: [{ googleSearch: {} }] }, 'tools[0].googleSearch'],
    [
      { contents: [{ role: 'user', parts: [{ inlineData: { mimeType: 'application/pdf', data: 'x' } }] }] },
      'contents[0].parts[0].inlineData',
    ],
    [
      { contents: [{ role: 'user', parts: [{ functionResponse: { name: 'f', response: {} } }] }] },
      'contents[0].parts[0].functionResponse',
    ],
    [
      { contents: [{ role: 'user', parts: [{ executableCode: {} }] }] },
      'contents[0].parts[0].executableCode',
    ],
  ])('rejects %j with a 400 naming %s', (extra, param) => {
    const body = { contents: [{ role: 'user', parts: [{ text: 'hi' }] }], ...extra };
    expect(() => codec.decodeRequest(body, ctx)).toThrow(expect.objectContaining({ status: 400, param }));
  });

  it('accepts thinking turned off, as every other protocol runs by default', () => {
    const body = {
      contents: [{ parts: [{ text: 'hi' }] }],
      generationConfig: { thinkingConfig: { thinkingBudget: 0 } },
    };
    expect(codec.decodeRequest(body, ctx).messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'hi' }] },
    ]);
  });
});

describe('Gemini codec: responses', () => {
  it('decodes a function call answer as tool_use with a stable synthesised id', () => {
    const wire = {
      candidates: [
        {
          content: {
            role: 'model',
            parts: [{ text: 'Sure.' }, { functionCall: { name: 'weather', args: { city: 'Paris' } } }],
          },
          finishReason: 'STOP',
          index: 0,
        },
      ],
      usageMetadata: {
        promptTokenCount: 10,
        candidatesTokenCount: 5,
        thoughtsTokenCount: 2,
        totalTokenCount: 17,
      },
      modelVersion: 'gemini-x',
      responseId: 'r-1',
    };
    expect(strip(codec.decodeResponse(wire))).toEqual({
      id: 'r-1',
      model: 'gemini-x',
      content: [
        { type: 'text', text: 'Sure.' },
        { type: 'tool_call', id: 'call_r-1_0', name: 'weather', arguments: '{"city":"Paris"}' },
      ],
      stopReason: 'tool_use',
      usage: { inputTokens: 10, outputTokens: 7, reasoningTokens: 2 },
    });
  });

  it.each([
    ['MAX_TOKENS', 'max_tokens'],
    ['SAFETY', 'content_filter'],
    ['RECITATION', 'content_filter'],
    ['STOP', 'end_turn'],
  ])('maps finishReason %s to %s', (finishReason, stop) => {
    const wire = { candidates: [{ content: { parts: [{ text: 'x' }] }, finishReason }] };
    expect(codec.decodeResponse(wire).stopReason).toBe(stop);
  });

  it('treats a blocked prompt as content_filter', () => {
    expect(codec.decodeResponse({ promptFeedback: { blockReason: 'SAFETY' } })).toMatchObject({
      stopReason: 'content_filter',
      content: [],
    });
  });

  it('encodes a response as a GenerateContentResponse', () => {
    expect(
      codec.encodeResponse({
        id: 'msg_1',
        model: 'claude-x',
        content: [{ type: 'tool_call', id: 'toolu_1', name: 'f', arguments: '{"a":1}' }],
        stopReason: 'tool_use',
        usage: { inputTokens: 3, outputTokens: 4 },
      }),
    ).toEqual({
      candidates: [
        {
          content: { role: 'model', parts: [{ functionCall: { id: 'toolu_1', name: 'f', args: { a: 1 } } }] },
          finishReason: 'STOP',
          index: 0,
        },
      ],
      usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 4, totalTokenCount: 7 },
      modelVersion: 'claude-x',
      responseId: 'msg_1',
    });
  });
});

describe('Gemini codec: stream encoder', () => {
  it('writes text at once and holds streamed function arguments until the call is whole', () => {
    const enc = codec.createStreamEncoder({ model: 'gemini-x', id: 'r1' });
    expect(enc.encode({ type: 'start' })).toBe('');
    const text = enc.encode({ type: 'text', text: 'Hi' });
    expect(JSON.parse(text.slice(6))).toEqual({
      candidates: [{ content: { role: 'model', parts: [{ text: 'Hi' }] }, index: 0 }],
      modelVersion: 'gemini-x',
      responseId: 'r1',
    });
    expect(enc.encode({ type: 'tool_call_start', index: 0, id: 'c1', name: 'f' })).toBe('');
    expect(enc.encode({ type: 'tool_call_delta', index: 0, arguments: '{"a":' })).toBe('');
    expect(enc.encode({ type: 'tool_call_delta', index: 0, arguments: '1}' })).toBe('');
    const last = enc.encode({
      type: 'finish',
      stopReason: 'tool_use',
      usage: { inputTokens: 1, outputTokens: 2 },
    });
    expect(last.endsWith('\n\n')).toBe(true);
    expect(JSON.parse(last.slice(6))).toEqual({
      candidates: [
        {
          content: { role: 'model', parts: [{ functionCall: { id: 'c1', name: 'f', args: { a: 1 } } }] },
          finishReason: 'STOP',
          index: 0,
        },
      ],
      usageMetadata: { promptTokenCount: 1, candidatesTokenCount: 2, totalTokenCount: 3 },
      modelVersion: 'gemini-x',
      responseId: 'r1',
    });
  });

  it('encodes a mid-stream error the way @google/genai detects it', () => {
    expect(codec.encodeError({ status: 503, message: 'Overloaded', code: 'x' })).toBe(
      'data: {"error":{"code":503,"message":"Overloaded","status":"UNAVAILABLE"}}\n\n',
    );
  });
});

describe('Gemini codec: errors and models', () => {
  it('reads a Gemini error body, bare or wrapped in an array', () => {
    const body = { error: { code: 400, message: 'API key not valid.', status: 'INVALID_ARGUMENT' } };
    expect(codec.decodeError(400, JSON.stringify(body))).toEqual({
      status: 400,
      message: 'API key not valid.',
      code: 'invalid_request',
    });
    expect(codec.decodeError(400, JSON.stringify([body])).message).toBe('API key not valid.');
  });

  it('lists models in the /v1beta/models shape', () => {
    expect(codec.encodeModelList([{ id: 'gemini-x', ownedBy: 'gemini' }])).toEqual({
      models: [
        {
          name: 'models/gemini-x',
          displayName: 'gemini-x',
          supportedGenerationMethods: ['generateContent', 'streamGenerateContent'],
        },
      ],
    });
  });
});

describe('Gemini codec: answers that failed', () => {
  // No other protocol has a stop reason for these: read as a normal end, an agent would take an empty or cut
  // answer for the model's last word.
  it.each(['MALFORMED_FUNCTION_CALL', 'UNEXPECTED_TOOL_CALL', 'OTHER', 'LANGUAGE'])(
    'turns finishReason %s into a 502, whole or streamed',
    (reason) => {
      const answer = {
        candidates: [{ content: { role: 'model', parts: [] }, finishReason: reason, index: 0 }],
        usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 0, totalTokenCount: 3 },
      };
      expect(() => codec.decodeResponse(answer)).toThrow(
        expect.objectContaining({
          status: 502,
          code: 'upstream_incomplete',
          message: `Backend ended the answer with finishReason ${reason}`,
        }),
      );
      const decoder = codec.createStreamDecoder();
      const events = [
        ...decoder.push({
          data: JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: 'Let me' }] } }] }),
        }),
        ...decoder.push({ data: JSON.stringify(answer) }),
      ];
      expect(events.map((e) => e.type)).toEqual(['start', 'text', 'error']);
      expect(events.at(-1)).toEqual({
        type: 'error',
        error: {
          status: 502,
          code: 'upstream_incomplete',
          message: `Backend ended the answer with finishReason ${reason}`,
        },
      });
      expect(decoder.push({ data: JSON.stringify(answer) })).toEqual([]);
    },
  );
});
