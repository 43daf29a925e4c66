import { describe, expect, it } from 'vitest';
import type { ChatResponse } from './canonical.js';
import { codecs } from './registry.js';

// A backend's usage breakdown (prompt tokens read from the cache, reasoning tokens) reaches a client of
// another protocol in that protocol's own members, and is left out where the backend gave none.
const openaiAnswer = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-x',
  choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
  usage: {
    prompt_tokens: 11,
    completion_tokens: 9,
    total_tokens: 20,
    prompt_tokens_details: { cached_tokens: 3 },
    completion_tokens_details: { reasoning_tokens: 4 },
  },
};

describe('usage breakdown across protocols', () => {
  const canonical = codecs.openai.decodeResponse(openaiAnswer);

  it('is read from each protocol into the canonical usage', () => {
    expect(canonical.usage).toEqual({
      inputTokens: 11,
      outputTokens: 9,
      cachedInputTokens: 3,
      reasoningTokens: 4,
    });
    const gemini = codecs.gemini.decodeResponse({
      candidates: [{ content: { role: 'model', parts: [{ text: 'hi' }] }, finishReason: 'STOP' }],
      usageMetadata: {
        promptTokenCount: 11,
        candidatesTokenCount: 5,
        thoughtsTokenCount: 4,
        cachedContentTokenCount: 3,
      },
    });
    expect(gemini.usage).toEqual(canonical.usage);
    const responses = codecs.responses.decodeResponse({
      id: 'resp_1',
      object: 'response',
      model: 'gpt-x',
      status: 'completed',
      output: [],
      usage: {
        input_tokens: 11,
        input_tokens_details: { cached_tokens: 3 },
        output_tokens: 9,
        output_tokens_details: { reasoning_tokens: 4 },
      },
    });
    expect(responses.usage).toEqual(canonical.usage);
  });

  it('is written in each protocol’s members', () => {
    expect(codecs.responses.encodeResponse(canonical).usage).toEqual({
      input_tokens: 11,
      input_tokens_details: { cached_tokens: 3 },
      output_tokens: 9,
      output_tokens_details: { reasoning_tokens: 4 },
      total_tokens: 20,
    });
    // Anthropic's input_tokens leave the cache reads out; it has no member for reasoning tokens.
    expect(codecs.anthropic.encodeResponse(canonical).usage).toEqual({
      input_tokens: 8,
      cache_read_input_tokens: 3,
      output_tokens: 9,
    });
    // Gemini counts thoughts apart from the candidates' tokens.
    expect(codecs.gemini.encodeResponse(canonical).usageMetadata).toEqual({
      promptTokenCount: 11,
      candidatesTokenCount: 5,
      thoughtsTokenCount: 4,
      cachedContentTokenCount: 3,
      totalTokenCount: 20,
    });
    expect(JSON.parse(codecs.gemini.encodeResponseText!(canonical)).usageMetadata).toEqual(
      codecs.gemini.encodeResponse(canonical).usageMetadata,
    );
    expect(codecs.openai.encodeResponse(canonical).usage).toEqual(openaiAnswer.usage);
  });

  it('is left out where the backend gave none', () => {
    const plain: ChatResponse = { ...canonical, usage: { inputTokens: 11, outputTokens: 9 } };
    expect(codecs.openai.encodeResponse(plain).usage).toEqual({
      prompt_tokens: 11,
      completion_tokens: 9,
      total_tokens: 20,
    });
    expect(codecs.anthropic.encodeResponse(plain).usage).toEqual({ input_tokens: 11, output_tokens: 9 });
    expect(codecs.gemini.encodeResponse(plain).usageMetadata).toEqual({
      promptTokenCount: 11,
      candidatesTokenCount: 9,
      totalTokenCount: 20,
    });
  });

  it('comes through a translated stream: OpenAI chat backend to a Responses client', () => {
    const decoder = codecs.openai.createStreamDecoder();
    const encoder = codecs.responses.createStreamEncoder({ model: 'gpt-x', id: 'resp_1' });
    const chunk = (body: object) => ({ data: JSON.stringify(body) });
    const events = [
      chunk({ id: 'c', choices: [{ index: 0, delta: { role: 'assistant', content: 'hi' } }] }),
      chunk({ id: 'c', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }),
      chunk({ id: 'c', choices: [], usage: openaiAnswer.usage }),
      { data: '[DONE]' },
    ].flatMap((m) => decoder.push(m));
    const out = events.map((e) => encoder.encode(e)).join('');
    const completed = out
      .split('\n\n')
      .find((e) => e.includes('response.completed'))!
      .split('\n')
      .find((l) => l.startsWith('data: '))!;
    const usage = (JSON.parse(completed.slice(6)) as { response: { usage: unknown } }).response.usage;
    expect(usage).toMatchObject({
      input_tokens_details: { cached_tokens: 3 },
      output_tokens_details: { reasoning_tokens: 4 },
    });
  });
});
