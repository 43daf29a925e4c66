/** OpenAI chat completions ⇄ canonical. */
import type {
  ChatRequest,
  ContentPart,
  Message,
  ModelInfo,
  ReasoningControl,
  ResponseFormat,
  ResponsePart,
  StopReason,
  StreamEvent,
  ToolChoice,
  ToolDefinition,
  Usage,
} from '../canonical.js';
import { withBreakdown } from '../canonical.js';
import type {
  CodecOptions,
  ProtocolCodec,
  SseMessage,
  StreamDecoder,
  StreamEncoder,
  StreamMeta,
} from '../codec.js';
import { errorEnvelope, type ErrorInfo } from '../error-envelopes.js';
import {
  array,
  codeForStatus,
  dropHints,
  dropSetting,
  fallbackError,
  invalid,
  invert,
  isRecord,
  optInteger,
  optNumber,
  optString,
  optStringList,
  parseDataUrl,
  parseJson,
  record,
  rejectUnknownFields,
  sseData,
  string,
  untranslatable,
  type Json,
  CUT_TOOL_CALL,
  stoppedInsideCall,
} from '../shared.js';
import { effortFromWire, reasoningWord } from '../reasoning.js';

const FINISH_REASONS: Record<string, StopReason> = {
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  content_filter: 'content_filter',
  function_call: 'tool_use',
};
const CANONICAL_TO_FINISH: Record<StopReason, string> = {
  ...invert(FINISH_REASONS),
  end_turn: 'stop',
  stop_sequence: 'stop',
} as Record<StopReason, string>;

/** Request fields read below, plus hints that change nothing about the answer. */
const REQUEST_FIELDS = new Set([
  'model',
  'messages',
  'temperature',
  'top_p',
  'max_tokens',
  'max_completion_tokens',
  'stop',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'stream',
  'presence_penalty',
  'frequency_penalty',
  'seed',
  'reasoning_effort',
  'response_format',
  // Read by the proxy, not the backend: `include_usage` decides whether a translated stream ends with its
  // usage chunk (StreamMeta.includeUsage); the rest of it is transport detail.
  'stream_options',
]);

/**
 * Hints dropped with notice when the request is translated (README, "Fields that do not translate"): their
 * loss changes only cost, caching, telemetry or beta behaviour.
 */
const HINTS = [
  'store',
  'prompt_cache_key',
  'prompt_cache_retention',
  'metadata',
  'service_tier',
  'user',
  'safety_identifier',
];

/** Fields accepted only at their neutral value: anything else would change the answer untranslated. */
const NEUTRAL_VALUES: Record<string, (v: unknown) => boolean> = {
  n: (v) => v === 1,
  logprobs: (v) => v === false,
};

/** Every top-level field this codec knows: read, a hint, or accepted at its neutral value. */
const KNOWN_FIELDS = new Set([...REQUEST_FIELDS, ...HINTS, ...Object.keys(NEUTRAL_VALUES)]);

/** `reasoning_effort: "none"` turns reasoning off: the backend runs at its default. */
function decodeReasoning(value: unknown): ReasoningControl | undefined {
  const word = optString(value, 'reasoning_effort');
  if (word === undefined || word === 'none') return undefined;
  const effort = effortFromWire('openai', word);
  if (effort === undefined) throw invalid('reasoning_effort', `unknown effort '${word}'`);
  return { mode: 'enabled', effort };
}

/** `response_format`: text (the default), any JSON object, or JSON of a schema. */
function decodeResponseFormat(value: unknown): ResponseFormat | undefined {
  if (value === undefined || value === null) return undefined;
  const format = record(value, 'response_format');
  switch (format.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return { type: 'json' };
    case 'json_schema': {
      const spec = record(format.json_schema, 'response_format.json_schema');
      return {
        type: 'json_schema',
        name: optString(spec.name, 'response_format.json_schema.name'),
        description: optString(spec.description, 'response_format.json_schema.description'),
        schema:
          spec.schema === undefined
            ? { type: 'object' }
            : record(spec.schema, 'response_format.json_schema.schema'),
        strict: typeof spec.strict === 'boolean' ? spec.strict : undefined,
      };
    }
    default:
      throw untranslatable('response_format.type');
  }
}

function encodeResponseFormat(format: ResponseFormat): Json {
  if (format.type === 'json') return { type: 'json_object' };
  return {
    type: 'json_schema',
    json_schema: {
      // OpenAI requires a name: [a-zA-Z0-9_-], at most 64 characters.
      name: format.name ?? 'response',
      ...(format.description !== undefined ? { description: format.description } : {}),
      schema: format.schema,
      ...(format.strict !== undefined ? { strict: format.strict } : {}),
    },
  };
}

const MESSAGE_FIELDS = new Set([
  'role',
  'content',
  'name',
  'tool_calls',
  'tool_call_id',
  'refusal',
  'reasoning_content',
  'reasoning',
]);

/** OpenAI chat's reasoning has no signature: it is marked as OpenAI's with an empty one (see `signatures.ts`). */
const UNSIGNED = { family: 'openai', value: '' };

/** The reasoning text of a message or delta: `reasoning_content`, or `reasoning` where servers send that. */
function reasoningText(m: Json): string | undefined {
  const text = m.reasoning_content ?? m.reasoning;
  return typeof text === 'string' && text ? text : undefined;
}

function decodeText(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  return array(content, param)
    .map((p, i) => {
      const part = record(p, `${param}[${i}]`);
      if (part.type !== 'text')
        throw untranslatable(`${param}[${i}].type`, `'${String(part.type)}' is not allowed here`);
      return string(part.text, `${param}[${i}].text`);
    })
    .join('');
}

function decodeUserContent(content: unknown, param: string): ContentPart[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return array(content, param).map((p, i): ContentPart => {
    const at = `${param}[${i}]`;
    const part = record(p, at);
    if (part.type === 'text') return { type: 'text', text: string(part.text, `${at}.text`) };
    if (part.type === 'image_url') {
      const url = string(record(part.image_url, `${at}.image_url`).url, `${at}.image_url.url`);
      const inline = parseDataUrl(url);
      if (inline) return { type: 'image', source: 'base64', ...inline };
      if (url.startsWith('data:'))
        throw invalid(`${at}.image_url.url`, 'only base64 data URLs are supported');
      return { type: 'image', source: 'url', url };
    }
    throw untranslatable(`${at}.type`, `'${String(part.type)}' content cannot be translated`);
  });
}

function decodeToolCalls(value: unknown, param: string): ContentPart[] {
  if (value === undefined || value === null) return [];
  return array(value, param).map((c, i) => {
    const call = record(c, `${param}[${i}]`);
    if (call.type !== undefined && call.type !== 'function') throw untranslatable(`${param}[${i}].type`);
    const fn = record(call.function, `${param}[${i}].function`);
    return {
      type: 'tool_call',
      id: string(call.id, `${param}[${i}].id`),
      name: string(fn.name, `${param}[${i}].function.name`),
      arguments: optString(fn.arguments, `${param}[${i}].function.arguments`) ?? '',
    };
  });
}

function decodeMessages(value: unknown): { system: string | undefined; messages: Message[] } {
  const systems: string[] = [];
  const messages: Message[] = [];
  array(value, 'messages').forEach((m, i) => {
    const at = `messages[${i}]`;
    const msg = record(m, at);
    rejectUnknownFields(msg, MESSAGE_FIELDS, `${at}.`);
    switch (msg.role) {
      case 'system':
      case 'developer':
        systems.push(decodeText(msg.content, `${at}.content`));
        return;
      case 'user':
        messages.push({ role: 'user', content: decodeUserContent(msg.content, `${at}.content`) });
        return;
      case 'assistant': {
        const text = decodeText(msg.content, `${at}.content`);
        const refusal = optString(msg.refusal, `${at}.refusal`);
        const content: ContentPart[] = [];
        const reasoning = reasoningText(msg);
        if (reasoning) content.push({ type: 'reasoning', text: reasoning, signature: UNSIGNED });
        if (text) content.push({ type: 'text', text });
        if (refusal) content.push({ type: 'text', text: refusal });
        content.push(...decodeToolCalls(msg.tool_calls, `${at}.tool_calls`));
        messages.push({ role: 'assistant', content });
        return;
      }
      case 'tool': {
        const result: ContentPart = {
          type: 'tool_result',
          toolCallId: string(msg.tool_call_id, `${at}.tool_call_id`),
          content: decodeText(msg.content, `${at}.content`),
        };
        // Consecutive tool messages answer one assistant turn: canonically they are one tool message.
        const last = messages[messages.length - 1];
        if (last?.role === 'tool') last.content.push(result);
        else messages.push({ role: 'tool', content: [result] });
        return;
      }
      default:
        throw untranslatable(`${at}.role`, `'${String(msg.role)}' cannot be translated`);
    }
  });
  return { system: systems.length ? systems.join('\n\n') : undefined, messages };
}

function decodeTools(value: unknown): ToolDefinition[] | undefined {
  if (value === undefined || value === null) return undefined;
  return array(value, 'tools').map((t, i) => {
    const tool = record(t, `tools[${i}]`);
    if (tool.type !== 'function')
      throw untranslatable(`tools[${i}].type`, `'${String(tool.type)}' tools cannot be translated`);
    const fn = record(tool.function, `tools[${i}].function`);
    return {
      name: string(fn.name, `tools[${i}].function.name`),
      description: optString(fn.description, `tools[${i}].function.description`),
      parameters:
        fn.parameters === undefined
          ? { type: 'object', properties: {} }
          : record(fn.parameters, `tools[${i}].function.parameters`),
    };
  });
}

function decodeToolChoice(value: unknown): ToolChoice | undefined {
  if (value === undefined || value === null) return undefined;
  if (value === 'auto' || value === 'none' || value === 'required') return { type: value };
  const choice = record(value, 'tool_choice');
  if (choice.type === 'function') {
    return {
      type: 'tool',
      name: string(record(choice.function, 'tool_choice.function').name, 'tool_choice.function.name'),
    };
  }
  throw untranslatable('tool_choice');
}

/**
 * Texts the canonical message holds apart (two user messages in a row, merged into one turn; Claude Code's
 * reminder blocks beside the prompt) written as one string, a blank line between them: they stay apart, as
 * the other encoders keep them (Anthropic blocks, Gemini parts), in the one content shape every
 * OpenAI-compatible server takes (some refuse content parts, for an assistant's turn above all).
 */
const TEXT_SEPARATOR = '\n\n';

/** A message's content: its text as a plain string (one part: as it is, the common case), parts with images. */
function encodeContent(parts: ContentPart[], param: string): string | Json[] {
  const only = parts.length === 1 ? parts[0]! : undefined;
  if (only?.type === 'text') return only.text;
  if (parts.every((p) => p.type === 'text')) return parts.map((p) => p.text).join(TEXT_SEPARATOR);
  return parts.map((p) => {
    if (p.type === 'text') return { type: 'text', text: p.text };
    if (p.type === 'image') {
      const url = p.source === 'base64' ? `data:${p.mediaType};base64,${p.data}` : p.url;
      return { type: 'image_url', image_url: { url } };
    }
    throw invalid(param, `${p.type} cannot appear in this message`);
  });
}

function encodeMessages(req: ChatRequest): Json[] {
  const out: Json[] = req.system !== undefined ? [{ role: 'system', content: req.system }] : [];
  req.messages.forEach((msg, i) => {
    const at = `messages[${i}]`;
    const rest: ContentPart[] = [];
    /** Images tool results returned: a `tool` message holds text only, so they follow in a user message. */
    const toolImages: ContentPart[] = [];
    for (const part of msg.content) {
      // OpenAI carries each tool result as its own `tool` message.
      if (part.type === 'tool_result') {
        out.push({
          role: 'tool',
          tool_call_id: part.toolCallId,
          content: part.isError ? `Error: ${part.content}` : part.content,
        });
        if (part.images?.length) {
          toolImages.push({ type: 'text', text: `Images from the result of tool call ${part.toolCallId}:` });
          toolImages.push(...part.images);
        }
      } else rest.push(part);
    }
    if (toolImages.length > 0)
      out.push({ role: 'user', content: encodeContent(toolImages, `${at}.content`) });
    if (msg.role === 'assistant') {
      const calls = rest.filter((p) => p.type === 'tool_call');
      // Reasoning goes back as `reasoning_content` (servers that think in tool loops want it) when it is
      // OpenAI chat's own; another family's reasoning means nothing here.
      const reasoning = rest
        .map((p) => (p.type === 'reasoning' && p.signature?.family === 'openai' ? p.text : ''))
        .join('');
      const other = rest.filter((p) => p.type !== 'tool_call' && p.type !== 'reasoning');
      if (other.some((p) => p.type !== 'text'))
        throw untranslatable(`${at}.content`, 'images in assistant messages cannot be sent to OpenAI');
      const texts = other.flatMap((p) => (p.type === 'text' && p.text !== '' ? [p.text] : []));
      // A message that held only tool results has been fully written above.
      if (!rest.length && msg.content.length) return;
      out.push({
        role: 'assistant',
        // Texts of two assistant messages in a row stay apart, as a user's do (encodeContent).
        content: texts.length === 0 ? (calls.length ? null : '') : texts.join(TEXT_SEPARATOR),
        ...(reasoning ? { reasoning_content: reasoning } : {}),
        ...(calls.length
          ? {
              tool_calls: calls.map((c) => ({
                id: c.id,
                type: 'function',
                function: { name: c.name, arguments: c.arguments || '{}' },
              })),
            }
          : {}),
      });
    } else if (rest.length) {
      if (rest.some((p) => p.type === 'tool_call'))
        throw invalid(`${at}.content`, 'tool calls belong in assistant messages');
      out.push({ role: 'user', content: encodeContent(rest, `${at}.content`) });
    }
  });
  return out;
}

function encodeToolChoice(choice: ToolChoice): unknown {
  return choice.type === 'tool' ? { type: 'function', function: { name: choice.name } } : choice.type;
}

function decodeUsage(value: unknown): Usage | undefined {
  if (!isRecord(value)) return undefined;
  const prompt = isRecord(value.prompt_tokens_details) ? value.prompt_tokens_details : {};
  const completion = isRecord(value.completion_tokens_details) ? value.completion_tokens_details : {};
  return withBreakdown(
    { inputTokens: Number(value.prompt_tokens ?? 0), outputTokens: Number(value.completion_tokens ?? 0) },
    prompt.cached_tokens,
    completion.reasoning_tokens,
  );
}

function encodeUsage(u: Usage): Json {
  return {
    prompt_tokens: u.inputTokens,
    completion_tokens: u.outputTokens,
    total_tokens: u.inputTokens + u.outputTokens,
    ...(u.cachedInputTokens !== undefined
      ? { prompt_tokens_details: { cached_tokens: u.cachedInputTokens } }
      : {}),
    ...(u.reasoningTokens !== undefined
      ? { completion_tokens_details: { reasoning_tokens: u.reasoningTokens } }
      : {}),
  };
}

class OpenAIStreamDecoder implements StreamDecoder {
  readonly textRepeats = true;
  private started = false;
  private finishReason: StopReason | undefined;
  private usage: Usage | undefined;
  private finished = false;
  /** Wire tool-call index → [canonical index, call id]: some servers reuse index 0 for every call. */
  private readonly calls = new Map<number, { index: number; id: string }>();
  private nextIndex = 0;
  /** Reasoning was streamed and not yet closed by another event. */
  private reasoning = false;

  /** Reasoning ends where anything else starts: closed with OpenAI's empty signature (see `UNSIGNED`). */
  private closeReasoning(out: StreamEvent[]): void {
    this.reasoning = false;
    out.push({ type: 'reasoning_signature', signature: UNSIGNED });
  }

  push(msg: SseMessage): StreamEvent[] {
    if (this.finished) return [];
    if (msg.data.trim() === '[DONE]') return this.finish();
    const chunk = parseJson(msg.data);
    if (!isRecord(chunk)) return [];
    if (isRecord(chunk.error)) {
      this.finished = true;
      return [{ type: 'error', error: errorFromBody(chunk, undefined) }];
    }
    const out: StreamEvent[] = [];
    if (!this.started) {
      this.started = true;
      out.push({ type: 'start', id: optStr(chunk.id), model: optStr(chunk.model) });
    }
    this.usage = decodeUsage(chunk.usage) ?? this.usage;
    const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
    if (!isRecord(choice)) return out;
    const delta = isRecord(choice.delta) ? choice.delta : {};
    const thought = reasoningText(delta);
    if (thought !== undefined) {
      this.reasoning = true;
      out.push({ type: 'reasoning', text: thought });
    } else if (
      this.reasoning &&
      (delta.content || delta.refusal || delta.tool_calls || typeof choice.finish_reason === 'string')
    )
      this.closeReasoning(out);
    if (typeof delta.content === 'string' && delta.content) out.push({ type: 'text', text: delta.content });
    if (typeof delta.refusal === 'string' && delta.refusal) out.push({ type: 'text', text: delta.refusal });
    if (Array.isArray(delta.tool_calls)) for (const call of delta.tool_calls) this.toolCall(call, out);
    if (typeof choice.finish_reason === 'string')
      this.finishReason = FINISH_REASONS[choice.finish_reason] ?? 'end_turn';
    return out;
  }

  private toolCall(value: unknown, out: StreamEvent[]): void {
    if (!isRecord(value)) return;
    const fn = isRecord(value.function) ? value.function : {};
    const wireIndex = typeof value.index === 'number' ? value.index : 0;
    let call = this.calls.get(wireIndex);
    if (typeof value.id === 'string' && value.id && value.id !== call?.id) {
      call = { index: this.nextIndex++, id: value.id };
      this.calls.set(wireIndex, call);
      out.push({ type: 'tool_call_start', index: call.index, id: call.id, name: optStr(fn.name) ?? '' });
    }
    if (call && typeof fn.arguments === 'string' && fn.arguments) {
      out.push({ type: 'tool_call_delta', index: call.index, arguments: fn.arguments });
    }
  }

  private finish(): StreamEvent[] {
    if (this.finished || this.finishReason === undefined) return [];
    this.finished = true;
    const out: StreamEvent[] = [];
    if (this.reasoning) this.closeReasoning(out);
    out.push({ type: 'finish', stopReason: this.finishReason, usage: this.usage });
    return out;
  }

  end(): StreamEvent[] {
    return this.finish();
  }
}

function optStr(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

class OpenAIStreamEncoder implements StreamEncoder {
  done = false;
  failed = false;
  private started = false;
  private readonly base: Json;
  /** Every chunk's JSON up to its delta, written once: per event only the delta is serialised. */
  private readonly head: string;

  private readonly includeUsage: boolean;
  /** Each tool call's arguments so far (by index), for the finish to tell a call the output limit cut. */
  private readonly callArguments = new Map<number, string>();

  constructor(meta: StreamMeta, created: number) {
    this.base = { id: meta.id, object: 'chat.completion.chunk', created, model: meta.model };
    this.includeUsage = meta.includeUsage === true;
    const base = JSON.stringify(this.base);
    this.head = `data: ${base.slice(0, -1)},"choices":[{"index":0,"delta":`;
  }

  /** What `sseData({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason }] })` writes. */
  private chunk(delta: Json, finishReason: string | null = null): string {
    const finish = finishReason === null ? 'null' : JSON.stringify(finishReason);
    return `${this.head}${JSON.stringify(delta)},"logprobs":null,"finish_reason":${finish}}]}\n\n`;
  }

  encode(event: StreamEvent): string {
    if (this.done) return '';
    let out = '';
    if (!this.started && event.type !== 'error') {
      this.started = true;
      out += this.chunk({ role: 'assistant', content: '' });
    }
    switch (event.type) {
      case 'start':
        return out;
      case 'text':
        // What `chunk({ content })` writes, without the delta's object.
        return `${out}${this.head}{"content":${JSON.stringify(event.text)}},"logprobs":null,"finish_reason":null}]}\n\n`;
      case 'reasoning':
        return out + this.chunk({ reasoning_content: event.text });
      case 'reasoning_signature':
        // OpenAI chat has no place for a signature.
        return out;
      case 'tool_call_start':
        this.callArguments.set(event.index, '');
        return (
          out +
          this.chunk({
            tool_calls: [
              {
                index: event.index,
                id: event.id,
                type: 'function',
                function: { name: event.name, arguments: '' },
              },
            ],
          })
        );
      case 'tool_call_delta':
        this.callArguments.set(event.index, (this.callArguments.get(event.index) ?? '') + event.arguments);
        return (
          out + this.chunk({ tool_calls: [{ index: event.index, function: { arguments: event.arguments } }] })
        );
      case 'finish':
        if (stoppedInsideCall(event.stopReason, this.callArguments.values()))
          return out + this.encode({ type: 'error', error: CUT_TOOL_CALL });
        this.done = true;
        out += this.chunk({}, CANONICAL_TO_FINISH[event.stopReason]);
        if (event.usage && this.includeUsage)
          out += sseData({ ...this.base, choices: [], usage: encodeUsage(event.usage) });
        return out + 'data: [DONE]\n\n';
      case 'error':
        this.done = true;
        this.failed = true;
        return out + encodeError(event.error);
    }
  }
}

function encodeError(info: ErrorInfo): string {
  return sseData(errorEnvelope('openai', info));
}

/** An error inside a stream has no HTTP status; its code (or type) says which one it stands for. */
const STATUS_BY_CODE: Record<string, number> = {
  invalid_request_error: 400,
  invalid_request: 400,
  invalid_api_key: 401,
  permission_denied: 403,
  permission_error: 403,
  not_found: 404,
  model_not_found: 404,
  rate_limit_exceeded: 429,
  insufficient_quota: 429,
  server_error: 500,
  upstream_unreachable: 502,
  upstream_interrupted: 502,
  upstream_incomplete: 502,
  upstream_timeout: 504,
};

function errorFromBody(body: Json, status: number | undefined): ErrorInfo {
  const err = record(body.error, 'error');
  status ??= STATUS_BY_CODE[String(err.code)] ?? STATUS_BY_CODE[String(err.type)] ?? 500;
  return {
    status,
    message: typeof err.message === 'string' ? err.message : `Backend answered HTTP ${status}`,
    code: optStr(err.code) ?? optStr(err.type) ?? codeForStatus(status),
    param: optStr(err.param) ?? null,
  };
}

export function createOpenAICodec(options: CodecOptions = {}): ProtocolCodec {
  const nowSeconds = (): number => Math.floor((options.now ?? Date.now)() / 1000);
  return {
    decodeRequest(body, ctx) {
      const b = record(body, 'body');
      for (const [field, neutral] of Object.entries(NEUTRAL_VALUES)) {
        if (b[field] !== undefined && b[field] !== null && !neutral(b[field])) throw untranslatable(field);
      }
      rejectUnknownFields(b, KNOWN_FIELDS);
      const notes: { dropped?: string[] | undefined } = {};
      dropHints(b, HINTS, notes);
      const { system, messages } = decodeMessages(b.messages);
      const parallel = typeof b.parallel_tool_calls === 'boolean' ? b.parallel_tool_calls : undefined;
      const reasoning = decodeReasoning(b.reasoning_effort);
      const responseFormat = decodeResponseFormat(b.response_format);
      const sourcePaths = {
        ...(parallel === false ? { parallelToolCalls: ['parallel_tool_calls'] } : {}),
        ...(reasoning ? { reasoning: ['reasoning_effort'] } : {}),
        ...(responseFormat ? { responseFormat: ['response_format'] } : {}),
      };
      return {
        model: ctx.model,
        system,
        messages,
        temperature: optNumber(b.temperature, 'temperature'),
        topP: optNumber(b.top_p, 'top_p'),
        maxTokens:
          optInteger(b.max_completion_tokens, 'max_completion_tokens') ??
          optInteger(b.max_tokens, 'max_tokens'),
        stop: optStringList(b.stop, 'stop'),
        presencePenalty: optNumber(b.presence_penalty, 'presence_penalty'),
        frequencyPenalty: optNumber(b.frequency_penalty, 'frequency_penalty'),
        seed: optInteger(b.seed, 'seed'),
        tools: decodeTools(b.tools),
        toolChoice: decodeToolChoice(b.tool_choice),
        parallelToolCalls: parallel,
        stream: ctx.stream,
        reasoning,
        responseFormat,
        sourcePaths: Object.keys(sourcePaths).length ? sourcePaths : undefined,
        dropped: notes.dropped,
      };
    },

    encodeRequest(req) {
      // OpenAI has no top_k: a sampling hint, dropped with notice.
      if (req.topK !== undefined) dropSetting(req, 'topK', 'top_k');
      const body: Json = { model: req.model, messages: encodeMessages(req) };
      // Each set only when present, in this order (no object of them and its entries per request).
      if (req.temperature !== undefined) body.temperature = req.temperature;
      if (req.topP !== undefined) body.top_p = req.topP;
      // max_tokens is deprecated, and refused by reasoning models.
      if (req.maxTokens !== undefined) body.max_completion_tokens = req.maxTokens;
      if (req.stop !== undefined) body.stop = req.stop;
      if (req.presencePenalty !== undefined) body.presence_penalty = req.presencePenalty;
      if (req.frequencyPenalty !== undefined) body.frequency_penalty = req.frequencyPenalty;
      if (req.seed !== undefined) body.seed = req.seed;
      if (req.tools !== undefined)
        body.tools = req.tools.map((t) => ({
          type: 'function',
          function: {
            name: t.name,
            ...(t.description !== undefined ? { description: t.description } : {}),
            parameters: t.parameters,
          },
        }));
      const toolChoice = req.toolChoice && encodeToolChoice(req.toolChoice);
      if (toolChoice !== undefined) body.tool_choice = toolChoice;
      if (req.parallelToolCalls !== undefined) body.parallel_tool_calls = req.parallelToolCalls;
      const effort = req.reasoning && reasoningWord(req.reasoning, 'openai');
      if (effort !== undefined) body.reasoning_effort = effort;
      const format = req.responseFormat && encodeResponseFormat(req.responseFormat);
      if (format !== undefined) body.response_format = format;
      if (req.stream) {
        body.stream = true;
        body.stream_options = { include_usage: true };
      }
      return body;
    },

    decodeResponse(body) {
      const b = record(body, 'response');
      const choice = record(array(b.choices, 'response.choices')[0], 'response.choices[0]');
      const message = record(choice.message, 'response.choices[0].message');
      const content: ResponsePart[] = [];
      const reasoning = reasoningText(message);
      if (reasoning) content.push({ type: 'reasoning', text: reasoning, signature: UNSIGNED });
      const text = typeof message.content === 'string' ? message.content : '';
      if (text) content.push({ type: 'text', text });
      if (typeof message.refusal === 'string' && message.refusal)
        content.push({ type: 'text', text: message.refusal });
      for (const part of decodeToolCalls(message.tool_calls, 'response.choices[0].message.tool_calls')) {
        if (part.type === 'tool_call') content.push(part);
      }
      return {
        id: optStr(b.id) ?? '',
        model: optStr(b.model) ?? '',
        content,
        stopReason: FINISH_REASONS[String(choice.finish_reason)] ?? 'end_turn',
        usage: decodeUsage(b.usage) ?? { inputTokens: 0, outputTokens: 0 },
      };
    },

    encodeResponse(res) {
      const text = res.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
      const calls = res.content.filter((p) => p.type === 'tool_call');
      const reasoning = res.content.map((p) => (p.type === 'reasoning' ? p.text : '')).join('');
      return {
        id: res.id,
        object: 'chat.completion',
        created: nowSeconds(),
        model: res.model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: text || (calls.length ? null : ''),
              ...(reasoning ? { reasoning_content: reasoning } : {}),
              refusal: null,
              ...(calls.length
                ? {
                    tool_calls: calls.map((c) => ({
                      id: c.id,
                      type: 'function',
                      function: { name: c.name, arguments: c.arguments },
                    })),
                  }
                : {}),
            },
            logprobs: null,
            finish_reason: CANONICAL_TO_FINISH[res.stopReason],
          },
        ],
        usage: encodeUsage(res.usage),
      };
    },

    createStreamDecoder: () => new OpenAIStreamDecoder(),
    createStreamEncoder: (meta) => new OpenAIStreamEncoder(meta, nowSeconds()),
    encodeError,

    decodeError(status, bodyText) {
      const body = parseJson(bodyText);
      if (isRecord(body) && isRecord(body.error)) return errorFromBody(body, status);
      return fallbackError(status, bodyText, codeForStatus(status));
    },

    encodeModelList(models: ModelInfo[]) {
      const created = nowSeconds();
      return {
        object: 'list',
        data: models.map((m) => ({ id: m.id, object: 'model', created, owned_by: m.ownedBy })),
      };
    },
  };
}
