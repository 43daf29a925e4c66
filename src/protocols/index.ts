export type * from './canonical.js';
export type {
  CodecOptions,
  DecodeContext,
  ProtocolCodec,
  SseMessage,
  StreamDecoder,
  StreamEncoder,
  StreamMeta,
} from './codec.js';
export { createAnthropicCodec, DEFAULT_MAX_TOKENS } from './anthropic/codec.js';
export { createGeminiCodec } from './gemini/codec.js';
export { createOpenAICodec } from './openai/codec.js';
export { codecs } from './registry.js';
export { parseSse } from './sse.js';
export { translateStream } from './translate.js';
