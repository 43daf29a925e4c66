import { createAnthropicCodec } from './anthropic/codec.js';
import type { ProtocolCodec } from './codec.js';
import { createGeminiCodec } from './gemini/codec.js';
import { createOpenAICodec } from './openai/codec.js';
import { createResponsesCodec } from './responses/codec.js';
import type { Protocol } from './types.js';

/** One codec per protocol, built once and shared: codecs are stateless, their stream coders are not. */
export const codecs: Record<Protocol, ProtocolCodec> = {
  openai: createOpenAICodec(),
  anthropic: createAnthropicCodec(),
  gemini: createGeminiCodec(),
  responses: createResponsesCodec(),
};
