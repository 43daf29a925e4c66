/** Gemini generateContent / streamGenerateContent ⇄ canonical. */
import { randomBytes } from 'node:crypto';
import { ProxyError } from '../../proxy-error.js';
import type {
  ChatRequest,
  ChatResponse,
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
import type { ProtocolCodec, SseMessage, StreamDecoder, StreamEncoder, StreamMeta } from '../codec.js';
import { errorEnvelope, type ErrorInfo } from '../error-envelopes.js';
import {
  array,
  codeForBackendError,
  codeForStatus,
  CUT_TOOL_CALL,
  dropHints,
  dropSetting,
  fallbackError,
  guessImageType,
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
  sseData,
  string,
  untranslatable,
  wholeArguments,
  type Json,
} from '../shared.js';
import { effortFromWire, reasoningBudget } from '../reasoning.js';
import { isWrapped } from '../signatures.js';
import { deltaJson, numberJson, quotedJson } from '../json-text.js';

const FINISH_REASONS: Record<string, StopReason> = {
  STOP: 'end_turn',
  MAX_TOKENS: 'max_tokens',
  SAFETY: 'content_filter',
  RECITATION: 'content_filter',
  BLOCKLIST: 'content_filter',
  PROHIBITED_CONTENT: 'content_filter',
  SPII: 'content_filter',
  IMAGE_SAFETY: 'content_filter',
};
/**
 * Finish reasons that say the answer failed — a function call the model could not form, a language it
 * does not serve, an unknown cause. No other protocol has a stop reason for them, and read as a normal end
 * an agent would take an empty or cut answer for the model's last word: the client gets a 502 (whole) or
 * its protocol's error event (streamed), which agents retry.
 */
const FAILED_FINISH = new Set(['MALFORMED_FUNCTION_CALL', 'UNEXPECTED_TOOL_CALL', 'OTHER', 'LANGUAGE']);

function failedAnswer(reason: string): ErrorInfo {
  return {
    status: 502,
    message: `Backend ended the answer with finishReason ${reason}`,
    code: 'upstream_incomplete',
  };
}

/** The candidate's finish reason when it says the answer failed (see FAILED_FINISH), else undefined. */
function failedFinish(candidate: Json | undefined): string | undefined {
  const reason = candidate?.finishReason;
  return typeof reason === 'string' && FAILED_FINISH.has(reason) ? reason : undefined;
}

const CANONICAL_TO_FINISH: Record<StopReason, string> = {
  end_turn: 'STOP',
  stop_sequence: 'STOP',
  tool_use: 'STOP',
  max_tokens: 'MAX_TOKENS',
  content_filter: 'SAFETY',
};

const REQUEST_FIELDS = new Set([
  'contents',
  'systemInstruction',
  'generationConfig',
  'tools',
  'toolConfig',
  // The model travels in the URL; a copy in the body changes nothing.
  'model',
]);

/**
 * Hints dropped with notice when the request is translated (README, "Fields that do not translate"): their
 * loss changes only cost, caching, telemetry or beta behaviour.
 */
const HINTS = ['safetySettings', 'labels'];

/** Every top-level field this codec knows: read, or a hint. */
const KNOWN_FIELDS = new Set([...REQUEST_FIELDS, ...HINTS]);

const GENERATION_FIELDS = new Set([
  'temperature',
  'topP',
  'topK',
  'maxOutputTokens',
  'stopSequences',
  'presencePenalty',
  'frequencyPenalty',
  'seed',
  'candidateCount',
  'responseMimeType',
  'responseSchema',
  'responseJsonSchema',
  'responseModalities',
  'thinkingConfig',
]);

/** Generation settings accepted only at their neutral value. */
const NEUTRAL_GENERATION: Record<string, (v: unknown) => boolean> = {
  candidateCount: (v) => v === 1,
  responseModalities: (v) => Array.isArray(v) && v.length === 1 && String(v[0]).toUpperCase() === 'TEXT',
};

/** The same, listed once (not an `Object.entries` per request). */
const NEUTRAL_GENERATION_ENTRIES = Object.entries(NEUTRAL_GENERATION);

const THINKING_FIELDS = new Set(['thinkingBudget', 'thinkingLevel', 'includeThoughts']);

/**
 * `thinkingConfig` as a reasoning control (README, "Reasoning controls"): budget -1 lets the model decide,
 * 0 turns thinking off (the backend's default then), a level maps through the reasoning table.
 */
function decodeThinking(value: unknown): ReasoningControl | undefined {
  if (value === undefined || value === null) return undefined;
  const at = 'generationConfig.thinkingConfig';
  const config = record(value, at);
  rejectUnknownFields(config, THINKING_FIELDS, `${at}.`);
  const budget = optInteger(config.thinkingBudget, `${at}.thinkingBudget`);
  const level = optString(config.thinkingLevel, `${at}.thinkingLevel`);
  const include = config.includeThoughts === true ? true : undefined;
  if (budget === 0) return undefined;
  let effort;
  if (level !== undefined && level.toUpperCase() !== 'THINKING_LEVEL_UNSPECIFIED') {
    effort = effortFromWire('gemini', level);
    if (effort === undefined) throw invalid(`${at}.thinkingLevel`, `unknown level '${level}'`);
  }
  if (budget === undefined && effort === undefined && !include) return undefined;
  const fixed = budget !== undefined && budget > 0;
  return {
    mode: fixed || effort !== undefined ? 'enabled' : 'adaptive',
    ...(fixed ? { budgetTokens: budget } : {}),
    ...(effort !== undefined ? { effort } : {}),
    ...(include ? { includeThoughts: true } : {}),
  };
}

/** `responseMimeType` with `responseSchema` (OpenAPI style) or `responseJsonSchema`: structured output. */
function decodeResponseFormat(gen: Json): ResponseFormat | undefined {
  const mime = optString(gen.responseMimeType, 'generationConfig.responseMimeType');
  const schema = gen.responseJsonSchema ?? gen.responseSchema;
  if (mime === undefined || mime === 'text/plain') {
    if (schema === undefined || schema === null) return undefined;
    throw invalid('generationConfig.responseMimeType', "a response schema needs 'application/json'");
  }
  if (mime !== 'application/json') throw untranslatable('generationConfig.responseMimeType');
  if (schema === undefined || schema === null) return { type: 'json' };
  const at = gen.responseJsonSchema !== undefined ? 'responseJsonSchema' : 'responseSchema';
  return { type: 'json_schema', schema: normaliseSchema(record(schema, `generationConfig.${at}`)) as Json };
}

/** Reasoning turned off by the session: Gemini's models think unless told not to. */
function thinkingOff(): Json {
  return { thinkingBudget: 0 };
}

/** Gemini's thinking settings for a reasoning control: budget -1 when the model is left to decide. */
function encodeThinking(control: ReasoningControl): Json {
  const decides =
    control.mode === 'adaptive' && control.effort === undefined && control.budgetTokens === undefined;
  return {
    thinkingBudget: decides ? -1 : reasoningBudget(control),
    ...(control.includeThoughts ? { includeThoughts: true } : {}),
  };
}

const PART_FIELDS = new Set([
  'text',
  'inlineData',
  'fileData',
  'functionCall',
  'functionResponse',
  'thought',
  'thoughtSignature',
]);

/** Ids for Gemini function calls, which usually carry none: unique per answer, derived from its id when known. */
function callIdFactory(seed: string | undefined): (n: number) => string {
  const safe = (seed ?? '').replace(/[^A-Za-z0-9_-]/g, '') || randomBytes(6).toString('hex');
  return (n) => `call_${safe}_${n}`;
}

function decodeText(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  const c = record(content, param);
  return array(c.parts, `${param}.parts`)
    .map((p, i) => string(record(p, `${param}.parts[${i}]`).text, `${param}.parts[${i}].text`))
    .join('\n');
}

/** A functionResponse's `response` object as tool-result text; `{output: "…"}` unwraps to its string. */
function responseToText(response: Json): { content: string; isError: boolean } {
  const keys = Object.keys(response);
  if (keys.length === 1) {
    const key = keys[0] as string;
    const value = response[key];
    if (key === 'error')
      return { content: typeof value === 'string' ? value : JSON.stringify(value), isError: true };
    if ((key === 'output' || key === 'result' || key === 'content') && typeof value === 'string') {
      return { content: value, isError: false };
    }
  }
  return { content: JSON.stringify(response), isError: false };
}

function textToResponse(content: string, isError: boolean | undefined): Json {
  const parsed = parseJson(content);
  const value = isRecord(parsed) ? parsed : content;
  if (isError) return { error: value };
  return isRecord(value) ? value : { output: value };
}

function decodeMedia(part: Json, at: string): ContentPart {
  if (part.inlineData !== undefined) {
    const data = record(part.inlineData, `${at}.inlineData`);
    const mimeType = string(data.mimeType, `${at}.inlineData.mimeType`);
    if (!mimeType.startsWith('image/'))
      throw untranslatable(`${at}.inlineData`, `'${mimeType}' data cannot be translated`);
    return {
      type: 'image',
      source: 'base64',
      mediaType: mimeType,
      data: string(data.data, `${at}.inlineData.data`),
    };
  }
  const file = record(part.fileData, `${at}.fileData`);
  const mimeType = typeof file.mimeType === 'string' ? file.mimeType : undefined;
  if (mimeType !== undefined && !mimeType.startsWith('image/')) {
    throw untranslatable(`${at}.fileData`, `'${mimeType}' files cannot be translated`);
  }
  return {
    type: 'image',
    source: 'url',
    url: string(file.fileUri, `${at}.fileData.fileUri`),
    mediaType: mimeType,
  };
}

/**
 * Gemini pairs calls and responses by function name (ids are optional), so every call gets a position-derived
 * id and each response takes the id of the oldest unanswered call with its name.
 */
function decodeContents(value: unknown): Message[] {
  const out: Message[] = [];
  let pending: Array<{ id: string; name: string }> = [];
  array(value, 'contents').forEach((c, i) => {
    const at = `contents[${i}]`;
    const content = record(c, at);
    const role = content.role ?? 'user';
    if (role !== 'user' && role !== 'model' && role !== 'function')
      throw invalid(`${at}.role`, "expected 'user' or 'model'");
    const parts: ContentPart[] = [];
    const results: ContentPart[] = [];
    array(content.parts, `${at}.parts`).forEach((p, j) => {
      const pat = `${at}.parts[${j}]`;
      const part = record(p, pat);
      rejectUnknownFields(part, PART_FIELDS, `${pat}.`);
      const signature = optString(part.thoughtSignature, `${pat}.thoughtSignature`);
      if (part.thought === true) {
        // Earlier thoughts: they go back to Gemini, or through the relay to the family that made them.
        if (role !== 'model') throw untranslatable(`${pat}.thought`);
        const text = optString(part.text, `${pat}.text`) ?? '';
        // Consecutive thoughts (a streamed one comes in pieces) are one reasoning, signed by the last.
        const last = parts[parts.length - 1];
        if (last?.type === 'reasoning' && last.signature?.family === 'gemini' && !last.signature.value) {
          last.text += text;
          last.signature = { family: 'gemini', value: signature ?? '' };
        } else
          parts.push({ type: 'reasoning', text, signature: { family: 'gemini', value: signature ?? '' } });
        return;
      }
      // A signature on a call or a text: a reasoning part of its own, just before it.
      if (signature && role === 'model')
        parts.push({ type: 'reasoning', text: '', signature: { family: 'gemini', value: signature } });
      if (typeof part.text === 'string') {
        parts.push({ type: 'text', text: part.text });
      } else if (part.inlineData !== undefined || part.fileData !== undefined) {
        if (role === 'model') throw untranslatable(pat, 'images in model turns cannot be translated');
        parts.push(decodeMedia(part, pat));
      } else if (part.functionCall !== undefined && role === 'model') {
        const call = record(part.functionCall, `${pat}.functionCall`);
        const name = string(call.name, `${pat}.functionCall.name`);
        const id = typeof call.id === 'string' && call.id ? call.id : `call_${i}_${j}`;
        pending.push({ id, name });
        parts.push({
          type: 'tool_call',
          id,
          name,
          arguments: JSON.stringify(record(call.args ?? {}, `${pat}.functionCall.args`)),
        });
      } else if (part.functionResponse !== undefined && role !== 'model') {
        const res = record(part.functionResponse, `${pat}.functionResponse`);
        const name = string(res.name, `${pat}.functionResponse.name`);
        const byId = typeof res.id === 'string' && res.id ? pending.findIndex((p) => p.id === res.id) : -1;
        const index = byId >= 0 ? byId : pending.findIndex((p) => p.name === name);
        const match = pending[index];
        if (!match)
          throw invalid(
            `${pat}.functionResponse`,
            `no earlier functionCall named '${name}' is waiting for a response`,
          );
        pending = pending.filter((_, k) => k !== index);
        results.push({
          type: 'tool_result',
          toolCallId: match.id,
          name,
          ...responseToText(record(res.response ?? {}, `${pat}.functionResponse.response`)),
        });
      } else {
        throw untranslatable(pat, 'this part cannot be translated');
      }
    });
    if (results.length) out.push({ role: 'tool', content: results });
    if (parts.length || !results.length)
      out.push({ role: role === 'model' ? 'assistant' : 'user', content: parts });
  });
  return out;
}

/** Gemini's OpenAPI-style schemas spell types in capitals (`OBJECT`); JSON Schema wants lower case. */
function normaliseSchema(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normaliseSchema);
  if (!isRecord(value)) return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = k === 'type' && typeof v === 'string' ? v.toLowerCase() : normaliseSchema(v);
  }
  return out;
}

function decodeTools(value: unknown): ToolDefinition[] | undefined {
  if (value === undefined || value === null) return undefined;
  return array(value, 'tools').flatMap((t, i) => {
    const tool = record(t, `tools[${i}]`);
    rejectUnknownFields(tool, new Set(['functionDeclarations']), `tools[${i}].`);
    return array(tool.functionDeclarations ?? [], `tools[${i}].functionDeclarations`).map((d, j) => {
      const at = `tools[${i}].functionDeclarations[${j}]`;
      const decl = record(d, at);
      const schema = decl.parametersJsonSchema ?? decl.parameters;
      return {
        name: string(decl.name, `${at}.name`),
        description: typeof decl.description === 'string' ? decl.description : undefined,
        parameters:
          schema === undefined
            ? { type: 'object', properties: {} }
            : (normaliseSchema(record(schema, `${at}.parameters`)) as Json),
      };
    });
  });
}

function decodeToolConfig(value: unknown): ToolChoice | undefined {
  if (value === undefined || value === null) return undefined;
  const config = record(
    record(value, 'toolConfig').functionCallingConfig ?? {},
    'toolConfig.functionCallingConfig',
  );
  const names =
    config.allowedFunctionNames === undefined
      ? []
      : array(config.allowedFunctionNames, 'toolConfig.functionCallingConfig.allowedFunctionNames');
  switch (config.mode ?? 'AUTO') {
    case 'AUTO':
      if (names.length) throw untranslatable('toolConfig.functionCallingConfig.allowedFunctionNames');
      return { type: 'auto' };
    case 'NONE':
      return { type: 'none' };
    case 'ANY':
      if (names.length > 1)
        throw untranslatable(
          'toolConfig.functionCallingConfig.allowedFunctionNames',
          'with more than one name cannot be translated',
        );
      return names.length
        ? { type: 'tool', name: string(names[0], 'toolConfig.functionCallingConfig.allowedFunctionNames[0]') }
        : { type: 'required' };
    default:
      throw untranslatable('toolConfig.functionCallingConfig.mode');
  }
}

/**
 * A tool result's images as parts of their own right after its `functionResponse` (which holds text only),
 * in the same turn; content without them is returned as it is.
 */
function withToolImages(content: readonly ContentPart[]): readonly ContentPart[] {
  if (!content.some((p) => p.type === 'tool_result' && p.images?.length)) return content;
  return content.flatMap((p) =>
    p.type === 'tool_result' && p.images?.length ? [{ ...p, images: undefined }, ...p.images] : [p],
  );
}

function encodePart(part: ContentPart, at: string, names: Map<string, string>): Json | null {
  switch (part.type) {
    case 'reasoning':
      // Placed by `withThoughts`.
      return null;
    case 'text':
      return part.text ? { text: part.text } : null;
    case 'image':
      return part.source === 'base64'
        ? { inlineData: { mimeType: part.mediaType, data: part.data } }
        : { fileData: { mimeType: part.mediaType ?? guessImageType(part.url), fileUri: part.url } };
    case 'tool_call':
      // The call's id goes with it (optional in Gemini's API), so that its response can name it.
      return {
        functionCall: {
          ...(part.id ? { id: part.id } : {}),
          name: part.name,
          args: parseArguments(part.arguments, at),
        },
      };
    case 'tool_result': {
      const name = names.get(part.toolCallId) ?? part.name;
      if (!name) throw invalid(at, `no tool call with id '${part.toolCallId}' precedes this result`);
      return {
        functionResponse: {
          ...(part.toolCallId ? { id: part.toolCallId } : {}),
          name,
          response: textToResponse(part.content, part.isError),
        },
      };
    }
  }
}

/**
 * Gemini 3 refuses a function call of an earlier step that comes back without the thought signature it was
 * given. A conversation that reached the proxy through another family carries no Gemini signature (one of
 * another family is never sent), so the first call of each model step gets the sentinel Google documents for
 * history from elsewhere. Other Gemini models do not validate signatures and get none.
 */
const SIGNATURE_SENTINEL = 'skip_thought_signature_validator';
const VALIDATES_SIGNATURES = /(?:^|\/)gemini-3/;

/**
 * Parts with Gemini's own reasoning put back: a thought with text is a `thought` part; a signature goes on the
 * next call or text (where Gemini gave it), else on the last thought. Another family's reasoning is left out
 * (the relay never lets its signature through; see `signatures.ts`).
 */
function withThoughts(
  content: readonly ContentPart[],
  encode: (part: ContentPart, j: number) => Json | null,
): Json[] {
  const parts: Json[] = [];
  let signature = '';
  let lastThought: Json | undefined;
  content.forEach((part, j) => {
    if (part.type === 'reasoning') {
      if (part.signature?.family !== 'gemini') return;
      // Another family's signature (wrapped for a client) stays on its thought: it signs that text.
      const foreign = isWrapped(part.signature.value);
      if (part.text || foreign) {
        lastThought = { text: part.text, thought: true };
        if (foreign) lastThought.thoughtSignature = part.signature.value;
        parts.push(lastThought);
      }
      if (part.signature.value && !foreign) signature = part.signature.value;
      return;
    }
    const encoded = encode(part, j);
    if (encoded === null) return;
    if (signature) encoded.thoughtSignature = signature;
    signature = '';
    parts.push(encoded);
  });
  if (signature && lastThought) lastThought.thoughtSignature = signature;
  return parts;
}

const idOf = (part: Json, member: 'functionCall' | 'functionResponse'): unknown =>
  isRecord(part[member]) ? part[member].id : undefined;

/**
 * A user turn's function responses in the order of the model turn's calls before it (matched by id): a
 * client may give its results in any order, and Gemini reads responses by position as much as by id. Each
 * response keeps the images that follow it (`withToolImages`); the responses come first, then the rest of
 * the turn (a user's text after its tool results).
 */
function inCallOrder(parts: Json[], calls: readonly Json[]): void {
  let responses = 0;
  for (const part of parts) if (part.functionResponse !== undefined) responses++;
  if (responses < 2) return;
  const position = new Map<unknown, number>();
  calls.forEach((part, i) => {
    const id = idOf(part, 'functionCall');
    if (id !== undefined && !position.has(id)) position.set(id, i);
  });
  const groups: Json[][] = [];
  const rest: Json[] = [];
  let first = -1;
  let inGroup = false;
  for (const part of parts) {
    if (part.functionResponse !== undefined) {
      if (first < 0) first = rest.length;
      groups.push([part]);
      inGroup = true;
    } else if (inGroup && (part.inlineData !== undefined || part.fileData !== undefined)) {
      groups[groups.length - 1]!.push(part);
    } else {
      rest.push(part);
      inGroup = false;
    }
  }
  const rank = (group: Json[]) => position.get(idOf(group[0]!, 'functionResponse')) ?? calls.length;
  // A stable sort: responses to no known call keep their order, after the others.
  groups.sort((a, b) => rank(a) - rank(b));
  parts.splice(0, parts.length, ...rest.slice(0, first), ...groups.flat(), ...rest.slice(first));
}

/** Gemini wants every response to a turn's calls in one content, so consecutive same-role turns merge. */
function encodeContents(messages: Message[], model: string): Json[] {
  const names = new Map<string, string>();
  for (const m of messages) for (const p of m.content) if (p.type === 'tool_call') names.set(p.id, p.name);
  const out: Array<{ role: string; parts: Json[] }> = [];
  messages.forEach((msg, i) => {
    const role = msg.role === 'assistant' ? 'model' : 'user';
    const parts = withThoughts(withToolImages(msg.content), (p, j) =>
      encodePart(p, `messages[${i}].content[${j}]`, names),
    );
    if (!parts.length) return;
    const last = out[out.length - 1];
    if (last?.role === role) last.parts.push(...parts);
    else out.push({ role, parts });
  });
  for (let k = 1; k < out.length; k++) {
    const calls = out[k - 1]!;
    if (calls.role === 'model' && out[k]!.role === 'user') inCallOrder(out[k]!.parts, calls.parts);
  }
  if (VALIDATES_SIGNATURES.test(model)) {
    for (const content of out) {
      const call = content.role === 'model' ? content.parts.find((p) => p.functionCall) : undefined;
      if (call) call.thoughtSignature ??= SIGNATURE_SENTINEL;
    }
  }
  return out;
}

function encodeToolConfig(choice: ToolChoice): Json {
  const table: Record<ToolChoice['type'], Json> = {
    auto: { mode: 'AUTO' },
    none: { mode: 'NONE' },
    required: { mode: 'ANY' },
    tool: { mode: 'ANY', allowedFunctionNames: choice.type === 'tool' ? [choice.name] : [] },
  };
  return { functionCallingConfig: table[choice.type] };
}

function decodeUsage(value: unknown): Usage | undefined {
  if (!isRecord(value)) return undefined;
  // Thinking tokens are output the caller pays for, as other protocols count them.
  return withBreakdown(
    {
      inputTokens: Number(value.promptTokenCount ?? 0),
      outputTokens: Number(value.candidatesTokenCount ?? 0) + Number(value.thoughtsTokenCount ?? 0),
    },
    value.cachedContentTokenCount,
    value.thoughtsTokenCount,
  );
}

function encodeUsage(u: Usage): Json {
  // Gemini counts thoughts apart from the candidates' tokens.
  return {
    promptTokenCount: u.inputTokens,
    candidatesTokenCount: u.outputTokens - (u.reasoningTokens ?? 0),
    totalTokenCount: u.inputTokens + u.outputTokens,
    ...(u.cachedInputTokens !== undefined ? { cachedContentTokenCount: u.cachedInputTokens } : {}),
    ...(u.reasoningTokens !== undefined ? { thoughtsTokenCount: u.reasoningTokens } : {}),
  };
}

/**
 * Response parts: thoughts as reasoning, text and function calls; a signature on a call or a text as a
 * reasoning part of its own just before it.
 */
function decodeParts(candidate: Json, nextId: () => string): ResponsePart[] {
  const content = isRecord(candidate.content) ? candidate.content : {};
  const out: ResponsePart[] = [];
  for (const p of Array.isArray(content.parts) ? content.parts : []) {
    if (!isRecord(p)) continue;
    const value = typeof p.thoughtSignature === 'string' ? p.thoughtSignature : '';
    if (p.thought === true) {
      const text = typeof p.text === 'string' ? p.text : '';
      if (text || value) out.push({ type: 'reasoning', text, signature: { family: 'gemini', value } });
      continue;
    }
    if (value) out.push({ type: 'reasoning', text: '', signature: { family: 'gemini', value } });
    if (typeof p.text === 'string' && p.text) out.push({ type: 'text', text: p.text });
    if (isRecord(p.functionCall)) {
      const fc = p.functionCall;
      out.push({
        type: 'tool_call',
        id: typeof fc.id === 'string' && fc.id ? fc.id : nextId(),
        name: typeof fc.name === 'string' ? fc.name : '',
        arguments: JSON.stringify(fc.args ?? {}),
      });
    }
  }
  return out;
}

function stopReasonOf(
  candidate: Json | undefined,
  sawToolCall: boolean,
  blocked: boolean,
): StopReason | undefined {
  if (blocked) return 'content_filter';
  if (typeof candidate?.finishReason !== 'string') return undefined;
  const reason = FINISH_REASONS[candidate.finishReason] ?? 'end_turn';
  return reason === 'end_turn' && sawToolCall ? 'tool_use' : reason;
}

/** A prompt blocked before generation has promptFeedback.blockReason and no candidates. */
function isBlocked(body: Json): boolean {
  return (
    isRecord(body.promptFeedback) &&
    typeof body.promptFeedback.blockReason === 'string' &&
    !Array.isArray(body.candidates)
  );
}

class GeminiStreamDecoder implements StreamDecoder {
  readonly textRepeats = true;
  private started = false;
  private nextId: ((n: number) => string) | undefined;
  private toolCount = 0;
  private usage: Usage | undefined;
  private finished = false;
  /** Thoughts were streamed and no signature has closed them yet. */
  private reasoning = false;

  /** Thoughts end where anything else starts: closed with Gemini's empty signature (none was given). */
  private closeReasoning(out: StreamEvent[]): void {
    this.reasoning = false;
    out.push({ type: 'reasoning_signature', signature: { family: 'gemini', value: '' } });
  }

  push(msg: SseMessage): StreamEvent[] {
    if (this.finished) return [];
    const chunk = parseJson(msg.data);
    if (!isRecord(chunk)) return [];
    if (isRecord(chunk.error)) {
      this.finished = true;
      const status = typeof chunk.error.code === 'number' ? chunk.error.code : 500;
      return [{ type: 'error', error: errorFromBody(chunk, status) }];
    }
    const out: StreamEvent[] = [];
    if (!this.started) {
      this.started = true;
      const id = typeof chunk.responseId === 'string' ? chunk.responseId : undefined;
      this.nextId = callIdFactory(id);
      out.push({
        type: 'start',
        id,
        model: typeof chunk.modelVersion === 'string' ? chunk.modelVersion : undefined,
      });
    }
    this.usage = decodeUsage(chunk.usageMetadata) ?? this.usage;
    const candidate =
      Array.isArray(chunk.candidates) && isRecord(chunk.candidates[0]) ? chunk.candidates[0] : undefined;
    const makeId = this.nextId as (n: number) => string;
    let n = this.toolCount;
    for (const part of candidate ? decodeParts(candidate, () => makeId(n++)) : []) {
      if (part.type === 'reasoning') {
        if (part.text) out.push({ type: 'reasoning', text: part.text });
        this.reasoning = part.signature?.value ? false : part.text !== '' || this.reasoning;
        if (part.signature?.value) out.push({ type: 'reasoning_signature', signature: part.signature });
        continue;
      }
      if (this.reasoning) this.closeReasoning(out);
      if (part.type === 'text') out.push({ type: 'text', text: part.text });
      else {
        const index = this.toolCount++;
        out.push({ type: 'tool_call_start', index, id: part.id, name: part.name });
        out.push({ type: 'tool_call_delta', index, arguments: part.arguments });
      }
    }
    const failed = failedFinish(candidate);
    if (failed !== undefined) {
      this.finished = true;
      out.push({ type: 'error', error: failedAnswer(failed) });
      return out;
    }
    const stopReason = stopReasonOf(candidate, this.toolCount > 0, isBlocked(chunk));
    if (stopReason) {
      this.finished = true;
      if (this.reasoning) this.closeReasoning(out);
      out.push({ type: 'finish', stopReason, usage: this.usage });
    }
    return out;
  }

  end(): StreamEvent[] {
    return [];
  }
}

/** What every text chunk of a Gemini stream starts with (`GeminiStreamEncoder.textChunk`). */
const TEXT_CHUNK_HEAD = 'data: {"candidates":[{"content":{"role":"model","parts":[{"text":';

class GeminiStreamEncoder implements StreamEncoder {
  done = false;
  failed = false;
  /** Gemini sends whole function calls, so streamed arguments are held until the call is complete. */
  private pending: Array<{ id: string; name: string; args: string }> = [];
  /** `"modelVersion":…,"responseId":…`, the members every chunk ends with, serialised once. */
  private readonly base: string;
  /** A signature for the next part written (Gemini puts it on the call or text that follows the thought). */
  private signature = '';

  /** What a text chunk writes after its text (`textChunk`), once per stream. */
  private readonly textTail: string;

  constructor(meta: StreamMeta) {
    this.base = JSON.stringify({ modelVersion: meta.model, responseId: meta.id }).slice(1, -1);
    this.textTail = `}]},"index":0}]${this.base ? `,${this.base}` : ''}}\n\n`;
  }

  /**
   * What `sseData({ candidates: [{ content: { role: 'model', parts }, finishReason, index: 0 }],
   * usageMetadata, modelVersion, responseId })` writes, members left out when undefined; only the parts
   * (and a finish's usage) are serialised per event.
   */
  private chunk(parts: Json[], usage?: Json, finishReason?: string): string {
    const finish = finishReason === undefined ? '' : `,"finishReason":${JSON.stringify(finishReason)}`;
    const usageMetadata = usage === undefined ? '' : `,"usageMetadata":${JSON.stringify(usage)}`;
    return (
      `data: {"candidates":[{"content":{"role":"model","parts":${JSON.stringify(parts)}}${finish},"index":0}]` +
      `${usageMetadata}${this.base ? `,${this.base}` : ''}}\n\n`
    );
  }

  /** What `chunk([{ text }])` writes, without the part's array and object. */
  private textChunk(text: string): string {
    return `${TEXT_CHUNK_HEAD}${deltaJson(text)}${this.textTail}`;
  }

  private flushCalls(): Json[] {
    if (this.pending.length === 0) return [];
    const parts: Json[] = this.pending.map((c) => ({
      functionCall: { id: c.id, name: c.name, args: answerArguments(c.args) },
    }));
    this.pending = [];
    return parts;
  }

  /** The held signature on the first of `parts`. */
  private signed(parts: Json[]): Json[] {
    const first = parts[0];
    if (this.signature && first) {
      first.thoughtSignature = this.signature;
      this.signature = '';
    }
    return parts;
  }

  encodeText(text: string): string {
    if (this.done) return '';
    // The usual event (see `encode`), without the event's object.
    if (this.pending.length === 0 && this.signature === '') return this.textChunk(text);
    return this.encode({ type: 'text', text });
  }

  encode(event: StreamEvent): string {
    if (this.done) return '';
    switch (event.type) {
      case 'start':
        return '';
      case 'reasoning': {
        const ready = this.signed(this.flushCalls());
        return this.chunk([...ready, { text: event.text, thought: true }]);
      }
      case 'reasoning_signature':
        // Only a signature the client can give back (Gemini's, or wrapped by the relay) is written;
        // another family's (wrapped) closes the thoughts it signs, as a thought of its own.
        if (event.signature.family !== 'gemini' || !event.signature.value) return '';
        if (!isWrapped(event.signature.value)) {
          this.signature = event.signature.value;
          return '';
        }
        return this.chunk([
          ...this.signed(this.flushCalls()),
          { text: '', thought: true, thoughtSignature: event.signature.value },
        ]);
      case 'tool_call_start': {
        const ready = this.signed(this.flushCalls());
        this.pending.push({ id: event.id, name: event.name, args: '' });
        return ready.length ? this.chunk(ready) : '';
      }
      case 'tool_call_delta': {
        const call = this.pending.find((_, i) => i === this.pending.length - 1);
        if (call) call.args += event.arguments;
        return '';
      }
      case 'text': {
        // The usual event: plain text, nothing held — its part written from its text alone.
        if (this.pending.length === 0 && this.signature === '') return this.textChunk(event.text);
        const ready = this.flushCalls();
        return this.chunk(this.signed([...ready, { text: event.text }]));
      }
      case 'finish': {
        // A call cut by the output limit, or arguments that are no object, cannot be written as a Gemini call:
        // the client gets its error event instead of a finish (`done` is set by it, not before).
        if (this.pending.some((call) => !wholeArguments(call.args))) {
          const error = event.stopReason === 'max_tokens' ? CUT_TOOL_CALL : INVALID_ARGUMENTS;
          return this.encode({ type: 'error', error });
        }
        this.done = true;
        const parts = this.flushCalls();
        if (this.signature && !parts.length) parts.push({ text: '' });
        this.signed(parts);
        return this.chunk(
          parts.length ? parts : [{ text: '' }],
          event.usage ? encodeUsage(event.usage) : undefined,
          CANONICAL_TO_FINISH[event.stopReason],
        );
      }
      case 'error':
        this.done = true;
        this.failed = true;
        return encodeError(event.error);
    }
  }
}

/** Arguments that are not a JSON object, which a Gemini call (`args`, an object) cannot carry. */
const INVALID_ARGUMENTS: ErrorInfo = {
  status: 502,
  message: 'Backend returned tool-call arguments that are not a JSON object',
  code: 'upstream_invalid_response',
};

function answerArguments(text: string): Json {
  try {
    return parseArguments(text, 'arguments');
  } catch {
    const { status, message, code } = INVALID_ARGUMENTS;
    throw new ProxyError(status, message, { code });
  }
}

function encodeError(info: ErrorInfo): string {
  return sseData(errorEnvelope('gemini', info));
}

function errorFromBody(body: Json, status: number): ErrorInfo {
  const err = isRecord(body.error) ? body.error : {};
  const message = typeof err.message === 'string' ? err.message : `Backend answered HTTP ${status}`;
  return { status, message, code: codeForBackendError(status, message) };
}

/** A whole answer in Gemini's shape. */
function encodeResponse(res: ChatResponse): Json {
  const parts = withThoughts(res.content, (p) =>
    p.type === 'text'
      ? { text: p.text }
      : p.type === 'tool_call'
        ? { functionCall: { id: p.id, name: p.name, args: answerArguments(p.arguments) } }
        : null,
  );
  return {
    candidates: [
      {
        content: { role: 'model', parts: parts.length ? parts : [{ text: '' }] },
        finishReason: CANONICAL_TO_FINISH[res.stopReason],
        index: 0,
      },
    ],
    usageMetadata: encodeUsage(res.usage),
    modelVersion: res.model,
    responseId: res.id,
  };
}

export function createGeminiCodec(): ProtocolCodec {
  return {
    decodeRequest(body, ctx) {
      const b = record(body, 'body');
      rejectUnknownFields(b, KNOWN_FIELDS);
      const notes: { dropped?: string[] | undefined } = {};
      dropHints(b, HINTS, notes);
      const gen = b.generationConfig === undefined ? {} : record(b.generationConfig, 'generationConfig');
      for (const [field, neutral] of NEUTRAL_GENERATION_ENTRIES) {
        if (gen[field] !== undefined && gen[field] !== null && !neutral(gen[field]))
          throw untranslatable(`generationConfig.${field}`);
      }
      rejectUnknownFields(gen, GENERATION_FIELDS, 'generationConfig.');
      const topK = optInteger(gen.topK, 'generationConfig.topK');
      const reasoning = decodeThinking(gen.thinkingConfig);
      const responseFormat = decodeResponseFormat(gen);
      // Built only when a setting has a source to name (most requests have none).
      const sourcePaths =
        topK === undefined && !reasoning && !responseFormat
          ? undefined
          : {
              ...(topK !== undefined ? { topK: ['generationConfig.topK'] } : {}),
              ...(reasoning ? { reasoning: ['generationConfig.thinkingConfig'] } : {}),
              ...(responseFormat ? { responseFormat: ['generationConfig.responseMimeType'] } : {}),
            };
      return {
        model: ctx.model,
        system:
          b.systemInstruction === undefined || b.systemInstruction === null
            ? undefined
            : decodeText(b.systemInstruction, 'systemInstruction'),
        messages: decodeContents(b.contents),
        temperature: optNumber(gen.temperature, 'generationConfig.temperature'),
        topP: optNumber(gen.topP, 'generationConfig.topP'),
        topK,
        maxTokens: optInteger(gen.maxOutputTokens, 'generationConfig.maxOutputTokens'),
        stop: optStringList(gen.stopSequences, 'generationConfig.stopSequences'),
        presencePenalty: optNumber(gen.presencePenalty, 'generationConfig.presencePenalty'),
        frequencyPenalty: optNumber(gen.frequencyPenalty, 'generationConfig.frequencyPenalty'),
        seed: optInteger(gen.seed, 'generationConfig.seed'),
        tools: decodeTools(b.tools),
        toolChoice: decodeToolConfig(b.toolConfig),
        stream: ctx.stream,
        reasoning,
        responseFormat,
        sourcePaths,
        dropped: notes.dropped,
      };
    },

    encodeRequest(req: ChatRequest) {
      // Gemini has no switch for parallel calls: a hint, dropped with notice.
      if (req.parallelToolCalls === false) dropSetting(req, 'parallelToolCalls', 'parallel_tool_calls');
      const body: Json = { contents: encodeContents(req.messages, req.model) };
      if (req.system) body.systemInstruction = { parts: [{ text: req.system }] };
      const generation: Json = {};
      const format = req.responseFormat;
      const settings: Json = {
        temperature: req.temperature,
        topP: req.topP,
        topK: req.topK,
        maxOutputTokens: req.maxTokens,
        stopSequences: req.stop,
        presencePenalty: req.presencePenalty,
        frequencyPenalty: req.frequencyPenalty,
        seed: req.seed,
        responseMimeType: format && 'application/json',
        responseJsonSchema: format?.type === 'json_schema' ? format.schema : undefined,
        thinkingConfig: req.reasoning
          ? encodeThinking(req.reasoning)
          : req.reasoningOff
            ? thinkingOff()
            : undefined,
      };
      for (const [k, v] of Object.entries(settings)) if (v !== undefined) generation[k] = v;
      if (Object.keys(generation).length) body.generationConfig = generation;
      if (req.tools?.length) {
        body.tools = [
          {
            functionDeclarations: req.tools.map((t) => ({
              name: t.name,
              ...(t.description !== undefined ? { description: t.description } : {}),
              parametersJsonSchema: t.parameters,
            })),
          },
        ];
      }
      if (req.toolChoice) body.toolConfig = encodeToolConfig(req.toolChoice);
      return body;
    },

    decodeResponse(body) {
      const b = record(body, 'response');
      const candidate =
        Array.isArray(b.candidates) && isRecord(b.candidates[0]) ? b.candidates[0] : undefined;
      const failed = failedFinish(candidate);
      if (failed !== undefined) {
        const { status, message, code } = failedAnswer(failed);
        throw new ProxyError(status, message, { code });
      }
      const nextId = callIdFactory(typeof b.responseId === 'string' ? b.responseId : undefined);
      let n = 0;
      const content = candidate ? decodeParts(candidate, () => nextId(n++)) : [];
      return {
        id: typeof b.responseId === 'string' ? b.responseId : '',
        model: typeof b.modelVersion === 'string' ? b.modelVersion : '',
        content,
        stopReason:
          stopReasonOf(
            candidate,
            content.some((p) => p.type === 'tool_call'),
            isBlocked(b),
          ) ?? 'end_turn',
        usage: decodeUsage(b.usageMetadata) ?? { inputTokens: 0, outputTokens: 0 },
      };
    },

    encodeResponse,

    encodeResponseText(res: ChatResponse): string {
      const { model, id } = res;
      const finish = CANONICAL_TO_FINISH[res.stopReason];
      const { inputTokens, outputTokens } = res.usage;
      if (
        typeof model !== 'string' ||
        typeof id !== 'string' ||
        finish === undefined ||
        typeof inputTokens !== 'number' ||
        typeof outputTokens !== 'number' ||
        res.usage.cachedInputTokens !== undefined ||
        res.usage.reasoningTokens !== undefined ||
        res.content.length === 0
      )
        return JSON.stringify(encodeResponse(res));
      // Text parts alone (the usual answer), each written as `encodeResponse` writes it.
      let parts = '';
      for (const part of res.content) {
        if (part.type !== 'text') return JSON.stringify(encodeResponse(res));
        parts += `${parts === '' ? '' : ','}{"text":${quotedJson(part.text)}}`;
      }
      return (
        `{"candidates":[{"content":{"role":"model","parts":[${parts}]},"finishReason":"${finish}","index":0}],` +
        `"usageMetadata":{"promptTokenCount":${numberJson(inputTokens)},` +
        `"candidatesTokenCount":${numberJson(outputTokens)},` +
        `"totalTokenCount":${numberJson(inputTokens + outputTokens)}},` +
        `"modelVersion":${quotedJson(model)},"responseId":${quotedJson(id)}}`
      );
    },

    createStreamDecoder: () => new GeminiStreamDecoder(),
    createStreamEncoder: (meta) => new GeminiStreamEncoder(meta),
    encodeError,

    decodeError(status, bodyText) {
      let body = parseJson(bodyText);
      // Some Gemini endpoints wrap the error object in a one-element array.
      if (Array.isArray(body)) body = body[0];
      if (isRecord(body) && isRecord(body.error)) return errorFromBody(body, status);
      return fallbackError(status, bodyText, codeForStatus(status));
    },

    encodeModelList(models: ModelInfo[]) {
      return {
        models: models.map((m) => ({
          name: `models/${m.id}`,
          displayName: m.id,
          supportedGenerationMethods: ['generateContent', 'streamGenerateContent'],
        })),
      };
    },
  };
}
