import { describe, expect, it } from 'vitest';
import { requestText } from './request-text.js';

describe('requestText', () => {
  it('reads an Anthropic count request: system, messages, tools, images; not the model, roles or types', () => {
    const found = requestText({
      model: 'claude-sonnet-4-5',
      system: [{ type: 'text', text: 'Be brief.' }],
      messages: [
        { role: 'user', content: 'What is the weather?' },
        {
          role: 'assistant',
          content: [{ type: 'tool_use', id: 'toolu_1', name: 'weather', input: { city: 'Paris' } }],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: 'Sunny' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          ],
        },
      ],
      tools: [{ name: 'weather', input_schema: { type: 'object' } }],
    });
    expect(found).toEqual({
      text: [
        'Be brief.',
        'What is the weather?',
        'weather',
        'Paris',
        'Sunny',
        '[{"name":"weather","input_schema":{"type":"object"}}]',
      ].join('\n'),
      messages: 3,
      images: 1,
      tools: true,
    });
  });

  it('reads a Gemini count request, also inside generateContentRequest', () => {
    const contents = [
      {
        role: 'user',
        parts: [{ text: 'Describe this' }, { inlineData: { mimeType: 'image/png', data: 'AA==' } }],
      },
    ];
    const plain = requestText({ contents });
    expect(plain).toEqual({ text: 'Describe this', messages: 1, images: 1, tools: false });
    expect(requestText({ generateContentRequest: { model: 'models/x', contents } })).toEqual(plain);
  });

  it('finds nothing in a request that holds nothing', () => {
    expect(requestText({ model: 'x', messages: [] })).toEqual({
      text: '',
      messages: 0,
      images: 0,
      tools: false,
    });
  });
});
