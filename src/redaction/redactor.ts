import {
  CREDENTIAL_HEADERS,
  MIN_EXACT_SECRET_LENGTH,
  PATTERN_RULES,
  PROMPT_SECRET_REPLACEMENT,
  escapeRegExp,
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
 * keys change) — every method is then a scan with precompiled regular expressions.
 *
 * Secrets: each configured value (proxy keys, provider keys) plus the key formats of SPEC §3 (`sk-proj-`,
 * `sk-ant-`, `sk-or-`, `sk-`, `AIza`, the token after `Bearer`), `?key=` style query parameters and
 * credential headers inside JSON text.
 *
 * Exact values shorter than {@link MIN_EXACT_SECRET_LENGTH} (4) characters are ignored: a one-character
 * "secret" would turn every log line into asterisks while protecting nothing (it is guessable anyway).
 * Any key of 4+ characters is redacted, however common the word — a configured key is a secret first.
 * Each exact secret is also matched in its JSON-escaped and URL-encoded forms, as it appears in a log line
 * or a URL.
 *
 * Matching is one leftmost-first alternation — exact secrets (longest first, so a longer secret wins over
 * its prefix), then the patterns — run as two regular expressions merged by position (an exact match wins
 * a tie). V8 scans a large alternation of long literals several times faster on its own than mixed with
 * short patterns, so the two halves together are faster than the single alternation (bench/redaction.mjs).
 */
export class Redactor {
  /** Configured exact secrets (raw form, longest first) — the ones replaced in prompts. */
  readonly secrets: readonly string[];
  /**
   * Characters a stream must hold back so that no match can change once more text arrives (see
   * `StreamRedactor`): the longest decision window of any rule.
   */
  readonly holdback: number;

  /**
   * True when every secret shows up unescaped in any JSON text that holds it: JSON-encoding redacted text
   * can then never form a secret (see redactPromptSecrets and the capture's stream chunks).
   */
  readonly secretsVerbatimInJson: boolean;
  /** Exact secrets in all their forms; undefined when none are configured. */
  private readonly exactPattern: RegExp | undefined;
  /** The pattern rules, one capturing group each (group i + 1 is `PATTERN_RULES[i]`). */
  private readonly rulePattern: RegExp;
  private readonly promptPattern: RegExp | undefined;

  constructor(secrets: Iterable<string> = []) {
    const raw = uniqueLongestFirst([...secrets].filter((s) => s.length >= MIN_EXACT_SECRET_LENGTH));
    this.secrets = raw;
    const forms = uniqueLongestFirst(raw.flatMap(secretForms));
    const exact = forms.length > 0 ? forms.map(escapeRegExp).join('|') : undefined;
    this.exactPattern = exact === undefined ? undefined : new RegExp(exact, 'g');
    this.rulePattern = new RegExp(PATTERN_RULES.map((rule) => `(${rule.source(exact)})`).join('|'), 'g');
    this.promptPattern = raw.length > 0 ? new RegExp(raw.map(escapeRegExp).join('|'), 'g') : undefined;
    this.secretsVerbatimInJson = raw.every((secret) => VERBATIM_IN_JSON.test(secret));
    const longestExact = forms[0]?.length ?? 0;
    this.holdback = Math.max(...PATTERN_RULES.map((r) => r.decisionLength)) + longestExact + 1;
  }

  /** Returns `text` itself (no copy) when nothing matches. */
  redact(text: string): string {
    let exact = execFrom(this.exactPattern, text, 0);
    let rule = execFrom(this.rulePattern, text, 0);
    if (exact === null && rule === null) return text;
    let out = '';
    let pos = 0;
    while (exact !== null || rule !== null) {
      const exactFirst = exact !== null && (rule === null || exact.index <= rule.index);
      const match = (exactFirst ? exact : rule)!;
      out +=
        text.slice(pos, match.index) + (exactFirst ? prefixMask(match[0]) : ruleOf(match).mask(match[0]));
      pos = match.index + match[0].length;
      if (exact !== null && exact.index < pos) exact = execFrom(this.exactPattern, text, pos);
      if (rule !== null && rule.index < pos) rule = execFrom(this.rulePattern, text, pos);
    }
    return out + text.slice(pos);
  }

  /**
   * The matches in `text` from `from` on, in order, as {@link redact} replaces them (characters before
   * `from` are still seen by the rules' "not preceded by a word character" checks).
   */
  *scan(text: string, from = 0): Generator<SecretMatch, void, undefined> {
    let exact = execFrom(this.exactPattern, text, from);
    let rule = execFrom(this.rulePattern, text, from);
    while (exact !== null || rule !== null) {
      const exactFirst = exact !== null && (rule === null || exact.index <= rule.index);
      const match = (exactFirst ? exact : rule)!;
      const start = match.index;
      const end = start + match[0].length;
      if (exactFirst) {
        yield { start, end, mask: prefixMask(match[0]), continuation: undefined };
      } else {
        const matched = ruleOf(match);
        yield { start, end, mask: matched.mask(match[0]), continuation: matched.continuation };
      }
      if (exact !== null && exact.index < end) exact = execFrom(this.exactPattern, text, end);
      if (rule !== null && rule.index < end) rule = execFrom(this.rulePattern, text, end);
    }
  }

  /**
   * A deep copy of `value` safe to serialise: every string redacted, credential-header keys masked whatever
   * their value, `Error`s turned into plain `{ name, message, stack, ...own fields }` (JSON would drop
   * message and stack), `Buffer`/typed arrays decoded as UTF-8 text, cycles replaced by `'[Circular]'`.
   */
  redactValue(value: unknown): unknown {
    return this.copyRedacted(value, new WeakSet());
  }

  /** Credential headers masked whatever their value; all others through {@link redact}. Drops `undefined`. */
  redactHeaders(headers: Readonly<Record<string, HeaderValue>>): RedactedHeaders {
    const out: RedactedHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      const lower = name.toLowerCase();
      out[name] = CREDENTIAL_HEADERS.has(lower)
        ? maskHeaderValue(lower, value)
        : Array.isArray(value)
          ? value.map((v) => this.redact(String(v)))
          : this.redact(String(value));
    }
    return out;
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
    // The query rule is part of `pattern`; this exists so callers say what they redact.
    return this.redact(url);
  }

  /**
   * Replaces every configured secret (exact values only — a prompt may legitimately discuss `sk-…` formats)
   * in any string of a request body with `(API_KEY_HAS_BEEN_REDACTED)`. Object keys are left alone.
   * Copy-on-write: when nothing matched, `body` is returned as is with `changed: false`.
   */
  redactPromptSecrets(body: unknown, rawJson?: string): { body: unknown; changed: boolean } {
    const re = this.promptPattern;
    if (re === undefined) return { body, changed: false };
    // The body's own JSON text, when given, is scanned once instead of walking every string of the body:
    // secrets made only of characters no JSON encoder escapes appear in it exactly as they are.
    if (rawJson !== undefined && this.secretsVerbatimInJson) {
      re.lastIndex = 0;
      if (!re.test(rawJson)) return { body, changed: false };
    }
    const redacted = replaceInStrings(body, re);
    return { body: redacted, changed: redacted !== body };
  }

  private copyRedacted(value: unknown, seen: WeakSet<object>): unknown {
    if (typeof value === 'string') return this.redact(value);
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

function execFrom(re: RegExp | undefined, text: string, from: number): RegExpExecArray | null {
  if (re === undefined) return null;
  re.lastIndex = from;
  return re.exec(text);
}

/** Which rule of `rulePattern` produced `match`: the one whose group took part. */
function ruleOf(match: RegExpExecArray): PatternRule {
  for (let i = 1; i < match.length; i++) {
    if (match[i] !== undefined) return PATTERN_RULES[i - 1]!;
  }
  throw new Error('redaction: a match outside every rule group');
}

/** The forms in which a secret shows up in text we write: raw, JSON-escaped, URL-encoded. */
function secretForms(secret: string): string[] {
  return [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)];
}

function uniqueLongestFirst(values: string[]): string[] {
  return [...new Set(values)].sort((a, b) => b.length - a.length);
}

/** Copy-on-write replacement: returns the same reference for any subtree in which nothing matched. */
function replaceInStrings(value: unknown, re: RegExp): unknown {
  if (typeof value === 'string') {
    re.lastIndex = 0;
    if (!re.test(value)) return value;
    re.lastIndex = 0;
    return value.replace(re, PROMPT_SECRET_REPLACEMENT);
  }
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const redacted = replaceInStrings(item, re);
      if (redacted !== item) {
        copy ??= value.slice();
        copy[i] = redacted;
      }
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value)) {
    const redacted = replaceInStrings(item, re);
    if (redacted !== item) {
      copy ??= { ...(value as Record<string, unknown>) };
      copy[key] = redacted;
    }
  }
  return copy ?? value;
}

/** Env vars whose values are secrets (SPEC §3): `*_API_KEY`, `*_API_KEY_<n>`, `*AUTH_TOKEN`. */
const SECRET_ENV_NAME = /(?:^|_)API_KEY(?:_\d+)?$|(?:^|_)AUTH_TOKEN$/;
/** Env vars holding comma-separated secrets. */
const SECRET_LIST_ENV_NAMES = ['API_KEYS'] as const;

/**
 * The secret values found in the environment: `*_API_KEY`, `*_API_KEY_<n>` (including
 * `LLM_INTERACTIVE_PROXY_API_KEY`), `AUTH_TOKEN` and `*_AUTH_TOKEN`, and each item of `API_KEYS`.
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
