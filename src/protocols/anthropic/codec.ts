/** Anthropic Messages API ⇄ canonical. */
import { ProxyError } from '../../proxy-error.js';
import type {
  ChatRequest,
  ContentPart,
  ImagePart,
  Message,
  ModelInfo,
  ReasoningControl,
  ReasoningPart,
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
import { isShortVerbatim, numberJson, quotedJson } from '../json-text.js';
import {
  array,
  codeForBackendError,
  codeForStatus,
  dropHints,
  dropSetting,
  dropWithNotice,
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
  CUT_TOOL_CALL,
  stoppedInsideCall,
} from '../shared.js';
import {
  effortFromWire,
  maxTokensWithThinking,
  reasoningBudget,
  refusedBesideThinking,
} from '../reasoning.js';

/**
 * Anthropic requires max_tokens, which other protocols let a client leave out (Gemini CLI never sends
 * one). Such a request gets its model's own output limit, as the other providers' defaults let an answer
 * run: one cut at 4096 tokens would cut any longer answer or file write. Anthropic's published limits per
 * model family, the first glob that matches (`*`: any run of characters); anything else — an
 * Anthropic-compatible server's model — gets 4096, which every Claude model takes.
 */
const OUTPUT_LIMITS: ReadonlyArray<readonly [glob: string, maxTokens: number]> = [
  ['claude-3-haiku*', 4096],
  ['claude-3-5-*', 8192],
  ['claude-3-7-sonnet*', 64000],
  ['claude-sonnet-4*', 64000],
  ['claude-opus-4', 32000],
  ['claude-opus-4-0*', 32000],
  ['claude-opus-4-1*', 32000],
  // claude-opus-4-20250514: Opus 4 by its dated name.
  ['claude-opus-4-20*', 32000],
  ['claude-opus-4-*', 64000],
  ['claude-haiku-4*', 64000],
];
const UNKNOWN_MODEL_MAX_TOKENS = 4096;

const OUTPUT_LIMIT_RULES = OUTPUT_LIMITS.map(([glob, maxTokens]) => ({
  pattern: new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`),
  maxTokens,
}));

/** max_tokens for a request to `model` that names none (see OUTPUT_LIMITS). */
export function defaultMaxTokens(model: string): number {
  const name = model.toLowerCase();
  for (const rule of OUTPUT_LIMIT_RULES) if (rule.pattern.test(name)) return rule.maxTokens;
  return UNKNOWN_MODEL_MAX_TOKENS;
}

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
  'thinking',
  'output_config',
]);

/**
 * Hints dropped with notice when the request is translated (README, "Fields that do not translate"): their
 * loss changes only cost, caching, telemetry or beta behaviour. `cache_control` is also read on every block.
 */
const HINTS = ['context_management', 'cache_control', 'metadata', 'service_tier', 'container'];

/** Every top-level field this codec knows: read, or a hint. */
const KNOWN_FIELDS = new Set([...REQUEST_FIELDS, ...HINTS]);

/** The fields of `output_config` this codec reads. */
const OUTPUT_CONFIG_FIELDS = new Set(['effort', 'format']);

/**
 * Structured output reaches an Anthropic backend as a tool the model must call, whose input is the answer;
 * the answer's decoders turn a call of it back into text. The name is the proxy's: a client tool may not use it.
 */
export const ANSWER_TOOL = 'lip_structured_answer';

/** Collects the fields dropped with notice while a request is decoded. */
type Notes = { dropped?: string[] | undefined };

function noteCacheControl(block: Json, at: string, notes: Notes): void {
  if (block.cache_control !== undefined && block.cache_control !== null)
    dropWithNotice(notes, `${at}.cache_control`);
}

/** A system prompt: a string or text blocks (whose cache_control is a caching hint, dropped with notice). */
function decodeSystem(value: unknown, at: string, notes: Notes): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  return array(value, at)
    .map((b, i) => {
      const block = record(b, `${at}[${i}]`);
      if (block.type !== 'text') throw untranslatable(`${at}[${i}].type`);
      noteCacheControl(block, `${at}[${i}]`, notes);
      return string(block.text, `${at}[${i}].text`);
    })
    .join('\n\n');
}

function decodeImage(block: Json, at: string): ImagePart {
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

/** A tool result's text (its text blocks joined) and its images. */
function decodeToolResultContent(
  value: unknown,
  at: string,
  notes: Notes,
): { text: string; images: ImagePart[] } {
  if (typeof value === 'string') return { text: value, images: [] };
  if (value === undefined || value === null) return { text: '', images: [] };
  const texts: string[] = [];
  const images: ImagePart[] = [];
  array(value, at).forEach((b, i) => {
    const block = record(b, `${at}[${i}]`);
    noteCacheControl(block, `${at}[${i}]`, notes);
    if (block.type === 'text') texts.push(string(block.text, `${at}[${i}].text`));
    else if (block.type === 'image') images.push(decodeImage(block, `${at}[${i}]`));
    else
      throw untranslatable(
        `${at}[${i}].type`,
        `'${String(block.type)}' in a tool result cannot be translated`,
      );
  });
  return { text: texts.join('\n'), images };
}

function decodeBlock(b: unknown, at: string, role: 'user' | 'assistant', notes: Notes): ContentPart {
  const block = record(b, at);
  noteCacheControl(block, at, notes);
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
        const { text, images } = decodeToolResultContent(block.content, `${at}.content`, notes);
        return {
          type: 'tool_result',
          toolCallId: string(block.tool_use_id, `${at}.tool_use_id`),
          content: text,
          ...(images.length > 0 ? { images } : {}),
          ...(block.is_error === true ? { isError: true } : {}),
        };
      }
      break;
    case 'thinking':
      // Earlier thinking: its signature goes back to Anthropic as is, or unwrapped to the family that made it.
      if (role === 'assistant') {
        const signature = optString(block.signature, `${at}.signature`) ?? '';
        return {
          type: 'reasoning',
          text: string(block.thinking, `${at}.thinking`),
          signature: { family: 'anthropic', value: signature },
        };
      }
      break;
    case 'redacted_thinking':
      if (role === 'assistant') {
        const data = string(block.data, `${at}.data`);
        return {
          type: 'reasoning',
          text: '',
          signature: { family: 'anthropic', value: data },
          redacted: true,
        };
      }
      break;
  }
  throw untranslatable(`${at}.type`, `'${String(block.type)}' blocks cannot be translated`);
}

/**
 * Tool results travel inside user messages in Anthropic; canonically they are a `tool` message of their own.
 * A `system` message among them (Claude Code sends them) joins the system prompt, in order.
 */
function decodeMessages(value: unknown, notes: Notes): { messages: Message[]; systems: string[] } {
  const out: Message[] = [];
  const systems: string[] = [];
  array(value, 'messages').forEach((m, i) => {
    const at = `messages[${i}]`;
    const msg = record(m, at);
    if (msg.role === 'system') {
      systems.push(decodeSystem(msg.content, `${at}.content`, notes) ?? '');
      return;
    }
    if (msg.role !== 'user' && msg.role !== 'assistant')
      throw invalid(`${at}.role`, "expected 'user', 'assistant' or 'system'");
    const role = msg.role;
    const blocks =
      typeof msg.content === 'string'
        ? [{ type: 'text', text: msg.content } as ContentPart]
        : array(msg.content, `${at}.content`).map((b, j) =>
            decodeBlock(b, `${at}.content[${j}]`, role, notes),
          );
    const results = blocks.filter((b) => b.type === 'tool_result');
    const rest = blocks.filter((b) => b.type !== 'tool_result');
    if (results.length) out.push({ role: 'tool', content: results });
    if (rest.length || !results.length) out.push({ role, content: rest });
  });
  return { messages: out, systems };
}

function decodeTools(value: unknown, notes: Notes): ToolDefinition[] | undefined {
  if (value === undefined || value === null) return undefined;
  return array(value, 'tools').map((t, i) => {
    const tool = record(t, `tools[${i}]`);
    if (tool.type !== undefined && tool.type !== 'custom') {
      throw untranslatable(`tools[${i}].type`, `'${String(tool.type)}' server tools cannot be translated`);
    }
    noteCacheControl(tool, `tools[${i}]`, notes);
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

/** The fields of `thinking` this codec reads, and those it drops with notice (Claude Code sends `display`). */
const THINKING_FIELDS = new Set(['type', 'budget_tokens']);
const THINKING_HINTS = ['display'];

/**
 * `thinking` and `output_config.effort` as one reasoning control (README, "Reasoning controls"); thinking
 * turned off is none, and an effort beside it then has nothing to set: dropped with notice.
 */
function decodeReasoning(
  thinkingValue: unknown,
  effortValue: unknown,
  paths: string[],
  notes: Notes,
): ReasoningControl | undefined {
  let control: ReasoningControl | undefined;
  let off = false;
  if (thinkingValue !== undefined && thinkingValue !== null) {
    const record_ = record(thinkingValue, 'thinking');
    // How thinking is shown changes no answer: a hint, dropped with notice where thinking is translated.
    const hints = THINKING_HINTS.filter((name) => name in record_);
    for (const name of hints) dropWithNotice(notes, `thinking.${name}`);
    const thinking =
      hints.length === 0
        ? record_
        : Object.fromEntries(Object.entries(record_).filter(([k]) => !hints.includes(k)));
    rejectUnknownFields(thinking, THINKING_FIELDS, 'thinking.');
    if (thinking.type === 'enabled') {
      control = {
        mode: 'enabled',
        budgetTokens: optInteger(thinking.budget_tokens, 'thinking.budget_tokens'),
      };
    } else if (thinking.type === 'adaptive') control = { mode: 'adaptive' };
    else if (thinking.type === 'disabled') off = true;
    else throw invalid('thinking.type', "expected 'enabled', 'adaptive' or 'disabled'");
    if (control) paths.push('thinking');
  }
  const word = optString(effortValue, 'output_config.effort');
  if (word === undefined) return control;
  const effort = effortFromWire('anthropic', word);
  if (effort === undefined) throw invalid('output_config.effort', `unknown effort '${word}'`);
  if (off) {
    dropWithNotice(notes, 'output_config.effort');
    return undefined;
  }
  paths.push('output_config.effort');
  return { ...(control ?? { mode: 'adaptive' }), effort };
}

/** `output_config.format`: Anthropic's structured output, a JSON schema. */
function decodeFormat(value: unknown): ResponseFormat {
  const format = record(value, 'output_config.format');
  if (format.type !== 'json_schema') throw untranslatable('output_config.format.type');
  return { type: 'json_schema', schema: record(format.schema, 'output_config.format.schema') };
}

/**
 * Reasoning as an Anthropic block: to a backend only with an Anthropic signature (Anthropic refuses unsigned
 * thinking, and another family's signature is never sent); in an answer, with the signature the client gets
 * (made ready by the relay: `sealResponseSignatures`), or an empty one.
 */
function reasoningBlock(part: ReasoningPart, answer: boolean): Json | null {
  const signature = part.signature?.family === 'anthropic' ? part.signature.value : '';
  if (part.redacted) return signature ? { type: 'redacted_thinking', data: signature } : null;
  if (!signature && !answer) return null;
  return { type: 'thinking', thinking: part.text, signature };
}

function encodePart(part: ContentPart, at: string, role: Message['role']): Json | null {
  switch (part.type) {
    case 'reasoning':
      return role === 'assistant' ? reasoningBlock(part, false) : null;
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
        content: part.images?.length
          ? [
              ...(part.content ? [{ type: 'text', text: part.content }] : []),
              ...part.images.map((image, k) => encodePart(image, `${at}.images[${k}]`, role)),
            ]
          : part.content,
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

/** The tool that carries a structured answer: its input schema is the answer's. */
function answerTool(req: ChatRequest): Json {
  const format = req.responseFormat as ResponseFormat;
  const schema = format.type === 'json' ? { type: 'object' } : format.schema;
  if (schema.type !== 'object') {
    throw untranslatable(
      req.sourcePaths?.responseFormat?.[0] ?? 'response_format',
      'with a schema whose root is not an object cannot be translated to the Anthropic protocol',
    );
  }
  const about = format.type === 'json_schema' && format.description ? ` ${format.description}` : '';
  return {
    name: ANSWER_TOOL,
    description: `Give your final answer by calling this tool: its input is the answer.${about}`,
    input_schema: schema,
  };
}

/** The answer tool is forced, unless the client forced a tool of its own or offers tools the model may call. */
function answerChoice(req: ChatRequest): Json {
  const noParallel = req.parallelToolCalls === false ? { disable_parallel_tool_use: true } : {};
  const choice = req.toolChoice;
  if (choice?.type === 'tool') return { type: 'tool', name: choice.name, ...noParallel };
  if (choice?.type !== 'none' && req.tools?.length) return { type: 'any', ...noParallel };
  return { type: 'tool', name: ANSWER_TOOL, ...noParallel };
}

/** Anthropic's smallest thinking budget. */
const MIN_THINKING_BUDGET = 1024;

/**
 * Thinking with the budget the reasoning table gives (README, "Reasoning controls"), at least Anthropic's
 * smallest and inside max_tokens (raised by the budget when the client set no limit). Anthropic refuses
 * thinking beside a forced tool, a temperature other than 1, top_k, top_p under 0.95, or a tool loop whose
 * earlier turn carries no thinking block: the client's settings change the answer, so they stay and its
 * reasoning control is dropped with notice. The session's reasoning (`insist`) replaces the client's
 * sampling settings and raises max_tokens above its budget, as it does for an Anthropic client; a forced
 * tool or a tool loop still drops it.
 */
function encodeThinking(req: ChatRequest, control: ReasoningControl, body: Json): void {
  const choice = body.tool_choice as Json | undefined;
  const sampling = refusedBesideThinking(body);
  const conflict =
    choice?.type === 'any' ||
    choice?.type === 'tool' ||
    (sampling.length > 0 && !control.insist) ||
    (req.messages[req.messages.length - 1]?.role === 'tool' && !lastTurnThinks(body));
  const wanted = reasoningBudget(control);
  // With no limit named, room for the budget and an answer after it, within the model's own limit.
  const roomy = Math.max(defaultMaxTokens(req.model), wanted + UNKNOWN_MODEL_MAX_TOKENS);
  const maxTokens = control.insist
    ? maxTokensWithThinking(req.maxTokens ?? roomy, wanted)
    : (req.maxTokens ?? roomy);
  const budget = Math.min(Math.max(wanted, MIN_THINKING_BUDGET), maxTokens - 1);
  if (conflict || budget < MIN_THINKING_BUDGET) {
    dropSetting(req, 'reasoning', 'reasoning');
    return;
  }
  for (const field of sampling) delete body[field];
  body.max_tokens = maxTokens;
  body.thinking = { type: 'enabled', budget_tokens: budget };
}

/** The last assistant turn starts with a thinking block, as Anthropic wants of a tool loop with thinking. */
function lastTurnThinks(body: Json): boolean {
  const messages = body.messages as Array<{ role: string; content: Json[] }>;
  const last = messages.findLast((m) => m.role === 'assistant');
  const first = last?.content[0]?.type;
  return first === 'thinking' || first === 'redacted_thinking';
}

function decodeUsage(value: unknown): Usage {
  const u = isRecord(value) ? value : {};
  // Anthropic counts cached prompt tokens apart; the other protocols count them as prompt tokens.
  const input =
    Number(u.input_tokens ?? 0) +
    Number(u.cache_creation_input_tokens ?? 0) +
    Number(u.cache_read_input_tokens ?? 0);
  return withBreakdown(
    { inputTokens: input, outputTokens: Number(u.output_tokens ?? 0) },
    u.cache_read_input_tokens,
    undefined,
  );
}

/**
 * Anthropic's usage members for `u`: its `input_tokens` leaves out the tokens read from the cache, which
 * `cache_read_input_tokens` counts (the other protocols count them in the prompt's tokens).
 */
function encodeInputUsage(u: Usage): { input_tokens: number; cache_read_input_tokens?: number } {
  const cached = u.cachedInputTokens;
  return cached === undefined
    ? { input_tokens: u.inputTokens }
    : { input_tokens: u.inputTokens - cached, cache_read_input_tokens: cached };
}

/** A structured answer came as a call of the answer tool: with no other call, the turn simply ended. */
function answerStop(reason: StopReason, answered: boolean, content: ResponsePart[]): StopReason {
  return reason === 'tool_use' && answered && !content.some((p) => p.type === 'tool_call')
    ? 'end_turn'
    : reason;
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

/**
 * Stream events whose data is exactly one of these texts carry nothing but their type: what `push` makes of
 * them is known without `JSON.parse` (`ping` and a block's stop decode to nothing, `message_stop` finishes).
 * Any other spelling goes through the parser as before. A null-prototype table: no inherited name matches.
 */
const SAYS_NOTHING: Record<string, 'nothing' | 'stop' | undefined> = Object.assign(
  Object.create(null) as Record<string, 'nothing' | 'stop' | undefined>,
  {
    '{"type":"ping"}': 'nothing',
    '{"type": "ping"}': 'nothing',
    '{"type":"message_stop"}': 'stop',
    '{"type": "message_stop"}': 'stop',
    ...Object.fromEntries(
      Array.from({ length: 8 }, (_, i) => [`{"type":"content_block_stop","index":${i}}`, 'nothing']),
    ),
  },
);

class AnthropicStreamDecoder implements StreamDecoder {
  readonly textRepeats = true;
  /** Anthropic content-block index → canonical tool-call index (text blocks map to undefined). */
  private readonly toolBlocks = new Map<number, number>();
  /**
   * Tool blocks (content-block index → tool-call index) with no input yet: a call without arguments streams
   * `input: {}` and no `input_json_delta` (or an empty one). Its arguments are `{}` when the block stops —
   * what a whole answer says — rather than nothing, which a client's `JSON.parse` rejects.
   */
  private readonly noInputYet = new Map<number, number>();
  /** Content blocks that call the answer tool: their input streams as the answer's text. */
  private readonly answerBlocks = new Set<number>();
  private nextTool = 0;
  private inputTokens: number | undefined;
  private usage: Usage = { inputTokens: 0, outputTokens: 0 };
  private stopReason: StopReason | undefined;
  private stopSequence: string | undefined;
  private finished = false;

  push(msg: SseMessage): StreamEvent[] {
    if (this.finished) return [];
    // The events that say nothing but their type, as Anthropic writes them: read without the parser.
    const known = SAYS_NOTHING[msg.data];
    if (known === 'stop') return this.finish();
    if (known !== undefined && this.noInputYet.size === 0) return [];
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
        if (block.type === 'tool_use' && block.name === ANSWER_TOOL) {
          this.answerBlocks.add(index);
          const input = isRecord(block.input) && Object.keys(block.input).length ? block.input : undefined;
          return input ? [{ type: 'text', text: JSON.stringify(input) }] : [];
        }
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
          if (input) return [start, { type: 'tool_call_delta', index: toolIndex, arguments: input }];
          this.noInputYet.set(index, toolIndex);
          return [start];
        }
        if (block.type === 'text' && typeof block.text === 'string' && block.text)
          return [{ type: 'text', text: block.text }];
        if (block.type === 'thinking' && typeof block.thinking === 'string' && block.thinking)
          return [{ type: 'reasoning', text: block.thinking }];
        if (block.type === 'redacted_thinking' && typeof block.data === 'string') {
          const signature = { family: 'anthropic', value: block.data };
          return [{ type: 'reasoning_signature', signature, redacted: true }];
        }
        return [];
      }
      case 'content_block_delta': {
        const delta = isRecord(data.delta) ? data.delta : {};
        if (delta.type === 'text_delta' && typeof delta.text === 'string')
          return [{ type: 'text', text: delta.text }];
        if (
          delta.type === 'input_json_delta' &&
          this.answerBlocks.has(Number(data.index)) &&
          typeof delta.partial_json === 'string' &&
          delta.partial_json
        ) {
          return [{ type: 'text', text: delta.partial_json }];
        }
        const toolIndex = this.toolBlocks.get(Number(data.index));
        if (
          delta.type === 'input_json_delta' &&
          toolIndex !== undefined &&
          typeof delta.partial_json === 'string' &&
          delta.partial_json
        ) {
          this.noInputYet.delete(Number(data.index));
          return [{ type: 'tool_call_delta', index: toolIndex, arguments: delta.partial_json }];
        }
        if (delta.type === 'thinking_delta' && typeof delta.thinking === 'string' && delta.thinking)
          return [{ type: 'reasoning', text: delta.thinking }];
        if (delta.type === 'signature_delta' && typeof delta.signature === 'string') {
          return [
            { type: 'reasoning_signature', signature: { family: 'anthropic', value: delta.signature } },
          ];
        }
        return [];
      }
      case 'message_delta': {
        const delta = isRecord(data.delta) ? data.delta : {};
        if (typeof delta.stop_reason === 'string') {
          const reason = STOP_REASONS[delta.stop_reason] ?? 'end_turn';
          const onlyAnswer = this.answerBlocks.size > 0 && this.nextTool === 0;
          this.stopReason = reason === 'tool_use' && onlyAnswer ? 'end_turn' : reason;
        }
        if (typeof delta.stop_sequence === 'string') this.stopSequence = delta.stop_sequence;
        if (isRecord(data.usage)) {
          // A final count of the prompt when it has one, else message_start's (with its cache reads).
          const u = decodeUsage(data.usage);
          this.usage =
            data.usage.input_tokens !== undefined
              ? u
              : withBreakdown(
                  { inputTokens: this.inputTokens ?? 0, outputTokens: u.outputTokens },
                  this.usage.cachedInputTokens,
                  undefined,
                );
        }
        return [];
      }
      case 'content_block_stop':
        return this.inputless(Number(data.index));
      case 'message_stop':
        return this.finish();
      case 'error':
        this.finished = true;
        return [{ type: 'error', error: errorFromBody(data, undefined) }];
      default:
        return [];
    }
  }

  /** The `{}` arguments of the tool block at `block` when it stops without input (see noInputYet). */
  private inputless(block: number): StreamEvent[] {
    const toolIndex = this.noInputYet.get(block);
    if (toolIndex === undefined) return [];
    this.noInputYet.delete(block);
    return [{ type: 'tool_call_delta', index: toolIndex, arguments: '{}' }];
  }

  private finish(): StreamEvent[] {
    if (this.finished || this.stopReason === undefined) return [];
    this.finished = true;
    // A tool block the stream never stopped still gets its arguments.
    const owed = [...this.noInputYet.keys()].flatMap((block) => this.inputless(block));
    return [
      ...owed,
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

/** A text delta event up to its block's index, and from there to its text. */
const TEXT_DELTA_HEAD = 'event: content_block_delta\ndata: {"type":"content_block_delta","index":';
const TEXT_DELTA_MIDDLE = ',"delta":{"type":"text_delta","text":';
// The events every text answer writes, as `sseEvent` writes them, with only their variable members
// serialised (docs/performance.md, "An Anthropic client's translated stream"): held byte for byte by
// src/protocols/stream-encoders.test.ts.
const TEXT_BLOCK_START_HEAD = 'event: content_block_start\ndata: {"type":"content_block_start","index":';
const TEXT_BLOCK_START_TAIL = ',"content_block":{"type":"text","text":""}}\n\n';
const BLOCK_STOP_HEAD = 'event: content_block_stop\ndata: {"type":"content_block_stop","index":';
const MESSAGE_STOP = 'event: message_stop\ndata: {"type":"message_stop"}\n\n';

class AnthropicStreamEncoder implements StreamEncoder {
  done = false;
  failed = false;
  private started = false;
  /** The open content block: its Anthropic index, its kind and, for tool blocks, the canonical tool index. */
  private open: { index: number; kind: 'text' | 'thinking' | 'tool'; tool?: number } | null = null;
  private nextBlock = 0;
  private readonly toolBlocks = new Map<number, number>();
  /**
   * Tool blocks (content-block index → tool-call index) with no input yet: a call without arguments streams
   * `input: {}` and no `input_json_delta` (or an empty one). Its arguments are `{}` when the block stops —
   * what a whole answer says — rather than nothing, which a client's `JSON.parse` rejects.
   */
  private readonly noInputYet = new Map<number, number>();
  /** Each tool call's arguments so far (by tool-call index), for the finish to tell a call the limit cut. */
  private readonly callArguments = new Map<number, string>();

  constructor(private readonly meta: StreamMeta) {}

  private start(inputTokens = 0): string {
    this.started = true;
    const { id, model } = this.meta;
    if (typeof id === 'string' && typeof model === 'string' && typeof inputTokens === 'number') {
      return (
        `event: message_start\ndata: {"type":"message_start","message":{"id":${quotedJson(id)},"type":"message",` +
        `"role":"assistant","model":${quotedJson(model)},"content":[],"stop_reason":null,"stop_sequence":null,` +
        `"usage":{"input_tokens":${numberJson(inputTokens)},"output_tokens":0}}}\n\n`
      );
    }
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
    return `${BLOCK_STOP_HEAD}${index}}\n\n`;
  }

  private openBlock(block: Json, tool?: number): string {
    const index = this.nextBlock++;
    const kind = block.type === 'thinking' ? 'thinking' : 'text';
    this.open = tool === undefined ? { index, kind } : { index, kind: 'tool', tool };
    if (tool !== undefined) this.toolBlocks.set(tool, index);
    return sseEvent('content_block_start', { type: 'content_block_start', index, content_block: block });
  }

  /** `openBlock({ type: 'text', text: '' })`, written without the serialiser. */
  private openTextBlock(): string {
    const index = this.nextBlock++;
    this.open = { index, kind: 'text' };
    return `${TEXT_BLOCK_START_HEAD}${index}${TEXT_BLOCK_START_TAIL}`;
  }

  /** A text delta's event up to its text, and to its text's opening quote, for block `textHeadOf`. */
  private textHead = '';
  private textHeadQuoted = '';
  private textHeadOf = -1;

  encodeText(text: string): string {
    if (this.done) return '';
    let out = '';
    if (!this.started) out += this.start(0);
    if (this.open?.kind !== 'text') out += this.closeBlock() + this.openTextBlock();
    const index = this.open!.index;
    if (this.textHeadOf !== index) {
      this.textHead = `${TEXT_DELTA_HEAD}${index}${TEXT_DELTA_MIDDLE}`;
      this.textHeadQuoted = `${this.textHead}"`;
      this.textHeadOf = index;
    }
    // The hottest event, written as `sseEvent` would write it: only the text is serialised, and a short
    // one that needs no escaping not even that (two concatenations an event).
    const delta = isShortVerbatim(text)
      ? `${this.textHeadQuoted}${text}"}}\n\n`
      : `${this.textHead}${JSON.stringify(text)}}}\n\n`;
    return out === '' ? delta : out + delta;
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
        return out + this.encodeText(event.text);
      case 'reasoning':
        if (this.open?.kind !== 'thinking') {
          out += this.closeBlock() + this.openBlock({ type: 'thinking', thinking: '', signature: '' });
        }
        return (
          out +
          sseEvent('content_block_delta', {
            type: 'content_block_delta',
            index: this.open?.index,
            delta: { type: 'thinking_delta', thinking: event.text },
          })
        );
      case 'reasoning_signature': {
        // Only a signature the client can give back (its own family, or wrapped by the relay) is written.
        if (event.signature.family !== 'anthropic') return out;
        if (event.redacted) {
          out +=
            this.closeBlock() + this.openBlock({ type: 'redacted_thinking', data: event.signature.value });
          return out + this.closeBlock();
        }
        // A signature ends its thinking block; an empty one (reasoning that had none) only ends it.
        if (!event.signature.value) return this.open?.kind === 'thinking' ? out + this.closeBlock() : out;
        if (this.open?.kind !== 'thinking') {
          out += this.closeBlock() + this.openBlock({ type: 'thinking', thinking: '', signature: '' });
        }
        const index = this.open?.index;
        return (
          out +
          sseEvent('content_block_delta', {
            type: 'content_block_delta',
            index,
            delta: { type: 'signature_delta', signature: event.signature.value },
          }) +
          this.closeBlock()
        );
      }
      case 'tool_call_start':
        this.callArguments.set(event.index, '');
        out += this.closeBlock();
        return (
          out + this.openBlock({ type: 'tool_use', id: event.id, name: event.name, input: {} }, event.index)
        );
      case 'tool_call_delta': {
        const index = this.toolBlocks.get(event.index);
        if (index === undefined) return out;
        this.callArguments.set(event.index, (this.callArguments.get(event.index) ?? '') + event.arguments);
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
        // No `content_block_stop` for a cut call either: an SDK would parse the part it has as a whole input.
        if (stoppedInsideCall(event.stopReason, this.callArguments.values()))
          return out + this.encode({ type: 'error', error: CUT_TOOL_CALL });
        this.done = true;
        return out + this.closeBlock() + messageDelta(event) + MESSAGE_STOP;
      case 'error':
        this.done = true;
        this.failed = true;
        return out + encodeError(event.error);
    }
  }
}

/** The `message_delta` that ends a stream, as `sseEvent` writes it; only its values serialised. */
function messageDelta(event: Extract<StreamEvent, { type: 'finish' }>): string {
  const stopReason = CANONICAL_TO_STOP[event.stopReason] as string | undefined;
  const stopSequence = event.stopSequence ?? null;
  const output = event.usage?.outputTokens ?? 0;
  const input = event.usage?.inputTokens;
  if (
    typeof stopReason === 'string' &&
    (stopSequence === null || typeof stopSequence === 'string') &&
    typeof output === 'number' &&
    (event.usage === undefined || (typeof input === 'number' && event.usage.cachedInputTokens === undefined))
  ) {
    return (
      `event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":${quotedJson(stopReason)},` +
      `"stop_sequence":${stopSequence === null ? 'null' : quotedJson(stopSequence)}},` +
      `"usage":{"output_tokens":${numberJson(output)}` +
      `${event.usage === undefined ? '' : `,"input_tokens":${numberJson(input!)}`}}}\n\n`
    );
  }
  return sseEvent('message_delta', {
    type: 'message_delta',
    delta: {
      stop_reason: CANONICAL_TO_STOP[event.stopReason],
      stop_sequence: event.stopSequence ?? null,
    },
    usage: {
      output_tokens: event.usage?.outputTokens ?? 0,
      ...(event.usage ? encodeInputUsage(event.usage) : {}),
    },
  });
}

function encodeError(info: ErrorInfo): string {
  return sseEvent('error', errorEnvelope('anthropic', info));
}

function errorFromBody(body: Json, status: number | undefined): ErrorInfo {
  const err = isRecord(body.error) ? body.error : {};
  const type = optStr(err.type);
  const resolved = status ?? (type ? ERROR_TYPE_STATUS[type] : undefined) ?? 500;
  const message = optStr(err.message) ?? `Backend answered HTTP ${resolved}`;
  return {
    status: resolved,
    message,
    code: type === 'overloaded_error' ? 'overloaded' : codeForBackendError(resolved, message),
  };
}

export function createAnthropicCodec(options: CodecOptions = {}): ProtocolCodec {
  const now = options.now ?? Date.now;
  return {
    decodeRequest(body, ctx) {
      const b = record(body, 'body');
      rejectUnknownFields(b, KNOWN_FIELDS);
      const notes: Notes = {};
      dropHints(b, HINTS, notes);
      const config = b.output_config === undefined ? {} : record(b.output_config, 'output_config');
      rejectUnknownFields(config, OUTPUT_CONFIG_FIELDS, 'output_config.');
      const reasoningPaths: string[] = [];
      const reasoning = decodeReasoning(b.thinking, config.effort, reasoningPaths, notes);
      const system = decodeSystem(b.system, 'system', notes);
      const { messages, systems } = decodeMessages(b.messages, notes);
      const tools = decodeTools(b.tools, notes);
      const { choice, parallel } = decodeToolChoice(b.tool_choice);
      const topK = optInteger(b.top_k, 'top_k');
      const sourcePaths = {
        ...(topK !== undefined ? { topK: ['top_k'] } : {}),
        ...(parallel === false ? { parallelToolCalls: ['tool_choice.disable_parallel_tool_use'] } : {}),
        ...(reasoning ? { reasoning: reasoningPaths } : {}),
        ...(config.format !== undefined ? { responseFormat: ['output_config.format'] } : {}),
      };
      const allSystem = system === undefined ? systems : [system, ...systems];
      return {
        model: ctx.model,
        system: allSystem.length ? allSystem.join('\n\n') : undefined,
        messages,
        temperature: optNumber(b.temperature, 'temperature'),
        topP: optNumber(b.top_p, 'top_p'),
        topK,
        maxTokens: optInteger(b.max_tokens, 'max_tokens'),
        stop: optStringList(b.stop_sequences, 'stop_sequences'),
        tools,
        toolChoice: choice,
        parallelToolCalls: parallel,
        stream: ctx.stream,
        reasoning,
        responseFormat: config.format === undefined ? undefined : decodeFormat(config.format),
        sourcePaths: Object.keys(sourcePaths).length ? sourcePaths : undefined,
        dropped: notes.dropped,
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
      const body: Json = { model: req.model, max_tokens: req.maxTokens ?? defaultMaxTokens(req.model) };
      if (req.system !== undefined && req.system !== '') body.system = req.system;
      body.messages = encodeMessages(req.messages);
      let tools: Json[] | undefined = req.tools?.map((t) => ({
        name: t.name,
        ...(t.description !== undefined ? { description: t.description } : {}),
        input_schema: t.parameters,
      }));
      let toolChoice = encodeToolChoice(req);
      if (req.responseFormat) {
        if (req.tools?.some((t) => t.name === ANSWER_TOOL))
          throw invalid('tools', `the tool name '${ANSWER_TOOL}' is the proxy's own`);
        tools = [...(tools ?? []), answerTool(req)];
        toolChoice = answerChoice(req);
      }
      const optional: Json = {
        temperature: req.temperature,
        top_p: req.topP,
        top_k: req.topK,
        stop_sequences: req.stop,
        tools,
        tool_choice: toolChoice,
      };
      for (const [k, v] of Object.entries(optional)) if (v !== undefined) body[k] = v;
      if (req.reasoning) encodeThinking(req, req.reasoning, body);
      if (req.stream) body.stream = true;
      return body;
    },

    decodeResponse(body) {
      const b = record(body, 'response');
      const content: ResponsePart[] = [];
      let answered = false;
      for (const raw of array(b.content ?? [], 'response.content')) {
        if (!isRecord(raw)) continue;
        if (raw.type === 'text' && typeof raw.text === 'string')
          content.push({ type: 'text', text: raw.text });
        if (raw.type === 'thinking' && typeof raw.thinking === 'string') {
          const signature = { family: 'anthropic', value: optStr(raw.signature) ?? '' };
          content.push({ type: 'reasoning', text: raw.thinking, signature });
        }
        if (raw.type === 'redacted_thinking' && typeof raw.data === 'string') {
          const signature = { family: 'anthropic', value: raw.data };
          content.push({ type: 'reasoning', text: '', signature, redacted: true });
        }
        if (raw.type === 'tool_use' && raw.name === ANSWER_TOOL) {
          answered = true;
          content.push({ type: 'text', text: JSON.stringify(raw.input ?? {}) });
        } else if (raw.type === 'tool_use') {
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
        stopReason: answerStop(STOP_REASONS[String(b.stop_reason)] ?? 'end_turn', answered, content),
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
        content: res.content
          .map((p) =>
            p.type === 'text'
              ? { type: 'text', text: p.text }
              : p.type === 'reasoning'
                ? reasoningBlock(p, true)
                : { type: 'tool_use', id: p.id, name: p.name, input: answerArguments(p.arguments) },
          )
          .filter((b) => b !== null),
        stop_reason: CANONICAL_TO_STOP[res.stopReason],
        stop_sequence: res.stopSequence ?? null,
        usage: { ...encodeInputUsage(res.usage), output_tokens: res.usage.outputTokens },
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
