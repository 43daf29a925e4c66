import { ByteNeedle, holdsAny } from '../protocols/byte-needle.js';
import { ExactMatcher, type ExactHit } from './exact.js';
import {
  BEARER_RULE,
  CREDENTIAL_HEADERS,
  MASK,
  MIN_EXACT_SECRET_LENGTH,
  PATTERN_RULES,
  PROMPT_SECRET_REPLACEMENT,
  bearerMask,
  bearerStartBefore,
  bearerTokenOffset,
  escapeRegExp,
  isMaskableShortSecret,
  maskCredentialHeader,
  prefixMask,
  type PatternRule,
} from './patterns.js';

export type HeaderValue = string | string[] | number | undefined;
export type RedactedHeaders = Record<string, string | string[]>;

/** One match found by {@link Redactor.scan}: where it is, what replaces it. */
export interface SecretMatch {
  readonly start: number;
  readonly end: number;
  readonly mask: string;
  /**
   * A sticky regex of the characters that would have extended this match (undefined for exact secrets,
   * which have a fixed length). Used by `StreamRedactor` when it must release a very long match early.
   */
  readonly continuation: RegExp | undefined;
}

/** A credential header's value (or values) masked; `lower` is the lower-case name. */
function maskHeaderValue(lower: string, value: string | string[] | number): string | string[] {
  return Array.isArray(value)
    ? value.map((v) => maskCredentialHeader(lower, String(v)))
    : maskCredentialHeader(lower, String(value));
}

/**
 * Redacts secrets from text and values. Built once from the configured secrets (at startup and again when
 * keys change) — every method is then a scan with precompiled matchers. Building never fails, whatever the
 * secrets: no secret is ever put whole into a regular expression (V8 refuses a literal of ~32 K characters,
 * and its error message would quote the secret).
 *
 * Secrets: each configured value (proxy keys, provider keys) plus the key formats of README "Key hygiene"
 * (`sk-proj-`, `sk-ant-`, `sk-or-`, `sk-`, `AIza`, the token after `Bearer`), `?key=` style query parameters
 * and credential headers inside JSON text.
 *
 * A configured value of {@link MIN_EXACT_SECRET_LENGTH} (4) characters or more is redacted wherever it occurs,
 * however common the word — a configured key is a secret first. Each is also matched in its JSON-escaped and
 * URL-encoded forms, as it appears in a log line or a URL.
 *
 * A shorter configured value (1–3 characters: a weak key, warned about at startup) is redacted only where it
 * stands as a whole value, never inside other text: masking every `a` or `:` of a log line would destroy the
 * line (and its JSON) while protecting nothing. Whole values are: a JSON string value (`"ab"` → `"****"`, also
 * `\"ab\"` inside a JSON string, but not an object key `"ab":`), the whole token after `Bearer`, a whole
 * string in {@link redactValue} / {@link redactHeaders}, and a whole string of a prompt. One holding a JSON
 * quote, backslash, separator (`,` `:` brackets, braces) or whitespace is redacted only in the last two
 * (whole strings), since masking it inside text could change the text's JSON structure.
 *
 * Matching: exact secrets (4+) are found by an {@link ExactMatcher} (leftmost, then longest), the patterns
 * and short secrets by one regular expression; the two are merged by position, an exact match winning a tie.
 * An exact secret right after `Bearer ` is covered together with the scheme (`Bearer ****`), as is one at the
 * start of a bearer match's token.
 */
export class Redactor {
  /** Configured exact secrets of 4+ characters (raw form, longest first) — the ones replaced in prompts. */
  readonly secrets: readonly string[];
  /** Configured secrets of 1–3 characters (see the class comment for where they are redacted). */
  readonly shortSecrets: readonly string[];
  /**
   * Characters a stream must hold back so that no match can change once more text arrives (see
   * `StreamRedactor`): the longest decision window of any rule.
   */
  readonly holdback: number;

  /**
   * True when every secret shows up unescaped in any JSON text that holds it, and is matched there:
   * JSON-encoding redacted text can then never form a secret (see redactPromptSecrets and the capture's
   * stream chunks).
   */
  readonly secretsVerbatimInJson: boolean;
  /**
   * The characters whose JSON escape could write the start of a match (see {@link jsonEncodingMayForm});
   * undefined when JSON-encoding may form one whatever the text.
   */
  private readonly formingEscapes: { controls: RegExp; mask: number } | undefined;
  /** Exact secrets (4+) in all their forms; undefined when none are configured. */
  private readonly exact: ExactMatcher | undefined;
  /** The pattern rules in force, one capturing group each (group i + 1 is `rules[i]`). */
  private readonly rules: readonly PatternRule[];
  private readonly rulePattern: RegExp;
  private readonly bearerGroup: number;
  /** Exact secrets (4+) in raw form, for prompts. */
  private readonly prompt: ExactMatcher | undefined;
  /**
   * The byte strings whose presence in a body's bytes means a prompt secret may be there (each secret, and
   * each short secret as a whole JSON string), when few enough to search one by one; else undefined.
   */
  private readonly promptNeedles: readonly ByteNeedle[] | undefined;
  private readonly shortSet: ReadonlySet<string>;

  constructor(secrets: Iterable<string> = []) {
    const all = uniqueLongestFirst([...secrets].filter((s) => s.length > 0));
    const raw = all.filter((s) => s.length >= MIN_EXACT_SECRET_LENGTH);
    const short = all.filter((s) => s.length < MIN_EXACT_SECRET_LENGTH);
    this.secrets = raw;
    this.shortSecrets = short;
    this.shortSet = new Set(short);
    const forms = uniqueLongestFirst(raw.flatMap(secretForms));
    this.exact = ExactMatcher.of(forms);
    this.prompt = ExactMatcher.of(raw);
    const needles = [...raw, ...short.map((secret) => `"${secret}"`)];
    this.promptNeedles =
      needles.length <= MAX_PROMPT_NEEDLES ? needles.map((needle) => new ByteNeedle(needle)) : undefined;
    const shortForms = uniqueLongestFirst(short.filter(isMaskableShortSecret).flatMap(secretForms));
    const shortSource = shortForms.length > 0 ? shortForms.map(escapeRegExp).join('|') : undefined;
    const rules: PatternRule[] = [];
    const sources: string[] = [];
    for (const rule of PATTERN_RULES) {
      const source = rule.source(shortSource);
      if (source === undefined) continue;
      rules.push(rule);
      sources.push(`(${source})`);
    }
    this.rules = rules;
    this.bearerGroup = rules.indexOf(BEARER_RULE) + 1;
    this.rulePattern = new RegExp(sources.join('|'), 'g');
    this.secretsVerbatimInJson =
      raw.every((secret) => VERBATIM_IN_JSON.test(secret)) &&
      short.every((secret) => VERBATIM_IN_JSON.test(secret) && isMaskableShortSecret(secret));
    this.formingEscapes =
      this.secretsVerbatimInJson && short.length === 0 ? formingEscapes(forms) : undefined;
    const longestExact = Math.max(forms[0]?.length ?? 0, shortForms[0]?.length ?? 0);
    this.holdback = Math.max(...PATTERN_RULES.map((r) => r.decisionLength)) + longestExact + 1;
  }

  /** Returns `text` itself (no copy) when nothing matches. */
  redact(text: string): string {
    const pending = this.pendingFrom(text, 0);
    let match = this.next(text, 0, pending);
    if (match === null) return text;
    let out = '';
    let pos = 0;
    while (match !== null) {
      out += text.slice(pos, match.start) + match.mask;
      pos = match.end;
      match = this.next(text, pos, pending);
    }
    return out + text.slice(pos);
  }

  /**
   * Whether JSON-encoding `text`, which this redactor has redacted (as a whole, or as a stream), could form
   * a match that `text` does not hold — so that the encoded text must be redacted again. When every secret
   * is verbatim in JSON and none is short, it can only where an escape writes a letter or digit that a
   * match may start with (see formingEscapes): a character of `text` that JSON writes that way. Otherwise
   * always.
   */
  jsonEncodingMayForm(text: string): boolean {
    const forming = this.formingEscapes;
    if (forming === undefined) return true;
    // A text of one-byte characters (most) holds no surrogate: V8 answers the first test without a scan.
    return forming.controls.test(text) || (ANY_SURROGATE.test(text) && LONE_SURROGATE.test(text));
  }

  /**
   * {@link jsonEncodingMayForm} for a text without lone surrogates (decoded from UTF-8), told which control
   * characters it holds: bit `c` of `controls` set for U+000c … U+001F's `c`.
   */
  jsonEscapesMayForm(controls: number): boolean {
    return this.formingEscapes === undefined || (controls & this.formingEscapes.mask) !== 0;
  }

  /**
   * The matches in `text` from `from` on, in order, as {@link redact} replaces them (characters before
   * `from` are still seen by the rules' "not preceded by a word character" checks).
   */
  *scan(text: string, from = 0): Generator<SecretMatch, void, undefined> {
    const pending = this.pendingFrom(text, from);
    let match = this.next(text, from, pending);
    while (match !== null) {
      yield match;
      match = this.next(text, match.end, pending);
    }
  }

  /** The next exact hit and the next rule match from `from`, each searched again only once passed. */
  private pendingFrom(text: string, from: number): Pending {
    return { hit: this.exact?.find(text, from) ?? null, rule: execFrom(this.rulePattern, text, from) };
  }

  /**
   * The first match at or after `pos`: the earlier of the next exact secret and the next rule match (the
   * exact secret on a tie). An exact secret right after `Bearer` and 1–8 spaces starts at the scheme; a
   * bearer match whose token starts with an exact secret ends with that secret — as when the secrets were
   * the first alternative of the bearer rule.
   */
  private next(text: string, pos: number, pending: Pending): SecretMatch | null {
    if (pending.hit !== null && pending.hit.start < pos) pending.hit = this.exact!.find(text, pos);
    if (pending.rule !== null && pending.rule.index < pos) {
      pending.rule = execFrom(this.rulePattern, text, pos);
    }
    const { hit, rule } = pending;
    if (hit !== null) {
      const bearerStart = bearerStartBefore(text, hit.start, pos);
      const start = bearerStart >= 0 ? bearerStart : hit.start;
      if (rule === null || start <= rule.index) {
        const end = hit.start + hit.needle.length;
        return bearerStart >= 0
          ? { start, end, mask: bearerMask(text.slice(start, end)), continuation: undefined }
          : { start, end, mask: prefixMask(hit.needle), continuation: undefined };
      }
    }
    if (rule === null) return null;
    const start = rule.index;
    const group = groupOf(rule);
    if (group === this.bearerGroup && this.exact !== undefined) {
      const tokenStart = start + bearerTokenOffset(text, start);
      const secret = this.exact.longestAt(text, tokenStart);
      if (secret !== undefined) {
        const end = tokenStart + secret.length;
        return { start, end, mask: bearerMask(text.slice(start, end)), continuation: undefined };
      }
    }
    const matched = this.rules[group - 1]!;
    return {
      start,
      end: start + rule[0].length,
      mask: matched.mask(rule[0]),
      continuation: matched.continuation,
    };
  }

  /**
   * A deep copy of `value` safe to serialise: every string redacted (as a whole value: a string that is a
   * short secret is masked), credential-header keys masked whatever
   * their value, `Error`s turned into plain `{ name, message, stack, ...own fields }` (JSON would drop
   * message and stack), `Buffer`/typed arrays decoded as UTF-8 text, cycles replaced by `'[Circular]'`.
   */
  redactValue(value: unknown): unknown {
    return this.copyRedacted(value, new WeakSet());
  }

  /**
   * Credential headers masked whatever their value; all others as whole values (see {@link redactValue}).
   * Drops `undefined`.
   */
  redactHeaders(headers: Readonly<Record<string, HeaderValue>>): RedactedHeaders {
    const out: RedactedHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      const lower = name.toLowerCase();
      out[name] = CREDENTIAL_HEADERS.has(lower)
        ? maskHeaderValue(lower, value)
        : Array.isArray(value)
          ? value.map((v) => this.redactWhole(String(v)))
          : this.redactWhole(String(value));
    }
    return out;
  }

  /** A string that is a whole value: `****` when it is a short secret, else {@link redact}. */
  private redactWhole(value: string): string {
    return this.shortSet.has(value) ? MASK : this.redact(value);
  }

  /**
   * Headers to be serialised and then redacted as text: the same as {@link redactHeaders} when every secret
   * appears verbatim in JSON (the pass over the text finds the others' secrets there), with only credential
   * headers masked here — `headers` itself when it has none. Otherwise {@link redactHeaders}.
   */
  headersForTextRedaction(
    headers: Readonly<Record<string, HeaderValue>>,
  ): Readonly<Record<string, HeaderValue>> {
    if (!this.secretsVerbatimInJson) return this.redactHeaders(headers);
    let masked: Record<string, HeaderValue> | undefined;
    for (const name in headers) {
      const lower = name.toLowerCase();
      const value = headers[name];
      if (value === undefined || !CREDENTIAL_HEADERS.has(lower)) continue;
      masked ??= { ...headers };
      masked[name] = maskHeaderValue(lower, value);
    }
    return masked ?? headers;
  }

  /** `…?key=AIza…&alt=sse` → `…?key=****&alt=sse`, plus {@link redact} for secrets in the path. */
  redactUrl(url: string): string {
    // The query rule is one of the pattern rules; this exists so callers say what they redact.
    return this.redact(url);
  }

  /**
   * Replaces every configured secret (exact values only — a prompt may legitimately discuss `sk-…` formats)
   * in any string of a request body with `(API_KEY_HAS_BEEN_REDACTED)`; a short secret (1–3 characters)
   * only when it is the whole string. Object keys are left alone.
   * Copy-on-write: when nothing matched, `body` is returned as is with `changed: false`.
   */
  redactPromptSecrets(body: unknown, rawJson?: string | Uint8Array): { body: unknown; changed: boolean } {
    const prompt = this.prompt;
    const short = this.shortSet;
    if (prompt === undefined && short.size === 0) return { body, changed: false };
    // The body's own JSON text (or bytes), when given, is scanned once instead of walking every string of
    // the body: secrets made only of characters no JSON encoder escapes appear in it exactly as they are.
    if (rawJson !== undefined && this.secretsVerbatimInJson && !this.mayHoldPromptSecret(rawJson)) {
      return { body, changed: false };
    }
    const redacted = replaceInStrings(body, (text) =>
      short.has(text)
        ? PROMPT_SECRET_REPLACEMENT
        : (prompt?.replaceAll(text, PROMPT_SECRET_REPLACEMENT) ?? text),
    );
    return { body: redacted, changed: redacted !== body };
  }

  /**
   * Whether a configured secret (verbatim in JSON, see `secretsVerbatimInJson`) may be in a string of the
   * JSON `raw`. Bytes are read in windows decoded as latin1, each a plain copy below V8's large-object size
   * (a body of hundreds of kilobytes is never decoded whole): a secret's characters are ASCII, which UTF-8
   * encodes as themselves and never uses inside another character, so it is in the bytes exactly where it
   * is in the decoded text. Windows overlap by the longest secret, so none is missed across a border.
   */
  private mayHoldPromptSecret(raw: string | Uint8Array): boolean {
    if (typeof raw === 'string') return this.promptSecretIn(raw);
    if (this.promptNeedles !== undefined) {
      // A few secrets: one native byte search each, over the bytes as they are (no copy, no decoding), from
      // the secret's rarest byte on (`ByteNeedle`: a secret that starts with `s` or `b` stopped the search
      // at every such letter of the prompt).
      return holdsAny(this.promptNeedles, raw);
    }
    const longest = Math.max(this.secrets[0]?.length ?? 0, (this.shortSecrets[0]?.length ?? 0) + 2);
    for (let start = 0; start < raw.length; start += PROMPT_SCAN_WINDOW) {
      const end = Math.min(raw.length, start + PROMPT_SCAN_WINDOW + longest - 1);
      const text = Buffer.from(raw.buffer, raw.byteOffset + start, end - start).toString('latin1');
      if (this.promptSecretIn(text)) return true;
      if (end === raw.length) return false;
    }
    return false;
  }

  private promptSecretIn(text: string): boolean {
    return (
      (this.prompt?.test(text) ?? false) || this.shortSecrets.some((secret) => text.includes(`"${secret}"`))
    );
  }

  private copyRedacted(value: unknown, seen: WeakSet<object>): unknown {
    if (typeof value === 'string') return this.redactWhole(value);
    if (typeof value !== 'object' || value === null) return value;
    if (seen.has(value)) return '[Circular]';
    seen.add(value);
    try {
      if (Array.isArray(value)) return value.map((item) => this.copyRedacted(item, seen));
      if (ArrayBuffer.isView(value)) {
        return this.redact(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8'));
      }
      if (value instanceof Error) return this.copyError(value, seen);
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') return this.copyRedacted(toJSON.call(value), seen);
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        const lower = key.toLowerCase();
        out[key] =
          CREDENTIAL_HEADERS.has(lower) && typeof item === 'string'
            ? maskCredentialHeader(lower, item)
            : this.copyRedacted(item, seen);
      }
      return out;
    } finally {
      seen.delete(value);
    }
  }

  private copyError(error: Error, seen: WeakSet<object>): Record<string, unknown> {
    const out: Record<string, unknown> = {
      name: error.name,
      message: this.redact(error.message),
    };
    if (error.stack !== undefined) out['stack'] = this.redact(error.stack);
    for (const [key, item] of Object.entries(error)) out[key] = this.copyRedacted(item, seen);
    if (error.cause !== undefined) out['cause'] = this.copyRedacted(error.cause, seen);
    return out;
  }
}

/**
 * Characters that JSON encoders write as they are: not `"`, `\\`, `/` (escaped by some), `<>&'` (escaped by
 * Go's and .NET's), control or non-ASCII characters (escaped by ensure_ascii encoders).
 */
const VERBATIM_IN_JSON = /^[A-Za-z0-9._~+=:-]+$/;

/**
 * The characters of a redacted text whose JSON escape could form a match in the encoded text (secrets all
 * verbatim in JSON, none short; see Redactor.jsonEncodingMayForm). A match in the encoded text that holds
 * no escape's character is in the text itself, which holds none (an escape beside it, where the text had a
 * quote, backslash or control character, only ends a rule's run or check sooner). No rule and no such
 * secret holds a backslash, so a match holding part of an escape starts inside it, after its backslash: at
 * the `\` of `\\` or the quote of `\"`, which start no match there (the credential-header rule needs an
 * unescaped quote after the header's name, and inside a JSON string every quote is escaped), or at a letter
 * or digit of `\b`, `\f`, `\n`, `\r`, `\t`, `\u00XX` (the other control characters) or `\udXXX` (a lone
 * surrogate). The rules start with `Bearer`, `sk-`, `AIza`, `?`, `&` or a quote: `b` and the hex digits may
 * start `Bearer` or a secret, `n`, `r` and `t` only a secret. So every control character counts but a
 * newline, carriage return or tab (those only when a secret starts with their letter), and so does a lone
 * surrogate.
 */
function formingEscapes(forms: readonly string[]): { controls: RegExp; mask: number } {
  let controls = '';
  let mask = 0;
  for (let code = 0; code < 0x20; code++) {
    const escape = JSON.stringify(String.fromCharCode(code)).slice(2, -1);
    const quiet = escape.length === 1 && 'nrt'.includes(escape);
    if (!quiet || forms.some((form) => form.startsWith(escape))) {
      controls += `\\u${code.toString(16).padStart(4, '0')}`;
      mask |= 1 << code;
    }
  }
  return { controls: new RegExp(`[${controls}]`), mask };
}

const ANY_SURROGATE = /[\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Bytes of a request body scanned for prompt secrets at a time (below V8's large-object size, 128 KB). */
const PROMPT_SCAN_WINDOW = 64 * 1024;
/**
 * Up to this many secrets, a body's bytes are searched for each one natively (`Buffer.includes`); more, and
 * one regular expression over latin1 windows of the bytes is faster than a pass per secret.
 */
const MAX_PROMPT_NEEDLES = 8;

function execFrom(re: RegExp | undefined, text: string, from: number): RegExpExecArray | null {
  if (re === undefined) return null;
  re.lastIndex = from;
  return re.exec(text);
}

/** Where a scan stands: the next exact hit and rule match found so far (null: none left). */
interface Pending {
  hit: ExactHit | null;
  rule: RegExpExecArray | null;
}

/** Which group of `rulePattern` produced `match` (the rule is `rules[group - 1]`). */
function groupOf(match: RegExpExecArray): number {
  for (let i = 1; i < match.length; i++) {
    if (match[i] !== undefined) return i;
  }
  throw new Error('redaction: a match outside every rule group');
}

/** The forms in which a secret shows up in text we write: raw, JSON-escaped, URL-encoded. */
function secretForms(secret: string): string[] {
  const forms = [secret, JSON.stringify(secret).slice(1, -1)];
  try {
    forms.push(encodeURIComponent(secret));
  } catch {
    // A lone surrogate has no URL encoding (URIError): such a secret cannot appear URL-encoded either.
  }
  return forms;
}

function uniqueLongestFirst(values: string[]): string[] {
  return [...new Set(values)].sort((a, b) => b.length - a.length);
}

/**
 * Copy-on-write replacement of every string by `replace(string)` (which returns the string itself when it
 * changes nothing): returns the same reference for any subtree in which nothing changed.
 */
function replaceInStrings(value: unknown, replace: (text: string) => string): unknown {
  if (typeof value === 'string') return replace(value);
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const redacted = replaceInStrings(item, replace);
      if (redacted !== item) {
        copy ??= value.slice();
        copy[i] = redacted;
      }
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value)) {
    const redacted = replaceInStrings(item, replace);
    if (redacted !== item) {
      copy ??= { ...(value as Record<string, unknown>) };
      copy[key] = redacted;
    }
  }
  return copy ?? value;
}

/**
 * Env vars whose values are secrets (README, Key hygiene): `*_API_KEY`, `*_API_KEY_<n>`, `*AUTH_TOKEN`,
 * `*_ADMIN_KEY` (the admin key, `LLM_INTERACTIVE_PROXY_ADMIN_KEY`), `PROXY_STATE_SECRET`.
 */
const SECRET_ENV_NAME = /(?:^|_)API_KEY(?:_\d+)?$|(?:^|_)AUTH_TOKEN$|(?:^|_)ADMIN_KEY$|^PROXY_STATE_SECRET$/;
/** Env vars holding comma-separated secrets. */
const SECRET_LIST_ENV_NAMES = ['API_KEYS'] as const;

/**
 * The secret values found in the environment: `*_API_KEY`, `*_API_KEY_<n>` (including
 * `LLM_INTERACTIVE_PROXY_API_KEY`), `AUTH_TOKEN` and `*_AUTH_TOKEN`, `*_ADMIN_KEY` (including
 * `LLM_INTERACTIVE_PROXY_ADMIN_KEY`), and each item of `API_KEYS`.
 */
export function collectEnvSecrets(env: NodeJS.ProcessEnv): string[] {
  const found = new Set<string>();
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (SECRET_ENV_NAME.test(name)) addSecret(found, value);
  }
  for (const name of SECRET_LIST_ENV_NAMES) {
    for (const item of env[name]?.split(',') ?? []) addSecret(found, item);
  }
  return [...found];
}

/** Both forms: the config layer trims, but a value used untrimmed somewhere must not leak either. */
function addSecret(into: Set<string>, value: string): void {
  const trimmed = value.trim();
  if (trimmed === '') return;
  into.add(trimmed);
  into.add(value);
}
