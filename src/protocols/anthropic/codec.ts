/** Anthropic Messages API ⇄ canonical. */
import { ProxyError } from '../../proxy-error.js';
import type {
  ChatRequest,
  ContentPart,
  Message,
  ModelInfo,
  ResponsePart,
  StopReason,
  StreamEvent,
  ToolChoice,
  ToolDefinition,
  Usage,
} from '../canonical.js';
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
  fallbackError,
  invalid,
  isRecord,
  optInteger,
  optNumber,
  optString,
  optStringList,
  parseArguments,
  parseJson,
  record,
  rejectUnknownFields,
  sseEvent,
  string,
  untranslatable,
  type Json,
} from '../shared.js';

/** Anthropic requires max_tokens; used when the client's protocol let it be omitted. */
export const DEFAULT_MAX_TOKENS = 4096;

const STOP_REASONS: Record<string, StopReason> = {
  end_turn: 'end_turn',
  max_tokens: 'max_tokens',
  stop_sequence: 'stop_sequence',
  tool_use: 'tool_use',
  refusal: 'content_filter',
  pause_turn: 'end_turn',
};
const CANONICAL_TO_STOP: Record<StopReason, string> = {
  end_turn: 'end_turn',
  max_tokens: 'max_tokens',
  stop_sequence: 'stop_sequence',
  tool_use: 'tool_use',
  content_filter: 'refusal',
  error: 'end_turn',
};

/** Anthropic error `type` → the HTTP status it stands for (used for errors that arrive inside a stream). */
const ERROR_TYPE_STATUS: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  overloaded_error: 529,
};

const REQUEST_FIELDS = new Set([
  'model',
  'max_tokens',
  'messages',
  'system',
  'temperature',
  'top_p',
  'top_k',
  'stop_sequences',
  'tools',
  'tool_choice',
  'stream',
  // Hint: end-user id for abuse tracking, no effect on the answer.
  'metadata',
]);

function decodeSystem(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  // Blocks may carry cache_control, a caching hint other providers have no use for.
  return array(value, 'system')
    .map((b, i) => {
      const block = record(b, `system[${i}]`);
      if (block.type !== 'text') throw untranslatable(`system[${i}].type`);
      return string(block.text, `system[${i}].text`);
    })
    .join('\n\n');
}

function decodeImage(block: Json, at: string): ContentPart {
  const source = record(block.source, `${at}.source`);
  if (source.type === 'base64') {
    return {
      type: 'image',
      source: 'base64',
      mediaType: string(source.media_type, `${at}.source.media_type`),
      data: string(source.data, `${at}.source.data`),
    };
  }
  if (source.type === 'url')
    return { type: 'image', source: 'url', url: string(source.url, `${at}.source.url`) };
  throw untranslatable(`${at}.source.type`);
}

function decodeToolResultContent(value: unknown, at: string): string {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null) return '';
  return array(value, at)
    .map((b, i) => {
      const block = record(b, `${at}[${i}]`);
      if (block.type !== 'text')
        throw untranslatable(
          `${at}[${i}].type`,
          `'${String(block.type)}' in a tool result cannot be translated`,
        );
      return string(block.text, `${at}[${i}].text`);
    })
    .join('\n');
}

function decodeBlock(b: unknown, at: string, role: 'user' | 'assistant'): ContentPart {
  const block = record(b, at);
  switch (block.type) {
    case 'text':
      return { type: 'text', text: string(block.text, `${at}.text`) };
    case 'image':
      if (role === 'user') return decodeImage(block, at);
      break;
    case 'tool_use':
      if (role === 'assistant') {
        return {
          type: 'tool_call',
          id: string(block.id, `${at}.id`),
          name: string(block.name, `${at}.name`),
          arguments: JSON.stringify(record(block.input ?? {}, `${at}.input`)),
        };
      }
      break;
    case 'tool_result':
      if (role === 'user') {
        return {
          type: 'tool_result',
          toolCallId: string(block.tool_use_id, `${at}.tool_use_id`),
          content: decodeToolResultContent(block.content, `${at}.content`),
          ...(block.is_error === true ? { isError: true } : {}),
        };
      }
      break;
  }
  throw untranslatable(`${at}.type`, `'${String(block.type)}' blocks cannot be translated`);
}

/** Tool results travel inside user messages in Anthropic; canonically they are a `tool` message of their own. */
function decodeMessages(value: unknown): Message[] {
  const out: Message[] = [];
  array(value, 'messages').forEach((m, i) => {
    const at = `messages[${i}]`;
    const msg = record(m, at);
    if (msg.role !== 'user' && msg.role !== 'assistant')
      throw invalid(`${at}.role`, "expected 'user' or 'assistant'");
    const role = msg.role;
    const blocks =
      typeof msg.content === 'string'
        ? [{ type: 'text', text: msg.content } as ContentPart]
        : array(msg.content, `${at}.content`).map((b, j) => decodeBlock(b, `${at}.content[${j}]`, role));
    const results = blocks.filter((b) => b.type === 'tool_result');
    const rest = blocks.filter((b) => b.type !== 'tool_result');
    if (results.length) out.push({ role: 'tool', content: results });
    if (rest.length || !results.length) out.push({ role, content: rest });
  });
  return out;
}

function decodeTools(value: unknown): ToolDefinition[] | undefined {
  if (value === undefined || value === null) return undefined;
  return array(value, 'tools').map((t, i) => {
    const tool = record(t, `tools[${i}]`);
    if (tool.type !== undefined && tool.type !== 'custom') {
      throw untranslatable(`tools[${i}].type`, `'${String(tool.type)}' server tools cannot be translated`);
    }
    return {
      name: string(tool.name, `tools[${i}].name`),
      description: optString(tool.description, `tools[${i}].description`),
      parameters: record(tool.input_schema, `tools[${i}].input_schema`),
    };
  });
}

function decodeToolChoice(value: unknown): { choice?: ToolChoice; parallel?: boolean } {
  if (value === undefined || value === null) return {};
  const c = record(value, 'tool_choice');
  const parallel = c.disable_parallel_tool_use === true ? false : undefined;
  switch (c.type) {
    case 'auto':
    case 'none':
      return { choice: { type: c.type }, parallel };
    case 'any':
      return { choice: { type: 'required' }, parallel };
    case 'tool':
      return { choice: { type: 'tool', name: string(c.name, 'tool_choice.name') }, parallel };
    default:
      throw untranslatable('tool_choice.type');
  }
}

function encodePart(part: ContentPart, at: string, role: Message['role']): Json | null {
  switch (part.type) {
    case 'text':
      // Anthropic rejects empty text blocks; an empty string says nothing, so nothing is lost.
      return part.text ? { type: 'text', text: part.text } : null;
    case 'image':
      if (role === 'assistant')
        throw untranslatable(`${at}`, 'images in assistant messages cannot be sent to Anthropic');
      return {
        type: 'image',
        source:
          part.source === 'base64'
            ? { type: 'base64', media_type: part.mediaType, data: part.data }
            : { type: 'url', url: part.url },
      };
    case 'tool_call':
      return { type: 'tool_use', id: part.id, name: part.name, input: parseArguments(part.arguments, at) };
    case 'tool_result':
      return {
        type: 'tool_result',
        tool_use_id: part.toolCallId,
        content: part.content,
        ...(part.isError ? { is_error: true } : {}),
      };
  }
}

/** Tool messages become user messages; consecutive same-role messages merge (tool results must lead). */
function encodeMessages(messages: Message[]): Json[] {
  const out: Array<{ role: string; content: Json[] }> = [];
  messages.forEach((msg, i) => {
    const role = msg.role === 'assistant' ? 'assistant' : 'user';
    const blocks = msg.content
      .map((p, j) => encodePart(p, `messages[${i}].content[${j}]`, msg.role))
      .filter((b): b is Json => b !== null);
    if (!blocks.length) return;
    const last = out[out.length - 1];
    if (last?.role === role) last.content.push(...blocks);
    else out.push({ role, content: blocks });
  });
  return out;
}

function encodeToolChoice(req: ChatRequest): Json | undefined {
  const noParallel = req.parallelToolCalls === false ? { disable_parallel_tool_use: true } : {};
  const choice = req.toolChoice;
  if (!choice)
    return req.parallelToolCalls === false && req.tools?.length ? { type: 'auto', ...noParallel } : undefined;
  switch (choice.type) {
    case 'none':
      return { type: 'none' };
    case 'auto':
      return { type: 'auto', ...noParallel };
    case 'required':
      return { type: 'any', ...noParallel };
    case 'tool':
      return { type: 'tool', name: choice.name, ...noParallel };
  }
}

function decodeUsage(value: unknown): Usage {
  const u = isRecord(value) ? value : {};
  // Anthropic counts cached prompt tokens apart; the other protocols count them as prompt tokens.
  const input =
    Number(u.input_tokens ?? 0) +
    Number(u.cache_creation_input_tokens ?? 0) +
    Number(u.cache_read_input_tokens ?? 0);
  return { inputTokens: input, outputTokens: Number(u.output_tokens ?? 0) };
}

/** Tool-call arguments from a backend's answer: invalid JSON there is the backend's fault, hence 502. */
function answerArguments(text: string): Json {
  try {
    return parseArguments(text, 'arguments');
  } catch {
    throw new ProxyError(502, 'Backend returned tool-call arguments that are not a JSON object', {
      code: 'upstream_invalid_response',
    });
  }
}

class AnthropicStreamDecoder implements StreamDecoder {
  /** Anthropic content-block index → canonical tool-call index (text blocks map to undefined). */
  private readonly toolBlocks = new Map<number, number>();
  private nextTool = 0;
  private inputTokens: number | undefined;
  private usage: Usage = { inputTokens: 0, outputTokens: 0 };
  private stopReason: StopReason | undefined;
  private stopSequence: string | undefined;
  private finished = false;

  push(msg: SseMessage): StreamEvent[] {
    if (this.finished) return [];
    const data = parseJson(msg.data);
    if (!isRecord(data)) return [];
    const type = data.type ?? msg.event;
    switch (type) {
      case 'message_start': {
        const message = isRecord(data.message) ? data.message : {};
        this.usage = decodeUsage(message.usage);
        this.inputTokens = this.usage.inputTokens;
        return [
          {
            type: 'start',
            id: optStr(message.id),
            model: optStr(message.model),
            inputTokens: this.inputTokens,
          },
        ];
      }
      case 'content_block_start': {
        const block = isRecord(data.content_block) ? data.content_block : {};
        const index = Number(data.index);
        if (block.type === 'tool_use') {
          const toolIndex = this.nextTool++;
          this.toolBlocks.set(index, toolIndex);
          const start: StreamEvent = {
            type: 'tool_call_start',
            index: toolIndex,
            id: optStr(block.id) ?? '',
            name: optStr(block.name) ?? '',
          };
          // Anthropic starts tool blocks with input {}; anything richer would be lost without this.
          const input =
            isRecord(block.input) && Object.keys(block.input).length ? JSON.stringify(block.input) : '';
          return input ? [start, { type: 'tool_call_delta', index: toolIndex, arguments: input }] : [start];
        }
        if (block.type === 'text' && typeof block.text === 'string' && block.text)
          return [{ type: 'text', text: block.text }];
        return [];
      }
      case 'content_block_delta': {
        const delta = isRecord(data.delta) ? data.delta : {};
        if (delta.type === 'text_delta' && typeof delta.text === 'string')
          return [{ type: 'text', text: delta.text }];
        const toolIndex = this.toolBlocks.get(Number(data.index));
        if (
          delta.type === 'input_json_delta' &&
          toolIndex !== undefined &&
          typeof delta.partial_json === 'string' &&
          delta.partial_json
        ) {
          return [{ type: 'tool_call_delta', index: toolIndex, arguments: delta.partial_json }];
        }
        // Thinking and signature deltas only come when thinking was requested, which translation refuses.
        return [];
      }
      case 'message_delta': {
        const delta = isRecord(data.delta) ? data.delta : {};
        if (typeof delta.stop_reason === 'string')
          this.stopReason = STOP_REASONS[delta.stop_reason] ?? 'end_turn';
        if (typeof delta.stop_sequence === 'string') this.stopSequence = delta.stop_sequence;
        if (isRecord(data.usage)) {
          const u = decodeUsage(data.usage);
          this.usage = {
            inputTokens: data.usage.input_tokens !== undefined ? u.inputTokens : (this.inputTokens ?? 0),
            outputTokens: u.outputTokens,
          };
        }
        return [];
      }
      case 'message_stop':
        return this.finish();
      case 'error':
        this.finished = true;
        return [{ type: 'error', error: errorFromBody(data, undefined) }];
      default:
        return [];
    }
  }

  private finish(): StreamEvent[] {
    if (this.finished || this.stopReason === undefined) return [];
    this.finished = true;
    return [
      { type: 'finish', stopReason: this.stopReason, stopSequence: this.stopSequence, usage: this.usage },
    ];
  }

  end(): StreamEvent[] {
    return this.finish();
  }
}

function optStr(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

class AnthropicStreamEncoder implements StreamEncoder {
  done = false;
  private started = false;
  /** The open content block: its Anthropic index and, for tool blocks, the canonical tool index. */
  private open: { index: number; tool?: number } | null = null;
  private nextBlock = 0;
  private readonly toolBlocks = new Map<number, number>();

  constructor(private readonly meta: StreamMeta) {}

  private start(inputTokens = 0): string {
    this.started = true;
    return sseEvent('message_start', {
      type: 'message_start',
      message: {
        id: this.meta.id,
        type: 'message',
        role: 'assistant',
        model: this.meta.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: inputTokens, output_tokens: 0 },
      },
    });
  }

  private closeBlock(): string {
    if (!this.open) return '';
    const index = this.open.index;
    this.open = null;
    return sseEvent('content_block_stop', { type: 'content_block_stop', index });
  }

  private openBlock(block: Json, tool?: number): string {
    const index = this.nextBlock++;
    this.open = tool === undefined ? { index } : { index, tool };
    if (tool !== undefined) this.toolBlocks.set(tool, index);
    return sseEvent('content_block_start', { type: 'content_block_start', index, content_block: block });
  }

  encode(event: StreamEvent): string {
    if (this.done) return '';
    let out = '';
    if (!this.started && event.type !== 'error')
      out += this.start(event.type === 'start' ? event.inputTokens : 0);
    switch (event.type) {
      case 'start':
        return out;
      case 'text':
        if (!this.open || this.open.tool !== undefined) {
          out += this.closeBlock() + this.openBlock({ type: 'text', text: '' });
        }
        return (
          out +
          sseEvent('content_block_delta', {
            type: 'content_block_delta',
            index: this.open?.index,
            delta: { type: 'text_delta', text: event.text },
          })
        );
      case 'tool_call_start':
        out += this.closeBlock();
        return (
          out + this.openBlock({ type: 'tool_use', id: event.id, name: event.name, input: {} }, event.index)
        );
      case 'tool_call_delta': {
        const index = this.toolBlocks.get(event.index);
        if (index === undefined) return out;
        return (
          out +
          sseEvent('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json: event.arguments },
          })
        );
      }
      case 'finish':
        this.done = true;
        return (
          out +
          this.closeBlock() +
          sseEvent('message_delta', {
            type: 'message_delta',
            delta: {
              stop_reason: CANONICAL_TO_STOP[event.stopReason],
              stop_sequence: event.stopSequence ?? null,
            },
            usage: {
              output_tokens: event.usage?.outputTokens ?? 0,
              ...(event.usage ? { input_tokens: event.usage.inputTokens } : {}),
            },
          }) +
          sseEvent('message_stop', { type: 'message_stop' })
        );
      case 'error':
        this.done = true;
        return out + encodeError(event.error);
    }
  }
}

function encodeError(info: ErrorInfo): string {
  return sseEvent('error', errorEnvelope('anthropic', info));
}

function errorFromBody(body: Json, status: number | undefined): ErrorInfo {
  const err = isRecord(body.error) ? body.error : {};
  const type = optStr(err.type);
  const resolved = status ?? (type ? ERROR_TYPE_STATUS[type] : undefined) ?? 500;
  return {
    status: resolved,
    message: optStr(err.message) ?? `Backend answered HTTP ${resolved}`,
    code: type === 'overloaded_error' ? 'overloaded' : codeForStatus(resolved),
  };
}

export function createAnthropicCodec(options: CodecOptions = {}): ProtocolCodec {
  const now = options.now ?? Date.now;
  return {
    decodeRequest(body, ctx) {
      const b = record(body, 'body');
      if (b.thinking !== undefined && !(isRecord(b.thinking) && b.thinking.type === 'disabled'))
        throw untranslatable('thinking');
      rejectUnknownFields(b, new Set([...REQUEST_FIELDS, 'thinking']));
      const { choice, parallel } = decodeToolChoice(b.tool_choice);
      return {
        model: ctx.model,
        system: decodeSystem(b.system),
        messages: decodeMessages(b.messages),
        temperature: optNumber(b.temperature, 'temperature'),
        topP: optNumber(b.top_p, 'top_p'),
        topK: optInteger(b.top_k, 'top_k'),
        maxTokens: optInteger(b.max_tokens, 'max_tokens'),
        stop: optStringList(b.stop_sequences, 'stop_sequences'),
        tools: decodeTools(b.tools),
        toolChoice: choice,
        parallelToolCalls: parallel,
        stream: ctx.stream,
      };
    },

    encodeRequest(req) {
      const unsupported: Array<[string, unknown]> = [
        ['presence_penalty', req.presencePenalty],
        ['frequency_penalty', req.frequencyPenalty],
        ['seed', req.seed],
      ];
      for (const [name, value] of unsupported) {
        if (value !== undefined) throw untranslatable(name, 'cannot be translated to the Anthropic protocol');
      }
      if (req.temperature !== undefined && req.temperature > 1) {
        throw invalid('temperature', 'Anthropic accepts temperature between 0 and 1');
      }
      const body: Json = { model: req.model, max_tokens: req.maxTokens ?? DEFAULT_MAX_TOKENS };
      if (req.system !== undefined && req.system !== '') body.system = req.system;
      body.messages = encodeMessages(req.messages);
      const optional: Json = {
        temperature: req.temperature,
        top_p: req.topP,
        top_k: req.topK,
        stop_sequences: req.stop,
        tools: req.tools?.map((t) => ({
          name: t.name,
          ...(t.description !== undefined ? { description: t.description } : {}),
          input_schema: t.parameters,
        })),
        tool_choice: encodeToolChoice(req),
      };
      for (const [k, v] of Object.entries(optional)) if (v !== undefined) body[k] = v;
      if (req.stream) body.stream = true;
      return body;
    },

    decodeResponse(body) {
      const b = record(body, 'response');
      const content: ResponsePart[] = [];
      for (const raw of array(b.content ?? [], 'response.content')) {
        if (!isRecord(raw)) continue;
        if (raw.type === 'text' && typeof raw.text === 'string')
          content.push({ type: 'text', text: raw.text });
        if (raw.type === 'tool_use') {
          content.push({
            type: 'tool_call',
            id: optStr(raw.id) ?? '',
            name: optStr(raw.name) ?? '',
            arguments: JSON.stringify(raw.input ?? {}),
          });
        }
      }
      return {
        id: optStr(b.id) ?? '',
        model: optStr(b.model) ?? '',
        content,
        stopReason: STOP_REASONS[String(b.stop_reason)] ?? 'end_turn',
        stopSequence: optStr(b.stop_sequence),
        usage: decodeUsage(b.usage),
      };
    },

    encodeResponse(res) {
      return {
        id: res.id,
        type: 'message',
        role: 'assistant',
        model: res.model,
        content: res.content.map((p) =>
          p.type === 'text'
            ? { type: 'text', text: p.text }
            : { type: 'tool_use', id: p.id, name: p.name, input: answerArguments(p.arguments) },
        ),
        stop_reason: CANONICAL_TO_STOP[res.stopReason],
        stop_sequence: res.stopSequence ?? null,
        usage: { input_tokens: res.usage.inputTokens, output_tokens: res.usage.outputTokens },
      };
    },

    createStreamDecoder: () => new AnthropicStreamDecoder(),
    createStreamEncoder: (meta) => new AnthropicStreamEncoder(meta),
    encodeError,

    decodeError(status, bodyText) {
      const body = parseJson(bodyText);
      if (isRecord(body) && isRecord(body.error)) return errorFromBody(body, status);
      return fallbackError(status, bodyText, codeForStatus(status));
    },

    encodeModelList(models: ModelInfo[]) {
      const createdAt = new Date(now()).toISOString();
      return {
        data: models.map((m) => ({ type: 'model', id: m.id, display_name: m.id, created_at: createdAt })),
        has_more: false,
        first_id: models[0]?.id ?? null,
        last_id: models[models.length - 1]?.id ?? null,
      };
    },
  };
}
