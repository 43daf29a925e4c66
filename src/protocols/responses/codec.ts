/**
 * OpenAI Responses API ⇄ canonical (README, "Responses API"). Decodes a `POST /v1/responses` body (input as
 * a string or items, instructions, function and freeform tools, text.format) and encodes the Response
 * object and its typed event stream; in the other direction it speaks to a Responses-only backend.
 *
 * What the canonical model cannot hold:
 * - freeform (`custom`) tools travel as function tools with one string argument, `input`; the per-request
 *   context (`ResponsesContext.customTools`) turns their calls back into `custom_tool_call` items;
 * - `reasoning` items are reasoning parts (summary text, `encrypted_content` as an OpenAI signature: README,
 *   "Reasoning between families");
 * - `reasoning.effort` / `reasoning.summary` are the reasoning control (README, "Reasoning controls");
 * - hosted tools (`HOSTED_TOOLS`) are dropped with notice; a `tool_choice` forcing one is a 400.
 */
import { randomUUID } from 'node:crypto';
import type {
  ChatRequest,
  ChatResponse,
  ContentPart,
  ImagePart,
  Message,
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
import type { ErrorInfo } from '../error-envelopes.js';
import { createOpenAICodec } from '../openai/codec.js';
import { effortFromWire, reasoningWord } from '../reasoning.js';
import {
  array,
  dropSetting,
  dropWithNotice,
  invalid,
  isRecord,
  optInteger,
  optNumber,
  optString,
  parseDataUrl,
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
import { flatToolName, flattenTools, type NamespacedName } from './tool-namespaces.js';

/**
 * Tools a translated backend cannot be given, dropped with notice: hosted tools, run by OpenAI itself.
 * (Codex CLI's `namespace` groups are flattened into named tools: tool-namespaces.ts.)
 */
export const HOSTED_TOOLS: ReadonlySet<string> = new Set([
  'web_search',
  'web_search_preview',
  'web_search_preview_2025_03_11',
  'file_search',
  'code_interpreter',
  'image_generation',
  'mcp',
  'computer_use_preview',
  'computer_use',
  'local_shell',
  // Codex 0.171 with its gpt-5.5 profile: OpenAI's own tool search (test/fixtures/clients/codex-0.171.0).
  'tool_search',
]);

/** The function a `local_shell_call` input item becomes on translation (its tool is dropped: HOSTED_TOOLS). */
const LOCAL_SHELL = 'local_shell';

/** Request fields read below. */
const READ_FIELDS = [
  'model',
  'input',
  'instructions',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'max_output_tokens',
  'temperature',
  'top_p',
  'text',
  'stream',
  'reasoning',
] as const;

/** Hints: dropped with notice on translation (cost, caching, telemetry, state the proxy keeps itself). */
const HINT_FIELDS = [
  'metadata',
  'prompt_cache_key',
  'include',
  'service_tier',
  'user',
  'safety_identifier',
  'stream_options',
  'truncation',
  'background',
  'top_logprobs',
  'max_tool_calls',
  'prompt',
  // Codex CLI's session telemetry.
  'client_metadata',
] as const;

/** Hints whose other values change the answer: accepted only at their neutral value. */
const NEUTRAL_HINTS: Record<string, (v: unknown) => boolean> = {
  background: (v) => v === false,
  top_logprobs: (v) => v === 0,
  prompt: () => false,
};

/** The proxy keeps responses itself (`store`, `previous_response_id`): nothing is dropped for them. */
const KNOWN_FIELDS = new Set<string>([...READ_FIELDS, ...HINT_FIELDS, 'store', 'previous_response_id']);

/** What one request's Response object needs beyond the canonical answer. */
export interface ResponsesContext {
  /** `resp_…`: the id the client gets (and GET /v1/responses/{id} finds). */
  readonly responseId: string;
  /** Unix seconds. */
  readonly createdAt: number;
  /** Names of the client's freeform tools: their calls are answered as `custom_tool_call` items. */
  readonly customTools: ReadonlySet<string>;
  /** Flat names of tools of a namespace (Codex's): their calls are answered with `name` and `namespace`. */
  readonly namespaced: ReadonlyMap<string, NamespacedName>;
  /** Request fields the Response object repeats (instructions, tools, tool_choice, sampling …). */
  readonly echo: Json;
  /** Told the finished Response object (a whole answer, or the stream's final one). */
  onResponse?: ((response: Json) => void) | undefined;
}

export function newResponseId(): string {
  // The UUID's 32 hex digits without its four dashes (8-4-4-4-12): slices, not a `replaceAll` (a search).
  const u = randomUUID();
  return `resp_${u.slice(0, 8)}${u.slice(9, 13)}${u.slice(14, 18)}${u.slice(19, 23)}${u.slice(24)}`;
}

/** The Response fields that repeat the request, with the API's defaults. */
function echoOf(body: Json): Json {
  return {
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    metadata: isRecord(body.metadata) ? body.metadata : {},
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: isRecord(body.reasoning)
      ? { effort: body.reasoning.effort ?? null, summary: body.reasoning.summary ?? null }
      : { effort: null, summary: null },
    store: body.store ?? true,
    temperature: body.temperature ?? null,
    text: isRecord(body.text) ? body.text : { format: { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: Array.isArray(body.tools) ? body.tools : [],
    top_p: body.top_p ?? null,
    truncation: body.truncation ?? 'disabled',
    user: body.user ?? null,
  };
}

/** The context of one Responses request, read from the client's body. */
export function responsesContext(body: Json, now: () => number = Date.now): ResponsesContext {
  const { tools, namespaced } = flattenTools(body);
  const customTools = new Set<string>();
  for (const tool of tools) {
    // Not a tool object: the decoder answers it with a 400 naming it; nothing to know here.
    if (isRecord(tool) && tool.type === 'custom' && typeof tool.name === 'string') customTools.add(tool.name);
  }
  return {
    responseId: newResponseId(),
    createdAt: Math.floor(now() / 1000),
    customTools,
    namespaced,
    echo: echoOf(body),
  };
}

// --- request: Responses → canonical ----------------------------------------------------------------------

/** The text of instructions-like content: a string or `input_text` parts. */
function textContent(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  return array(content, param)
    .map((p, i) => {
      const part = record(p, `${param}[${i}]`);
      if (part.type === 'input_text' || part.type === 'output_text' || part.type === 'text')
        return string(part.text, `${param}[${i}].text`);
      if (part.type === 'refusal') return string(part.refusal, `${param}[${i}].refusal`);
      throw untranslatable(`${param}[${i}].type`, `'${String(part.type)}' is not allowed here`);
    })
    .join('');
}

function decodeImage(part: Json, at: string): ContentPart {
  if (part.file_id !== undefined && part.file_id !== null) throw untranslatable(`${at}.file_id`);
  const url = string(part.image_url, `${at}.image_url`);
  const inline = parseDataUrl(url);
  if (inline) return { type: 'image', source: 'base64', ...inline };
  if (url.startsWith('data:')) throw invalid(`${at}.image_url`, 'only base64 data URLs are supported');
  return { type: 'image', source: 'url', url };
}

function userContent(content: unknown, param: string): ContentPart[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return array(content, param).map((p, i): ContentPart => {
    const at = `${param}[${i}]`;
    const part = record(p, at);
    switch (part.type) {
      case 'input_text':
      case 'output_text':
        return { type: 'text', text: string(part.text, `${at}.text`) };
      case 'input_image':
        return decodeImage(part, at);
      default:
        throw untranslatable(`${at}.type`, `'${String(part.type)}' content cannot be translated`);
    }
  });
}

/** A tool's output: a string, or parts of which only text translates. */
function outputText(value: unknown, param: string): string {
  if (typeof value === 'string') return value;
  return textContent(value, param);
}

/** Builds canonical messages from input items, merging what belongs to one turn. */
class Turns {
  readonly systems: string[] = [];
  readonly messages: Message[] = [];
  /** `local_shell_call` items' ids to their call ids: an output may name its call by either. */
  readonly localShellCalls = new Map<string, string>();

  private last(role: Message['role']): Message {
    const last = this.messages[this.messages.length - 1];
    if (last?.role === role) return last;
    const message: Message = { role, content: [] };
    this.messages.push(message);
    return message;
  }

  add(role: Message['role'], parts: ContentPart[]): void {
    // Two user messages in a row stay two turns' worth of content in one canonical message.
    this.last(role).content.push(...parts);
  }
}

function decodeInputItem(item: Json, at: string, turns: Turns): void {
  const type = item.type ?? (item.role !== undefined ? 'message' : undefined);
  switch (type) {
    case 'message': {
      const role = item.role;
      if (role === 'system' || role === 'developer')
        turns.systems.push(textContent(item.content, `${at}.content`));
      else if (role === 'user') turns.add('user', userContent(item.content, `${at}.content`));
      else if (role === 'assistant') {
        const text = textContent(item.content, `${at}.content`);
        if (text) turns.add('assistant', [{ type: 'text', text }]);
      } else throw untranslatable(`${at}.role`, `'${String(role)}' cannot be translated`);
      return;
    }
    case 'function_call':
      turns.add('assistant', [
        {
          type: 'tool_call',
          id: string(item.call_id, `${at}.call_id`),
          name: flatToolName(item.namespace, string(item.name, `${at}.name`)),
          arguments: optString(item.arguments, `${at}.arguments`) ?? '',
        },
      ]);
      return;
    case 'custom_tool_call':
      turns.add('assistant', [
        {
          type: 'tool_call',
          id: string(item.call_id, `${at}.call_id`),
          name: flatToolName(item.namespace, string(item.name, `${at}.name`)),
          arguments: JSON.stringify({ input: optString(item.input, `${at}.input`) ?? '' }),
        },
      ]);
      return;
    case 'function_call_output':
    case 'custom_tool_call_output':
      turns.add('tool', [
        {
          type: 'tool_result',
          toolCallId: string(item.call_id, `${at}.call_id`),
          content: outputText(item.output, `${at}.output`),
        },
      ]);
      return;
    case 'local_shell_call': {
      // Codex's built-in shell, run through a backend that speaks the Responses API earlier in the session:
      // a call of a `local_shell` function whose arguments are its action (the argv is its `command`).
      const callId = optString(item.call_id, `${at}.call_id`) ?? string(item.id, `${at}.id`);
      if (typeof item.id === 'string') turns.localShellCalls.set(item.id, callId);
      turns.add('assistant', [
        {
          type: 'tool_call',
          id: callId,
          name: LOCAL_SHELL,
          arguments: JSON.stringify(record(item.action, `${at}.action`)),
        },
      ]);
      return;
    }
    case 'local_shell_call_output': {
      // The API names the call by `id`; Codex sends its `call_id`.
      const call = optString(item.call_id, `${at}.call_id`) ?? string(item.id, `${at}.id`);
      turns.add('tool', [
        {
          type: 'tool_result',
          toolCallId: turns.localShellCalls.get(call) ?? call,
          content: outputText(item.output, `${at}.output`),
        },
      ]);
      return;
    }
    case 'reasoning':
      // Its summary and encrypted content: back to OpenAI, or through the relay to the family that made it.
      turns.add('assistant', [reasoningPart(item)]);
      return;
    case 'additional_tools':
      // Codex's tools: read with the request's own (flattenTools).
      return;
    case 'item_reference':
      // The pipeline replaced every reference to an item of a response the proxy kept for this key
      // (src/pipeline/item-references.ts): this one names an item only a Responses backend could know.
      throw untranslatable(
        `${at}.id`,
        "names no item of a response this proxy kept for this key: an 'item_reference' is resolved from the proxy's stored responses (`store`), or by a backend that speaks the Responses API",
      );
    default:
      throw untranslatable(`${at}.type`, `'${String(type)}' input items cannot be translated`);
  }
}

/** A reasoning item (input or output) as a reasoning part: its summary's text, its encrypted content. */
function reasoningPart(item: Json): ReasoningPart {
  const summary = Array.isArray(item.summary) ? item.summary : [];
  const text = summary.map((s) => (isRecord(s) && typeof s.text === 'string' ? s.text : '')).join('\n\n');
  const value = typeof item.encrypted_content === 'string' ? item.encrypted_content : '';
  return { type: 'reasoning', text, signature: { family: 'openai', value } };
}

/** A reasoning part as an output item; `encrypted_content` only with a signature the client can give back. */
function reasoningItem(id: string | undefined, part: ReasoningPart): Json {
  const value = part.signature?.family === 'openai' ? part.signature.value : '';
  return {
    ...(id !== undefined ? { id } : {}),
    type: 'reasoning',
    summary: part.text ? [{ type: 'summary_text', text: part.text }] : [],
    ...(value ? { encrypted_content: value } : {}),
  };
}

/** The JSON schema of a freeform tool's one argument. */
function freeformParameters(tool: Json): Record<string, unknown> {
  const format = isRecord(tool.format) ? tool.format : undefined;
  const grammar =
    format?.type === 'grammar' && typeof format.definition === 'string'
      ? ` Follow this ${String(format.syntax ?? '')} grammar:\n${format.definition}`
      : '';
  return {
    type: 'object',
    properties: { input: { type: 'string', description: `The tool's raw input text.${grammar}` } },
    required: ['input'],
    additionalProperties: false,
  };
}

function decodeTools(value: unknown, req: ChatRequest): ToolDefinition[] | undefined {
  if (value === undefined || value === null) return undefined;
  const tools: ToolDefinition[] = [];
  array(value, 'tools').forEach((t, i) => {
    const at = `tools[${i}]`;
    const tool = record(t, at);
    const type = String(tool.type);
    if (type === 'function') {
      tools.push({
        name: string(tool.name, `${at}.name`),
        description: optString(tool.description, `${at}.description`),
        parameters:
          tool.parameters === undefined || tool.parameters === null
            ? { type: 'object', properties: {} }
            : record(tool.parameters, `${at}.parameters`),
      });
    } else if (type === 'custom') {
      tools.push({
        name: string(tool.name, `${at}.name`),
        description: optString(tool.description, `${at}.description`),
        parameters: freeformParameters(tool),
      });
    } else if (HOSTED_TOOLS.has(type)) {
      dropWithNotice(req, `tools[].${type}`);
    } else throw untranslatable(`${at}.type`, `'${type}' tools cannot be translated`);
  });
  return tools.length > 0 ? tools : undefined;
}

function decodeToolChoice(value: unknown): ToolChoice | undefined {
  if (value === undefined || value === null) return undefined;
  if (value === 'auto' || value === 'none' || value === 'required') return { type: value };
  const choice = record(value, 'tool_choice');
  const type = String(choice.type);
  if (type === 'function' || type === 'custom')
    return { type: 'tool', name: string(choice.name, 'tool_choice.name') };
  if (HOSTED_TOOLS.has(type))
    throw untranslatable('tool_choice', `forces the hosted tool '${type}', which this backend cannot run`);
  throw untranslatable('tool_choice');
}

function decodeTextFormat(value: unknown): ResponseFormat | undefined {
  if (value === undefined || value === null) return undefined;
  const text = record(value, 'text');
  rejectUnknownFields(text, new Set(['format', 'verbosity']), 'text.');
  if (text.format === undefined || text.format === null) return undefined;
  const format = record(text.format, 'text.format');
  switch (format.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return { type: 'json' };
    case 'json_schema':
      return {
        type: 'json_schema',
        name: string(format.name, 'text.format.name'),
        schema: record(format.schema, 'text.format.schema'),
        description: optString(format.description, 'text.format.description'),
        strict: typeof format.strict === 'boolean' ? format.strict : undefined,
      };
    default:
      throw untranslatable('text.format.type');
  }
}

/** `context` (Codex's default model: which turns' reasoning the model sees) is a hint, dropped with notice. */
const REASONING_FIELDS = new Set(['effort', 'summary', 'generate_summary', 'context']);

/**
 * `reasoning` as a reasoning control (README, "Reasoning controls"): `effort` through the reasoning table
 * (`none` turns reasoning off: the backend's default), `summary` (or the older `generate_summary`) as the
 * wish to see the model's thoughts; a summary alone leaves the amount of thinking to the model.
 */
function decodeReasoning(value: unknown): ReasoningControl | undefined {
  if (value === undefined || value === null) return undefined;
  const config = record(value, 'reasoning');
  rejectUnknownFields(config, REASONING_FIELDS, 'reasoning.');
  const word = optString(config.effort, 'reasoning.effort');
  if (word === 'none') return undefined;
  const summary = optString(config.summary ?? config.generate_summary, 'reasoning.summary');
  let effort;
  if (word !== undefined) {
    effort = effortFromWire('responses', word);
    if (effort === undefined) throw invalid('reasoning.effort', `unknown effort '${word}'`);
  }
  if (effort === undefined && summary === undefined) return undefined;
  return {
    mode: effort !== undefined ? 'enabled' : 'adaptive',
    ...(effort !== undefined ? { effort } : {}),
    ...(summary !== undefined ? { includeThoughts: true } : {}),
  };
}

function decodeRequest(body: unknown, ctx: { model: string; stream: boolean }): ChatRequest {
  const b = record(body, 'body');
  rejectUnknownFields(b, KNOWN_FIELDS);
  if (b.previous_response_id !== undefined && b.previous_response_id !== null)
    // The front-end replaces it with the stored conversation before translating (src/pipeline/responses.ts).
    throw untranslatable('previous_response_id', 'is unknown here');
  const req: ChatRequest = { model: ctx.model, messages: [], stream: ctx.stream };
  for (const [field, neutral] of Object.entries(NEUTRAL_HINTS)) {
    if (b[field] !== undefined && b[field] !== null && !neutral(b[field])) throw untranslatable(field);
  }
  for (const field of HINT_FIELDS)
    if (b[field] !== undefined && b[field] !== null) dropWithNotice(req, field);
  if (isRecord(b.text) && b.text.verbosity !== undefined && b.text.verbosity !== null)
    dropWithNotice(req, 'text.verbosity');
  if (isRecord(b.reasoning) && b.reasoning.context !== undefined && b.reasoning.context !== null)
    dropWithNotice(req, 'reasoning.context');
  const turns = new Turns();
  if (b.instructions !== undefined && b.instructions !== null)
    turns.systems.push(textContent(b.instructions, 'instructions'));
  if (typeof b.input === 'string') turns.add('user', [{ type: 'text', text: b.input }]);
  else if (b.input !== undefined && b.input !== null) {
    array(b.input, 'input').forEach((item, i) =>
      decodeInputItem(record(item, `input[${i}]`), `input[${i}]`, turns),
    );
  }
  req.system = turns.systems.length > 0 ? turns.systems.join('\n\n') : undefined;
  req.messages = turns.messages;
  req.tools = decodeTools(flattenTools(b).tools, req);
  const choice = decodeToolChoice(b.tool_choice);
  if (choice?.type === 'tool' && !req.tools?.some((t) => t.name === choice.name))
    throw invalid('tool_choice', `names '${choice.name}', which is not among the tools`);
  req.toolChoice = req.tools === undefined && choice?.type !== 'none' ? undefined : choice;
  if (typeof b.parallel_tool_calls === 'boolean') req.parallelToolCalls = b.parallel_tool_calls;
  req.maxTokens = optInteger(b.max_output_tokens, 'max_output_tokens');
  req.temperature = optNumber(b.temperature, 'temperature');
  req.topP = optNumber(b.top_p, 'top_p');
  req.responseFormat = decodeTextFormat(b.text);
  // An encoder that cannot take a setting names the client's own field.
  if (req.responseFormat !== undefined) req.sourcePaths = { responseFormat: ['text.format'] };
  if (b.reasoning !== undefined && b.reasoning !== null) {
    req.reasoning = decodeReasoning(b.reasoning);
    if (req.reasoning !== undefined) {
      const given = Object.keys(b.reasoning as Json).filter(
        (k) => k !== 'context' && (b.reasoning as Json)[k] != null,
      );
      req.sourcePaths = { ...req.sourcePaths, reasoning: given.map((k) => `reasoning.${k}`) };
    }
  }
  return req;
}

// --- request: canonical → Responses (a Responses-only backend) --------------------------------------------

function encodeItems(req: ChatRequest): Json[] {
  const items: Json[] = [];
  req.messages.forEach((msg, i) => {
    const at = `messages[${i}]`;
    let content: Json[] = [];
    const flush = () => {
      if (content.length === 0) return;
      items.push({ type: 'message', role: msg.role === 'assistant' ? 'assistant' : 'user', content });
      content = [];
    };
    for (const part of msg.content) {
      switch (part.type) {
        case 'text':
          content.push(
            msg.role === 'assistant'
              ? { type: 'output_text', text: part.text, annotations: [] }
              : { type: 'input_text', text: part.text },
          );
          break;
        case 'image':
          if (msg.role === 'assistant')
            throw untranslatable(`${at}.content`, 'images in assistant messages cannot be sent');
          content.push(inputImage(part));
          break;
        case 'tool_call':
          flush();
          items.push({
            type: 'function_call',
            call_id: part.id,
            name: part.name,
            arguments: part.arguments || '{}',
          });
          break;
        case 'reasoning':
          // OpenAI takes reasoning back only with its encrypted content (another family's never comes here).
          if (part.signature?.family === 'openai' && part.signature.value) {
            flush();
            items.push(reasoningItem(undefined, part));
          }
          break;
        case 'tool_result':
          flush();
          {
            const text = part.isError ? `Error: ${part.content}` : part.content;
            // With images, the output is a list of input items (the Responses API takes images there).
            items.push({
              type: 'function_call_output',
              call_id: part.toolCallId,
              output: part.images?.length
                ? [...(text ? [{ type: 'input_text', text }] : []), ...part.images.map(inputImage)]
                : text,
            });
          }
          break;
      }
    }
    flush();
  });
  return items;
}

function encodeTextFormat(format: ResponseFormat): Json {
  if (format.type === 'json') return { type: 'json_object' };
  return {
    type: 'json_schema',
    // The Responses API requires a name: [a-zA-Z0-9_-], at most 64 characters.
    name: format.name ?? 'response',
    schema: format.schema,
    ...(format.description !== undefined ? { description: format.description } : {}),
    ...(format.strict !== undefined ? { strict: format.strict } : {}),
  };
}

/** An image as a Responses `input_image` item (inline data as a data: URL). */
function inputImage(image: ImagePart): Json {
  return {
    type: 'input_image',
    detail: 'auto',
    image_url: image.source === 'base64' ? `data:${image.mediaType};base64,${image.data}` : image.url,
  };
}

function encodeRequest(req: ChatRequest): Json {
  // The Responses API has no top_k: a sampling hint, dropped with notice (as to OpenAI chat).
  if (req.topK !== undefined) dropSetting(req, 'topK', 'top_k');
  const refused: Array<[unknown, string]> = [
    [req.stop, 'stop'],
    [req.presencePenalty, 'presence_penalty'],
    [req.frequencyPenalty, 'frequency_penalty'],
    [req.seed, 'seed'],
  ];
  for (const [value, name] of refused) {
    if (value !== undefined) throw untranslatable(name, 'cannot be translated to the Responses API');
  }
  const body: Json = { model: req.model, input: encodeItems(req) };
  const optional: Json = {
    instructions: req.system,
    tools: req.tools?.map((t) => ({
      type: 'function',
      name: t.name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      parameters: t.parameters,
      strict: false,
    })),
    tool_choice:
      req.toolChoice &&
      (req.toolChoice.type === 'tool'
        ? { type: 'function', name: req.toolChoice.name }
        : req.toolChoice.type),
    parallel_tool_calls: req.parallelToolCalls,
    max_output_tokens: req.maxTokens,
    temperature: req.temperature,
    top_p: req.topP,
    text: req.responseFormat && { format: encodeTextFormat(req.responseFormat) },
    reasoning: req.reasoning && {
      effort: reasoningWord(req.reasoning, 'responses'),
      ...(req.reasoning.includeThoughts ? { summary: 'auto' } : {}),
    },
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) body[k] = v;
  // The client resends its conversation every time: nothing to keep upstream.
  body.store = false;
  if (req.stream) body.stream = true;
  return body;
}

// --- response: the Response object ------------------------------------------------------------------------

export function encodeUsage(u: Usage): Json {
  return {
    input_tokens: u.inputTokens,
    // Members every Responses usage has: 0 when the backend gave no breakdown.
    input_tokens_details: { cached_tokens: u.cachedInputTokens ?? 0 },
    output_tokens: u.outputTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens ?? 0 },
    total_tokens: u.inputTokens + u.outputTokens,
  };
}

/** The suffix item ids share with their response: `resp_x` → `msg_x_0`, `fc_x_1`. */
function itemBase(responseId: string): string {
  return responseId.startsWith('resp_') ? responseId.slice(5) : responseId;
}

/** An output item id the proxy made (`itemId`): its type's prefix, the response's id, the item's place. */
const OWN_ITEM_ID = /^[a-z]{2,4}_([0-9a-f]{32})_\d{1,6}$/;

/**
 * The response whose output holds an item the proxy named (`msg_x_0` → `resp_x`), or undefined for an id
 * of another shape (a Responses backend's own): where an `item_reference` to it is looked up.
 */
export function responseOfItem(id: string): string | undefined {
  const match = OWN_ITEM_ID.exec(id);
  return match === null ? undefined : `resp_${match[1] as string}`;
}

function messageItem(id: string, text: string, status: string): Json {
  return {
    id,
    type: 'message',
    status,
    role: 'assistant',
    content: [{ type: 'output_text', text, annotations: [], logprobs: [] }],
  };
}

/** A freeform call's input: the `input` argument, or the arguments as they came when they are not that. */
function customInput(args: string): string {
  const parsed = parseJson(args);
  return isRecord(parsed) && typeof parsed.input === 'string' ? parsed.input : args;
}

/** A call's name as the client declared its tool: with its namespace, for a tool of one. */
function callName(ctx: ResponsesContext, name: string): { name: string; namespace?: string } {
  const namespaced = ctx.namespaced.get(name);
  return namespaced === undefined ? { name } : { name: namespaced.name, namespace: namespaced.namespace };
}

function callItem(
  ctx: ResponsesContext,
  id: string,
  call: { id: string; name: string; arguments: string },
): Json {
  if (ctx.customTools.has(call.name)) {
    return {
      id,
      type: 'custom_tool_call',
      status: 'completed',
      call_id: call.id,
      ...callName(ctx, call.name),
      input: customInput(call.arguments),
    };
  }
  return {
    id,
    type: 'function_call',
    status: 'completed',
    call_id: call.id,
    ...callName(ctx, call.name),
    arguments: call.arguments,
  };
}

function itemId(ctx: ResponsesContext, part: ResponsePart, index: number): string {
  const base = itemBase(ctx.responseId);
  if (part.type === 'text') return `msg_${base}_${index}`;
  if (part.type === 'reasoning') return `rs_${base}_${index}`;
  return ctx.customTools.has(part.name) ? `ctc_${base}_${index}` : `fc_${base}_${index}`;
}

/** Output items, one per canonical part (consecutive text parts are one message). */
function outputItems(ctx: ResponsesContext, parts: readonly ResponsePart[]): Json[] {
  const merged: ResponsePart[] = [];
  for (const part of parts) {
    const last = merged[merged.length - 1];
    if (part.type === 'text' && last?.type === 'text')
      merged[merged.length - 1] = { type: 'text', text: last.text + part.text };
    else merged.push(part);
  }
  return merged.map((part, i) =>
    part.type === 'text'
      ? messageItem(itemId(ctx, part, i), part.text, 'completed')
      : part.type === 'reasoning'
        ? reasoningItem(itemId(ctx, part, i), part)
        : callItem(ctx, itemId(ctx, part, i), part),
  );
}

const INCOMPLETE_REASONS: Partial<Record<StopReason, string>> = {
  max_tokens: 'max_output_tokens',
  content_filter: 'content_filter',
};

function responseObject(
  ctx: ResponsesContext,
  model: string,
  status: string,
  output: Json[],
  extra: { usage?: Usage | undefined; stopReason?: StopReason; error?: ErrorInfo },
): Json {
  const reason = extra.stopReason && INCOMPLETE_REASONS[extra.stopReason];
  return {
    id: ctx.responseId,
    object: 'response',
    created_at: ctx.createdAt,
    status: extra.error ? 'failed' : reason ? 'incomplete' : status,
    background: false,
    error: extra.error ? { code: extra.error.code, message: extra.error.message } : null,
    incomplete_details: reason ? { reason } : null,
    ...ctx.echo,
    model,
    output,
    usage: extra.usage ? encodeUsage(extra.usage) : null,
  };
}

function encodeResponse(ctx: ResponsesContext, res: ChatResponse): Json {
  const response = responseObject(ctx, res.model, 'completed', outputItems(ctx, res.content), {
    usage: res.usage,
    stopReason: res.stopReason,
  });
  ctx.onResponse?.(response);
  return response;
}

// --- response: Responses → canonical (a Responses-only backend's answer) ----------------------------------

function decodeUsage(value: unknown): Usage | undefined {
  if (!isRecord(value)) return undefined;
  const input = isRecord(value.input_tokens_details) ? value.input_tokens_details : {};
  const output = isRecord(value.output_tokens_details) ? value.output_tokens_details : {};
  return withBreakdown(
    { inputTokens: Number(value.input_tokens ?? 0), outputTokens: Number(value.output_tokens ?? 0) },
    input.cached_tokens,
    output.reasoning_tokens,
  );
}

function stopReasonOf(response: Json, calls: boolean): StopReason {
  const reason = isRecord(response.incomplete_details) ? response.incomplete_details.reason : undefined;
  if (reason === 'max_output_tokens') return 'max_tokens';
  if (reason === 'content_filter') return 'content_filter';
  return calls ? 'tool_use' : 'end_turn';
}

function decodeOutputItem(item: unknown): ResponsePart[] {
  if (!isRecord(item)) return [];
  switch (item.type) {
    case 'message':
      return (Array.isArray(item.content) ? item.content : []).flatMap((p): ResponsePart[] => {
        if (!isRecord(p)) return [];
        if (p.type === 'output_text' && typeof p.text === 'string') return [{ type: 'text', text: p.text }];
        if (p.type === 'refusal' && typeof p.refusal === 'string') return [{ type: 'text', text: p.refusal }];
        return [];
      });
    case 'function_call':
      return [
        {
          type: 'tool_call',
          id: String(item.call_id ?? ''),
          name: String(item.name ?? ''),
          arguments: String(item.arguments ?? ''),
        },
      ];
    case 'custom_tool_call':
      return [
        {
          type: 'tool_call',
          id: String(item.call_id ?? ''),
          name: String(item.name ?? ''),
          arguments: JSON.stringify({ input: String(item.input ?? '') }),
        },
      ];
    case 'reasoning':
      return [reasoningPart(item)];
    default:
      // Hosted-tool items have no canonical form yet.
      return [];
  }
}

function decodeResponse(body: unknown): ChatResponse {
  const b = record(body, 'response');
  const content = array(b.output ?? [], 'response.output').flatMap(decodeOutputItem);
  return {
    id: typeof b.id === 'string' ? b.id : '',
    model: typeof b.model === 'string' ? b.model : '',
    content,
    stopReason: stopReasonOf(
      b,
      content.some((p) => p.type === 'tool_call'),
    ),
    usage: decodeUsage(b.usage) ?? { inputTokens: 0, outputTokens: 0 },
  };
}

// --- streams ----------------------------------------------------------------------------------------------

/** Error codes agents act on, by status, for an error the proxy names itself inside a stream. */
function errorEvent(info: ErrorInfo, sequence: number): string {
  return sseEvent('error', {
    type: 'error',
    code: info.code,
    message: info.message,
    param: info.param ?? null,
    sequence_number: sequence,
  });
}

interface OpenItem {
  outputIndex: number;
  id: string;
  kind: 'message' | 'function_call' | 'custom_tool_call' | 'reasoning';
  text: string;
  call?: { id: string; name: string };
}

/** Canonical events → the typed Responses event stream, every event numbered (`sequence_number`). */
/** The arguments of calls' items. */
function* callArguments(items: Iterable<OpenItem>): Iterable<string> {
  for (const item of items) yield item.text;
}

class ResponsesStreamEncoder implements StreamEncoder {
  done = false;
  failed = false;
  private sequence = 0;
  private started = false;
  private model: string;
  private inputTokens: number | undefined;
  private readonly parts: ResponsePart[] = [];
  private readonly open: OpenItem[] = [];
  private text: OpenItem | undefined;
  private reasoning: OpenItem | undefined;
  private readonly calls = new Map<number, OpenItem>();

  constructor(
    private readonly ctx: ResponsesContext,
    meta: StreamMeta,
  ) {
    this.model = meta.model;
  }

  /**
   * One numbered event: `type` and `sequence_number` first, then the payload's members (none of which is
   * named either). Written around the payload's JSON rather than spread into a new object: the same text,
   * one object fewer per event (docs/performance.md, "The Responses API's own costs").
   */
  private event(type: string, payload: Json): string {
    return this.eventOf(type, JSON.stringify(payload));
  }

  /** `event` of a payload already written as JSON (`members`: an object's text). */
  private eventOf(type: string, members: string): string {
    const rest = members === '{}' ? '' : `,${members.slice(1, -1)}`;
    return `event: ${type}\ndata: {"type":${JSON.stringify(type)},"sequence_number":${this.sequence++}${rest}}\n\n`;
  }

  /** `response.output_text.delta`, the stream's most frequent event, written from a template. */
  private textDelta(item: OpenItem, delta: string): string {
    const sequence = this.sequence++;
    return (
      `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":${sequence},` +
      `"item_id":${JSON.stringify(item.id)},"output_index":${item.outputIndex},"content_index":0,` +
      `"delta":${JSON.stringify(delta)},"logprobs":[]}\n\n`
    );
  }

  private snapshot(
    status: string,
    extra: Parameters<typeof responseObject>[4] = {},
    output: Json[] = [],
  ): Json {
    return responseObject(this.ctx, this.model, status, output, extra);
  }

  private begin(): string {
    this.started = true;
    // The same snapshot in both events: written once.
    const members = `{"response":${JSON.stringify(this.snapshot('in_progress'))}}`;
    return this.eventOf('response.created', members) + this.eventOf('response.in_progress', members);
  }

  private addItem(kind: OpenItem['kind'], part: ResponsePart, call?: { id: string; name: string }): OpenItem {
    const outputIndex = this.parts.length;
    this.parts.push(part);
    const item: OpenItem = { outputIndex, id: itemId(this.ctx, part, outputIndex), kind, text: '', call };
    this.open.push(item);
    return item;
  }

  private close(item: OpenItem): string {
    const at = { item_id: item.id, output_index: item.outputIndex };
    const done = outputItems(this.ctx, [this.parts[item.outputIndex] as ResponsePart])[0] as Json;
    done.id = item.id;
    if (item.kind === 'message') {
      const part = { type: 'output_text', text: item.text, annotations: [], logprobs: [] };
      return (
        this.event('response.output_text.done', { ...at, content_index: 0, text: item.text, logprobs: [] }) +
        this.event('response.content_part.done', { ...at, content_index: 0, part }) +
        this.event('response.output_item.done', { output_index: item.outputIndex, item: done })
      );
    }
    if (item.kind === 'reasoning') {
      const part = { type: 'summary_text', text: item.text };
      const summary = item.text
        ? this.event('response.reasoning_summary_text.done', { ...at, summary_index: 0, text: item.text }) +
          this.event('response.reasoning_summary_part.done', { ...at, summary_index: 0, part })
        : '';
      return (
        summary + this.event('response.output_item.done', { output_index: item.outputIndex, item: done })
      );
    }
    if (item.kind === 'custom_tool_call') {
      const input = String(done.input);
      return (
        (input ? this.event('response.custom_tool_call_input.delta', { ...at, delta: input }) : '') +
        this.event('response.custom_tool_call_input.done', { ...at, input }) +
        this.event('response.output_item.done', { output_index: item.outputIndex, item: done })
      );
    }
    return (
      this.event('response.function_call_arguments.done', { ...at, arguments: item.text }) +
      this.event('response.output_item.done', { output_index: item.outputIndex, item: done })
    );
  }

  private closeAll(): string {
    let out = '';
    for (const item of this.open) out += this.close(item);
    this.open.length = 0;
    this.text = undefined;
    this.reasoning = undefined;
    return out;
  }

  /** The open reasoning item, closed (reasoning ends where anything else starts). */
  private closeReasoning(): string {
    const item = this.reasoning;
    if (item === undefined) return '';
    this.reasoning = undefined;
    this.open.splice(this.open.indexOf(item), 1);
    return this.close(item);
  }

  private openReasoning(): string {
    const item = this.addItem('reasoning', { type: 'reasoning', text: '' });
    this.reasoning = item;
    return this.event('response.output_item.added', {
      output_index: item.outputIndex,
      item: { id: item.id, type: 'reasoning', summary: [] },
    });
  }

  private onReasoning(text: string): string {
    let out = '';
    if (this.reasoning === undefined) out += this.closeText() + this.openReasoning();
    const item = this.reasoning as OpenItem;
    const at = { item_id: item.id, output_index: item.outputIndex, summary_index: 0 };
    if (!item.text)
      out += this.event('response.reasoning_summary_part.added', {
        ...at,
        part: { type: 'summary_text', text: '' },
      });
    item.text += text;
    const part = this.parts[item.outputIndex] as ReasoningPart;
    this.parts[item.outputIndex] = { ...part, text: item.text };
    return out + this.event('response.reasoning_summary_text.delta', { ...at, delta: text });
  }

  /** A signature ends its reasoning item: the client gets it as `encrypted_content` when it is OpenAI's. */
  private onSignature(signature: ReasoningPart['signature']): string {
    let out = '';
    if (this.reasoning === undefined) out += this.closeText() + this.openReasoning();
    const item = this.reasoning as OpenItem;
    const part = this.parts[item.outputIndex] as ReasoningPart;
    this.parts[item.outputIndex] = { ...part, signature };
    return out + this.closeReasoning();
  }

  private closeText(): string {
    const item = this.text;
    if (item === undefined) return '';
    this.text = undefined;
    this.open.splice(this.open.indexOf(item), 1);
    return this.close(item);
  }

  private onText(text: string): string {
    let out = this.closeReasoning();
    if (this.text === undefined) {
      const item = this.addItem('message', { type: 'text', text: '' });
      this.text = item;
      out +=
        this.event('response.output_item.added', {
          output_index: item.outputIndex,
          item: { id: item.id, type: 'message', status: 'in_progress', role: 'assistant', content: [] },
        }) +
        this.event('response.content_part.added', {
          item_id: item.id,
          output_index: item.outputIndex,
          content_index: 0,
          part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
        });
    }
    const item = this.text;
    item.text += text;
    this.parts[item.outputIndex] = { type: 'text', text: item.text };
    return out + this.textDelta(item, text);
  }

  private onCallStart(index: number, id: string, name: string): string {
    // Text after a tool call is a message of its own.
    const out = this.closeReasoning() + this.closeText();
    const custom = this.ctx.customTools.has(name);
    const part: ResponsePart = { type: 'tool_call', id, name, arguments: '' };
    const item = this.addItem(custom ? 'custom_tool_call' : 'function_call', part, { id, name });
    this.calls.set(index, item);
    const names = callName(this.ctx, name);
    const added = custom
      ? { id: item.id, type: 'custom_tool_call', status: 'in_progress', call_id: id, ...names, input: '' }
      : { id: item.id, type: 'function_call', status: 'in_progress', call_id: id, ...names, arguments: '' };
    return out + this.event('response.output_item.added', { output_index: item.outputIndex, item: added });
  }

  private onCallDelta(index: number, args: string): string {
    const item = this.calls.get(index);
    if (item === undefined || !item.call) return '';
    item.text += args;
    this.parts[item.outputIndex] = {
      type: 'tool_call',
      id: item.call.id,
      name: item.call.name,
      arguments: item.text,
    };
    // A freeform call's input is known once its JSON arguments are whole: sent when it closes.
    if (item.kind === 'custom_tool_call') return '';
    return this.event('response.function_call_arguments.delta', {
      item_id: item.id,
      output_index: item.outputIndex,
      delta: args,
    });
  }

  encode(event: StreamEvent): string {
    if (this.done) return '';
    let out = this.started ? '' : this.begin();
    switch (event.type) {
      case 'start':
        if (event.inputTokens !== undefined) this.inputTokens = event.inputTokens;
        return out;
      case 'text':
        return event.text ? out + this.onText(event.text) : out;
      case 'reasoning':
        return event.text ? out + this.onReasoning(event.text) : out;
      case 'reasoning_signature':
        return out + this.onSignature(event.signature);
      case 'tool_call_start':
        return out + this.onCallStart(event.index, event.id, event.name);
      case 'tool_call_delta':
        return out + this.onCallDelta(event.index, event.arguments);
      case 'finish': {
        // The open items stay open: closing a cut call would say `response.function_call_arguments.done`.
        if (stoppedInsideCall(event.stopReason, callArguments(this.calls.values())))
          return out + this.encode({ type: 'error', error: CUT_TOOL_CALL });
        this.done = true;
        out += this.closeAll();
        const usage = event.usage ?? { inputTokens: this.inputTokens ?? 0, outputTokens: 0 };
        const response = this.snapshot(
          'completed',
          { usage, stopReason: event.stopReason },
          outputItems(this.ctx, this.parts),
        );
        const type = response.status === 'incomplete' ? 'response.incomplete' : 'response.completed';
        this.ctx.onResponse?.(response);
        return out + this.event(type, { response });
      }
      case 'error': {
        this.done = true;
        this.failed = true;
        out += errorEvent(event.error, this.sequence++);
        // What was still open when the stream broke is cut: never presented as complete.
        const output = outputItems(this.ctx, this.parts);
        for (const item of this.open) {
          const cut = output[item.outputIndex];
          if (cut !== undefined && 'status' in cut) cut.status = 'incomplete';
        }
        return (
          out +
          this.event('response.failed', { response: this.snapshot('failed', { error: event.error }, output) })
        );
      }
    }
  }
}

/** A Responses backend's typed events → canonical events. */
class ResponsesStreamDecoder implements StreamDecoder {
  private finished = false;
  private nextCall = 0;
  private calls = false;
  /** Output index → canonical call index (freeform calls keep their input until they close). */
  private readonly byOutput = new Map<number, { index: number; custom: boolean; input: string }>();

  push(msg: SseMessage): StreamEvent[] {
    if (this.finished) return [];
    const data = parseJson(msg.data);
    if (!isRecord(data)) return [];
    const type = typeof data.type === 'string' ? data.type : msg.event;
    const response = isRecord(data.response) ? data.response : {};
    switch (type) {
      case 'response.created':
        return [{ type: 'start', id: optStr(response.id), model: optStr(response.model) }];
      case 'response.output_text.delta':
      case 'response.refusal.delta':
        return typeof data.delta === 'string' && data.delta ? [{ type: 'text', text: data.delta }] : [];
      case 'response.reasoning_summary_text.delta':
        return typeof data.delta === 'string' && data.delta ? [{ type: 'reasoning', text: data.delta }] : [];
      case 'response.output_item.added': {
        const item = isRecord(data.item) ? data.item : {};
        if (item.type !== 'function_call' && item.type !== 'custom_tool_call') return [];
        const call = { index: this.nextCall++, custom: item.type === 'custom_tool_call', input: '' };
        this.byOutput.set(Number(data.output_index), call);
        this.calls = true;
        return [
          {
            type: 'tool_call_start',
            index: call.index,
            id: String(item.call_id ?? ''),
            name: String(item.name ?? ''),
          },
        ];
      }
      case 'response.function_call_arguments.delta': {
        const call = this.byOutput.get(Number(data.output_index));
        return call && typeof data.delta === 'string' && data.delta
          ? [{ type: 'tool_call_delta', index: call.index, arguments: data.delta }]
          : [];
      }
      case 'response.custom_tool_call_input.delta': {
        const call = this.byOutput.get(Number(data.output_index));
        if (call && typeof data.delta === 'string') call.input += data.delta;
        return [];
      }
      case 'response.output_item.done': {
        if (isRecord(data.item) && data.item.type === 'reasoning') {
          const signature = reasoningPart(data.item).signature as ReasoningPart['signature'] & object;
          return [{ type: 'reasoning_signature', signature }];
        }
        const call = this.byOutput.get(Number(data.output_index));
        if (!call?.custom) return [];
        const item = isRecord(data.item) ? data.item : {};
        const input = typeof item.input === 'string' ? item.input : call.input;
        return [{ type: 'tool_call_delta', index: call.index, arguments: JSON.stringify({ input }) }];
      }
      case 'response.completed':
      case 'response.incomplete':
        this.finished = true;
        return [
          {
            type: 'finish',
            stopReason: stopReasonOf(response, this.calls),
            usage: decodeUsage(response.usage),
          },
        ];
      case 'response.failed': {
        this.finished = true;
        const err = isRecord(response.error) ? response.error : {};
        return [
          {
            type: 'error',
            error: {
              status: 502,
              message: optStr(err.message) ?? 'Backend response failed',
              code: optStr(err.code) ?? 'server_error',
            },
          },
        ];
      }
      case 'error':
        this.finished = true;
        return [
          {
            type: 'error',
            error: {
              status: 502,
              message: optStr(data.message) ?? 'Backend stream failed',
              code: optStr(data.code) ?? 'server_error',
            },
          },
        ];
      default:
        return [];
    }
  }

  end(): StreamEvent[] {
    return [];
  }
}

function optStr(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export interface ResponsesCodecOptions extends CodecOptions {
  /** One request's context; without it every answer gets a fresh id and no freeform tools are known. */
  context?: ResponsesContext;
}

/**
 * The Responses codec. The shared instance (protocols/registry.ts) serves backends and context-free use; the
 * front-end builds one per request with its `ResponsesContext`.
 */
export function createResponsesCodec(options: ResponsesCodecOptions = {}): ProtocolCodec {
  const openai = createOpenAICodec(options);
  const now = options.now ?? Date.now;
  const contextFor = (): ResponsesContext =>
    options.context ?? {
      responseId: newResponseId(),
      createdAt: Math.floor(now() / 1000),
      customTools: new Set(),
      namespaced: new Map(),
      echo: echoOf({}),
    };
  return {
    decodeRequest,
    encodeRequest,
    decodeResponse,
    encodeResponse: (res) => encodeResponse(contextFor(), res),
    createStreamDecoder: () => new ResponsesStreamDecoder(),
    createStreamEncoder: (meta) => new ResponsesStreamEncoder(contextFor(), meta),
    encodeError: (info, sequence) => errorEvent(info, sequence ?? 0),
    decodeError: (status, text) => openai.decodeError(status, text),
    encodeModelList: (models) => openai.encodeModelList(models),
  };
}
