/**
 * The canonical chat model every protocol codec decodes into and encodes from. One codec per protocol keeps
 * translation at 2N mappings instead of N×N converters. Anything a protocol can say that this model cannot
 * hold is rejected by the decoder with a 400 naming the field, never dropped.
 */
import type { ErrorInfo } from './error-envelopes.js';

export type Role = 'user' | 'assistant' | 'tool';

export interface TextPart {
  type: 'text';
  text: string;
}

/** An image, either inline (base64 + media type) or by URL. */
export type ImagePart =
  | { type: 'image'; source: 'base64'; mediaType: string; data: string }
  | { type: 'image'; source: 'url'; url: string; mediaType?: string | undefined };

export interface ToolCallPart {
  type: 'tool_call';
  id: string;
  name: string;
  /** JSON text of the arguments object, exactly as the model produced it. */
  arguments: string;
}

export interface ToolResultPart {
  type: 'tool_result';
  toolCallId: string;
  /** The called function's name when the source protocol says it (OpenAI legacy, Gemini). */
  name?: string | undefined;
  content: string;
  /** The tool reported a failure (Anthropic `is_error`, Gemini `response.error`). */
  isError?: boolean | undefined;
}

export type ContentPart = TextPart | ImagePart | ToolCallPart | ToolResultPart;

export interface Message {
  role: Role;
  content: ContentPart[];
}

export interface ToolDefinition {
  name: string;
  description?: string | undefined;
  /** JSON schema of the arguments object. */
  parameters: Record<string, unknown>;
}

export type ToolChoice =
  { type: 'auto' } | { type: 'none' } | { type: 'required' } | { type: 'tool'; name: string };

/**
 * Structured output: the answer must be JSON (`json_object`), or JSON matching a schema (`json_schema`).
 * OpenAI chat `response_format`, Responses `text.format`.
 */
export type ResponseFormat =
  | { type: 'json_object' }
  | {
      type: 'json_schema';
      name: string;
      schema: Record<string, unknown>;
      description?: string | undefined;
      strict?: boolean | undefined;
    };

export interface ChatRequest {
  model: string;
  system?: string | undefined;
  messages: Message[];
  temperature?: number | undefined;
  topP?: number | undefined;
  topK?: number | undefined;
  maxTokens?: number | undefined;
  stop?: string[] | undefined;
  presencePenalty?: number | undefined;
  frequencyPenalty?: number | undefined;
  seed?: number | undefined;
  tools?: ToolDefinition[] | undefined;
  toolChoice?: ToolChoice | undefined;
  /** False when the client forbade parallel tool calls. */
  parallelToolCalls?: boolean | undefined;
  /** Structured output; absent for plain text. */
  responseFormat?: ResponseFormat | undefined;
  stream: boolean;
  /**
   * Field paths of the client's request left out with notice because their loss changes only cost, caching,
   * telemetry or beta behaviour (README, "Fields that do not translate"); decoders and encoders append with
   * `dropWithNotice`. The pipeline reports them in `x-proxy-dropped`, the capture and the debug log.
   */
  dropped?: string[] | undefined;
}

export type StopReason =
  'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'content_filter' | 'error';

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

/** Response content: the model only ever produces text and tool calls. */
export type ResponsePart = TextPart | ToolCallPart;

export interface ChatResponse {
  id: string;
  model: string;
  content: ResponsePart[];
  stopReason: StopReason;
  /** The stop sequence that ended the answer, when the backend says which one. */
  stopSequence?: string | undefined;
  usage: Usage;
}

export type StreamEvent =
  | { type: 'start'; id?: string | undefined; model?: string | undefined; inputTokens?: number | undefined }
  | { type: 'text'; text: string }
  /** `index` numbers tool calls within one answer, from 0, in the order they start. */
  | { type: 'tool_call_start'; index: number; id: string; name: string }
  | { type: 'tool_call_delta'; index: number; arguments: string }
  | {
      type: 'finish';
      stopReason: StopReason;
      stopSequence?: string | undefined;
      usage?: Usage | undefined;
    }
  | { type: 'error'; error: ErrorInfo };

/** One model a backend offers, as its model list names it; each codec encodes a list of them its own way. */
export interface ModelInfo {
  id: string;
  ownedBy: string;
}
