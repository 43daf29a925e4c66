import { describe, expect, it } from 'vitest';
import { codecs } from './registry.js';

// Claude Code reading an image file (a screenshot) answers its tool call with a tool_result holding the
// image: each backend protocol gets it its own way instead of a 400.
const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const anthropicRequest = {
  model: 'm',
  max_tokens: 100,
  messages: [
    { role: 'user', content: 'What is on the screen?' },
    {
      role: 'assistant',
      content: [{ type: 'tool_use', id: 'toolu_1', name: 'Read', input: { file_path: '/tmp/shot.png' } }],
    },
    {
      role: 'user',
      content: [
        {
          type: 'tool_result',
          tool_use_id: 'toolu_1',
          content: [
            { type: 'text', text: 'Read 1 image' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
          ],
        },
        { type: 'text', text: 'Describe it.' },
      ],
    },
  ],
};
const decode = () => codecs.anthropic.decodeRequest(anthropicRequest, { model: 'm', stream: false });

describe('images in an Anthropic tool result', () => {
  it('are read beside the text', () => {
    const toolMessage = decode().messages[2];
    expect(toolMessage).toEqual({
      role: 'tool',
      content: [
        {
          type: 'tool_result',
          toolCallId: 'toolu_1',
          content: 'Read 1 image',
          images: [{ type: 'image', source: 'base64', mediaType: 'image/png', data: PNG }],
        },
      ],
    });
  });

  it('go to OpenAI chat in a user message after the tool message (which holds text only)', () => {
    const body = codecs.openai.encodeRequest(decode()) as { messages: unknown[] };
    expect(body.messages.slice(2)).toEqual([
      { role: 'tool', tool_call_id: 'toolu_1', content: 'Read 1 image' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Images from the result of tool call toolu_1:' },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
        ],
      },
      { role: 'user', content: 'Describe it.' },
    ]);
  });

  it('go to a Responses backend inside the function_call_output', () => {
    const body = codecs.responses.encodeRequest(decode()) as { input: Array<{ type: string }> };
    expect(body.input.find((item) => item.type === 'function_call_output')).toEqual({
      type: 'function_call_output',
      call_id: 'toolu_1',
      output: [
        { type: 'input_text', text: 'Read 1 image' },
        { type: 'input_image', detail: 'auto', image_url: `data:image/png;base64,${PNG}` },
      ],
    });
  });

  it('go to Gemini as parts right after the functionResponse, in the same turn (the user text joins it)', () => {
    const body = codecs.gemini.encodeRequest(decode()) as {
      contents: Array<{ role: string; parts: unknown[] }>;
    };
    expect(body.contents[2]).toEqual({
      role: 'user',
      parts: [
        { functionResponse: { id: 'toolu_1', name: 'Read', response: { output: 'Read 1 image' } } },
        { inlineData: { mimeType: 'image/png', data: PNG } },
        { text: 'Describe it.' },
      ],
    });
  });

  it('go back to Anthropic as they came', () => {
    const body = codecs.anthropic.encodeRequest(decode()) as { messages: Array<{ content: unknown }> };
    expect(body.messages[2]?.content).toEqual(anthropicRequest.messages[2]?.content);
  });
});
