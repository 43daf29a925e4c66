/** Small helpers every codec uses: strict field reading that fails with a 400 naming the field. */
import { ProxyError } from '../proxy-error.js';
import { CONTEXT_TOO_LONG } from '../provider-errors.js';
import type { ChatRequest, ChatResponse, SourcePaths, StopReason } from './canonical.js';
import type { ErrorInfo } from './error-envelopes.js';

export type Json = Record<string, unknown>;

export function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function invalid(param: string, message: string): ProxyError {
  return new ProxyError(400, `${param}: ${message}`, { param });
}

export function untranslatable(
  param: string,
  detail = 'cannot be translated to the backend protocol',
): ProxyError {
  return new ProxyError(400, `'${param}' ${detail}`, { param });
}

/** Notes that `path` of the client's request was left out with notice (see `ChatRequest.dropped`). */
export function dropWithNotice(req: { dropped?: string[] | undefined }, path: string): void {
  if (req.dropped === undefined) req.dropped = [path];
  else if (!req.dropped.includes(path)) req.dropped.push(path);
}

/**
 * Notes every hint of `hints` present in `obj` as dropped with notice (`prefix` + its name): the per-protocol
 * tables of fields whose loss changes only cost, caching, telemetry or beta behaviour.
 */
export function dropHints(
  obj: Json,
  hints: readonly string[],
  req: { dropped?: string[] | undefined },
  prefix = '',
): void {
  for (const name of hints)
    if (obj[name] !== undefined && obj[name] !== null) dropWithNotice(req, prefix + name);
}

/** An encoder drops `setting` for its backend: the notice names the client's fields it came from. */
export function dropSetting(req: ChatRequest, setting: keyof SourcePaths, fallback: string): void {
  for (const path of req.sourcePaths?.[setting] ?? [fallback]) dropWithNotice(req, path);
}

export function record(value: unknown, param: string): Json {
  if (!isRecord(value)) throw invalid(param, 'expected an object');
  return value;
}

export function array(value: unknown, param: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(param, 'expected an array');
  return value;
}

export function string(value: unknown, param: string): string {
  if (typeof value !== 'string') throw invalid(param, 'expected a string');
  return value;
}

export function optString(value: unknown, param: string): string | undefined {
  return value === undefined || value === null ? undefined : string(value, param);
}

export function optNumber(value: unknown, param: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(param, 'expected a number');
  return value;
}

export function optInteger(value: unknown, param: string): number | undefined {
  const n = optNumber(value, param);
  if (n !== undefined && !Number.isInteger(n)) throw invalid(param, 'expected an integer');
  return n;
}

/** Stop sequences given as one string or a list. */
export function optStringList(value: unknown, param: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return [value];
  return array(value, param).map((s, i) => string(s, `${param}[${i}]`));
}

/**
 * Rejects every field that is neither translated nor a harmless hint. `known` lists both; the caller reads
 * the translated ones. This is what turns "silently dropped" into "400 naming the field".
 */
export function rejectUnknownFields(obj: Json, known: ReadonlySet<string>, prefix = ''): void {
  for (const key of Object.keys(obj)) {
    if (!known.has(key) && obj[key] !== undefined) throw untranslatable(prefix + key);
  }
}

/** Parses tool-call arguments (JSON text) into the object Anthropic and Gemini carry. */
export function parseArguments(text: string, param: string): Json {
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid(param, 'tool call arguments are not valid JSON');
  }
  if (!isRecord(parsed)) throw invalid(param, 'tool call arguments must be a JSON object');
  return parsed;
}

/** Whether tool-call arguments are whole: nothing (no arguments) or a JSON object. */
export function wholeArguments(text: string): boolean {
  if (text.trim() === '') return true;
  try {
    return isRecord(JSON.parse(text));
  } catch {
    return false;
  }
}

/**
 * The answer stopped at the output limit inside a tool call (README, Routes and failover: a truncated
 * answer is never presented as complete). The call cannot run, and no protocol can say "this call is
 * cut": a Gemini client gets calls whole or not at all, and the others' SDKs hand a partly parsed call on
 * as if it were whole. So the client gets what came before and its protocol's error event (a whole
 * answer: a 502), which agents retry, rather than a finish.
 */
export const CUT_TOOL_CALL: ErrorInfo = {
  status: 502,
  message: "Backend reached its output token limit inside a tool call's arguments: the call is incomplete",
  code: 'upstream_incomplete',
};

/** A stream's finish at `stopReason` while the calls' arguments read `args` so far: whether one was cut. */
export function stoppedInsideCall(stopReason: StopReason, args: Iterable<string>): boolean {
  if (stopReason !== 'max_tokens') return false;
  for (const text of args) if (!wholeArguments(text)) return true;
  return false;
}

/**
 * A whole answer stopped at the output limit inside a tool call: a call's arguments are not whole, or its
 * last part is a call — the model was writing it when the limit came (Anthropic gives a cut call's input
 * as an object, parsed as far as it went).
 */
export function answerCutInCall(res: ChatResponse): boolean {
  if (res.stopReason !== 'max_tokens') return false;
  if (res.content[res.content.length - 1]?.type === 'tool_call') return true;
  return res.content.some((part) => part.type === 'tool_call' && !wholeArguments(part.arguments));
}

const DATA_URL = /^data:([^;,]+)(?:;[^,]*)?;base64,(.*)$/s;

export function parseDataUrl(url: string): { mediaType: string; data: string } | null {
  const m = DATA_URL.exec(url);
  return m ? { mediaType: m[1] as string, data: m[2] as string } : null;
}

const IMAGE_TYPES_BY_EXTENSION: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  heic: 'image/heic',
  heif: 'image/heif',
};

/** Gemini needs a MIME type for a URL image; guessed from the extension, JPEG when it says nothing. */
export function guessImageType(url: string): string {
  const ext = /\.([a-z0-9]+)(?:[?#].*)?$/i.exec(url)?.[1]?.toLowerCase();
  return (ext && IMAGE_TYPES_BY_EXTENSION[ext]) ?? 'image/jpeg';
}

export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

export function sseEvent(event: string, payload: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(payload)}\n\n`;
}

/** Inverts a `wire → canonical` table; the first wire name listed for a canonical value wins. */
export function invert<W extends string>(table: Record<W, StopReason>): Partial<Record<StopReason, W>> {
  const out: Partial<Record<StopReason, W>> = {};
  for (const [wire, canonical] of Object.entries(table) as Array<[W, StopReason]>) out[canonical] ??= wire;
  return out;
}

/** The message of a non-JSON or unfamiliar error body, trimmed so an HTML page doesn't flood the client. */
export function fallbackError(status: number, bodyText: string, code: string): ErrorInfo {
  const text = bodyText.trim().slice(0, 500);
  return { status, message: text || `Backend answered HTTP ${status}`, code };
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * What a backend's client error means in OpenAI's codes, the ones agents act on (Codex compacts its
 * context on `context_length_exceeded`, stops on `insufficient_quota`), read from the message of a
 * protocol that has no such code (Anthropic, Gemini). The first pattern that matches names the code.
 */
const CLIENT_ERROR_MEANINGS: ReadonlyArray<readonly [pattern: RegExp, code: string]> = [
  [CONTEXT_TOO_LONG, 'context_length_exceeded'],
  [/credit balance is too low/i, 'insufficient_quota'],
];

/** The code of a backend's error decoded from a protocol without OpenAI's codes: its meaning, else its status's. */
export function codeForBackendError(status: number, message: string): string {
  if (status >= 400 && status < 500) {
    for (const [pattern, code] of CLIENT_ERROR_MEANINGS) if (pattern.test(message)) return code;
  }
  return codeForStatus(status);
}

/** Default error codes by status, the same table ProxyError uses for its own errors. */
export function codeForStatus(status: number): string {
  return new ProxyError(status, '').code;
}
