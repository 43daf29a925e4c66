/**
 * The canonical chat model every protocol codec decodes into and encodes from. One codec per protocol keeps
 * translation at 2N mappings instead of N×N converters. Anything a protocol can say that this model cannot
 * hold is rejected by the decoder with a 400 naming the field, except hints whose loss changes only cost,
 * caching, telemetry or beta behaviour: those are dropped with notice (`ChatRequest.dropped`).
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
  /**
   * Images the tool returned beside its text (an Anthropic `tool_result` holding `image` blocks: Claude Code
   * reading a screenshot). Each protocol carries them its own way (README, "Fields that do not translate").
   */
  images?: ImagePart[] | undefined;
  /** The tool reported a failure (Anthropic `is_error`, Gemini `response.error`). */
  isError?: boolean | undefined;
}

/**
 * An opaque reasoning signature and the family that made it (README, "Reasoning between families"): it goes
 * back to that family byte for byte, and through a client of another family only wrapped (`signatures.ts`).
 */
export interface Signature {
  /** `anthropic`, `gemini` or `openai` (Responses `encrypted_content`): see `FAMILIES` in `signatures.ts`. */
  family: string;
  value: string;
}

/**
 * The model's reasoning: Anthropic `thinking` / `redacted_thinking`, OpenAI chat `reasoning_content`,
 * Responses `reasoning` items, Gemini `thought` parts. A Gemini `thoughtSignature` on a function call or a
 * text part is a reasoning part with empty text placed just before that part.
 */
export interface ReasoningPart {
  type: 'reasoning';
  /** The reasoning (or its summary) as text; empty when only a signature was given. */
  text: string;
  signature?: Signature | undefined;
  /** Anthropic `redacted_thinking`: the reasoning is encrypted, its `data` is the signature's value. */
  redacted?: boolean | undefined;
}

export type ContentPart = TextPart | ImagePart | ToolCallPart | ToolResultPart | ReasoningPart;

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

/** How hard the model should think (README, "Reasoning controls"); the table in `reasoning.ts` maps it. */
export type ReasoningEffort = 'minimal' | 'low' | 'medium' | 'high' | 'max';

/**
 * Reasoning asked for by the client, whatever its protocol called it (Anthropic `thinking` and
 * `output_config.effort`, OpenAI `reasoning_effort`, Responses `reasoning.effort`, Gemini `thinkingConfig`).
 * Absent when the client asked for none or turned it off: then the backend runs at its default.
 */
export interface ReasoningControl {
  /** `adaptive`: the model decides how much to think (Anthropic `adaptive`, Gemini budget -1). */
  mode: 'enabled' | 'adaptive';
  effort?: ReasoningEffort | undefined;
  /** A token budget for thinking, when the client gave one. */
  budgetTokens?: number | undefined;
  /** The client wants the model's thoughts in the answer (Gemini `includeThoughts`). */
  includeThoughts?: boolean | undefined;
  /**
   * Set by the session (`!/set(reasoning=…)`, README "In-chat commands"), which replaces the client's own
   * settings: sampling that a backend refuses beside reasoning gives way, not the reasoning.
   */
  insist?: boolean | undefined;
}

/** Structured output: the answer is a JSON object, of a given schema or any. */
export type ResponseFormat =
  | { type: 'json' }
  | {
      type: 'json_schema';
      /** OpenAI requires a name; other protocols have none. */
      name?: string | undefined;
      description?: string | undefined;
      schema: Record<string, unknown>;
      strict?: boolean | undefined;
    };

/**
 * Settings an encoder may have to drop for its backend, each with the client's own field paths it was read
 * from, so that the notice names what the client sent.
 */
export interface SourcePaths {
  topK?: string[] | undefined;
  parallelToolCalls?: string[] | undefined;
  reasoning?: string[] | undefined;
  responseFormat?: string[] | undefined;
}

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
  reasoning?: ReasoningControl | undefined;
  /**
   * The session turned reasoning off (`!/set(reasoning=off)`): a backend whose models think unless told not
   * to (Gemini) is told so; the others get nothing, their default.
   */
  reasoningOff?: boolean | undefined;
  /** Where the droppable settings came from in the client's request (see `SourcePaths`). */
  sourcePaths?: SourcePaths | undefined;
  /**
   * Field paths of the client's request left out with notice because their loss changes only cost, caching,
   * telemetry or beta behaviour (README, "Fields that do not translate"); decoders and encoders append with
   * `dropWithNotice`. The pipeline reports them in `x-proxy-dropped`, the capture and the debug log.
   */
  dropped?: string[] | undefined;
}

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'content_filter';

export interface Usage {
  /** Every prompt token, those read from a prompt cache included. */
  inputTokens: number;
  /** Every output token, reasoning included. */
  outputTokens: number;
  /** Of `inputTokens`, those read from the provider's prompt cache — when the backend said. */
  cachedInputTokens?: number | undefined;
  /** Of `outputTokens`, the reasoning's — when the backend said. */
  reasoningTokens?: number | undefined;
}

/**
 * `usage` with the breakdown a backend gave (`cached`, `reasoning`: its numbers, or anything else when it
 * gave none): members only for numbers, so that a usage without a breakdown stays two members.
 */
export function withBreakdown(usage: Usage, cached: unknown, reasoning: unknown): Usage {
  if (typeof cached === 'number') usage.cachedInputTokens = cached;
  if (typeof reasoning === 'number') usage.reasoningTokens = reasoning;
  return usage;
}

/** Response content: the model only ever produces reasoning, text and tool calls. */
export type ResponsePart = TextPart | ToolCallPart | ReasoningPart;

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
  /** Reasoning text, streamed; a reasoning block ends at its signature or at the next other event. */
  | { type: 'reasoning'; text: string }
  /** The signature that closes the current reasoning block (or, redacted, a whole encrypted block). */
  | { type: 'reasoning_signature'; signature: Signature; redacted?: boolean | undefined }
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
