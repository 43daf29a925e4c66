/**
 * The data behind redaction: which key formats are recognised, how each is masked, and which headers always
 * carry credentials. `Redactor` compiles these into one regular expression; keep the table here so the
 * rules can be read (and reviewed) in one place.
 */

export const MASK = '****';

/**
 * Shortest configured secret that is redacted wherever it occurs, as an exact value. Shorter ones (1–3
 * characters) are redacted only where they stand as a whole value (see `Redactor` for why and where).
 */
export const MIN_EXACT_SECRET_LENGTH = 4;

/**
 * Characters that may sit between two JSON strings (`","`, `":"`, `"]`…) or stand for a quote or an
 * escape: a short secret holding none of them can be masked inside quotes without changing the structure
 * of any JSON text (see {@link shortSecretValueRule}).
 */
const JSON_STRUCTURAL = /["\\,:[\]{}\s\p{Cc}]/u;

/** Whether a short secret (under {@link MIN_EXACT_SECRET_LENGTH}) can be matched inside text at all. */
export function isMaskableShortSecret(secret: string): boolean {
  return secret.length > 0 && secret.length < MIN_EXACT_SECRET_LENGTH && !JSON_STRUCTURAL.test(secret);
}

/** Replaces configured secrets in prompts bound for a backend (README, Key hygiene). */
export const PROMPT_SECRET_REPLACEMENT = '(API_KEY_HAS_BEEN_REDACTED)';

/** Most specific first: the first prefix a secret starts with decides its mask. */
const KNOWN_PREFIXES = ['sk-proj-', 'sk-ant-', 'sk-or-', 'sk-', 'AIza'] as const;

/** `sk-proj-abc…` → `sk-proj-****`; a secret without a known prefix → `****`. */
export function prefixMask(secret: string): string {
  for (const prefix of KNOWN_PREFIXES) {
    if (secret.startsWith(prefix)) return prefix + MASK;
  }
  return MASK;
}

/** Headers whose value is a credential whatever it looks like (lower-case, as Node delivers them). */
export const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'api-key',
  'x-goog-api-key',
  'cookie',
  'set-cookie',
]);

/** For these the auth scheme is kept (`Bearer ****`) because it helps debugging and is not secret. */
const SCHEME_HEADERS: ReadonlySet<string> = new Set(['authorization', 'proxy-authorization']);

const AUTH_SCHEME = /^([A-Za-z][A-Za-z0-9_-]*)[ \t]+\S/;

/** The masked value of a credential header; `name` must be lower-case. */
export function maskCredentialHeader(name: string, value: string): string {
  if (SCHEME_HEADERS.has(name)) {
    const scheme = AUTH_SCHEME.exec(value);
    if (scheme) return `${scheme[1]} ${MASK}`;
  }
  return MASK;
}

/** URL query parameters that carry keys (Gemini's `?key=`). */
export const SECRET_QUERY_PARAMS = ['key', 'api_key', 'apikey', 'access_token'] as const;

/** Characters of an RFC 6750 bearer token (b64token). */
const BEARER_TOKEN_CHARS = 'A-Za-z0-9._~+/=-';
/** Characters of the body of OpenAI / Anthropic / OpenRouter / Google keys. */
const KEY_BODY_CHARS = 'A-Za-z0-9_-';
const QUERY_VALUE_CHARS = `^&#\\s"'<>\\\\`;

/** `bearer` → `[Bb][Ee][Aa][Rr][Ee][Rr]`: case-insensitive without making the whole regex `/i`. */
function anyCase(word: string): string {
  let source = '';
  for (const ch of word) {
    const lower = ch.toLowerCase();
    const upper = ch.toUpperCase();
    source += lower === upper ? escapeRegExp(ch) : `[${upper}${lower}]`;
  }
  return source;
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/**
 * One alternative of the compiled regular expression. `source` must not contain capturing groups (the
 * redactor wraps each rule in one group to know which rule matched).
 */
export interface PatternRule {
  readonly name: string;
  /**
   * Builds the source, or undefined when the rule has nothing to match. Receives the alternation of the
   * short secrets' forms (under {@link MIN_EXACT_SECRET_LENGTH} characters; undefined when there are none).
   * Longer exact secrets are never part of a regular expression: `Redactor` finds them with an
   * `ExactMatcher` and merges them in by position.
   */
  source(shortSecrets: string | undefined): string | undefined;
  mask(match: string): string;
  /**
   * Characters that would have extended a match of this rule: a stream that had to release a very long
   * match early drops what follows as long as it consists of these (sticky regex).
   */
  readonly continuation: RegExp;
  /**
   * Upper bound of characters after a match's start that decide whether (and how) it matches, apart from
   * greedy runs that end at the first character outside the run; exact secrets (short ones included) add
   * their own length.
   */
  readonly decisionLength: number;
}

/** A match must not start in the middle of a word (`task-…`, `risk-…`). Placed after the literal: cheaper. */
function notPrecededByWordChar(literal: string): string {
  return `(?<![A-Za-z0-9]${literal})`;
}

const BEARER = anyCase('bearer');
const MAX_BEARER_SPACES = 8;
const MIN_BEARER_TOKEN = 8;
/**
 * `Bearer authentication`, `bearer tokens`: an all-lower-case word after "bearer" is prose, not a token.
 * Bounded (≤ 24 letters) so a stream can decide within a fixed window.
 */
const MAX_PROSE_WORD = 24;

const CREDENTIAL_HEADER_NAMES = [...CREDENTIAL_HEADERS].sort((a, b) => b.length - a.length).map(anyCase);

/** Spaces a JSON encoder may put between a key and its colon (`"a" : 1`); a short secret there is a key. */
const MAX_SPACES_BEFORE_COLON = 4;

/** `Bearer <token>`'s mask: the scheme as written, one space, the mask. */
export const bearerMask = (match: string): string => `${match.slice(0, 6)} ${MASK}`;

/**
 * A short configured secret (1–3 characters) standing as a whole JSON string value: `"ab"`, or `\"ab\"`
 * inside a JSON string (a JSON text logged as a string). Not an object key (`"ab":`), which names a field
 * rather than holding a value. Only secrets for which {@link isMaskableShortSecret} holds are given: the
 * masked part is then free of quotes, backslashes and separators, so masking it can never change where a
 * JSON string starts or ends, whatever the text around it.
 */
export const shortSecretValueRule: PatternRule = {
  name: 'short-secret-value',
  source: (short) =>
    short === undefined
      ? undefined
      : `(?:"(?:${short})"|\\\\"(?:${short})\\\\")(?![ \\t]{0,${MAX_SPACES_BEFORE_COLON}}:)`,
  mask: (match) => {
    const quote = match.startsWith('"') ? '"' : '\\"';
    return quote + MASK + quote;
  },
  continuation: /(?:)/y,
  decisionLength: 2 + 2 + MAX_SPACES_BEFORE_COLON + 1,
};

export const PATTERN_RULES: readonly PatternRule[] = [
  {
    name: 'bearer',
    source: (short) =>
      `${BEARER}${notPrecededByWordChar(BEARER)}[ \\t]{1,${MAX_BEARER_SPACES}}(?:` +
      // A short configured secret only as the whole token (`Bearer ab` but not `Bearer abstract`). Longer
      // configured secrets, which may hold characters a b64token may not, are found by the exact matcher
      // and extend a match to cover them whole (see `Redactor`).
      (short === undefined ? '' : `(?:${short})(?![${BEARER_TOKEN_CHARS}])|`) +
      `(?![a-z]{1,${MAX_PROSE_WORD}}(?![${BEARER_TOKEN_CHARS}]))[${BEARER_TOKEN_CHARS}]{${MIN_BEARER_TOKEN},})`,
    mask: bearerMask,
    continuation: new RegExp(`[${BEARER_TOKEN_CHARS}]*`, 'y'),
    decisionLength: 6 + MAX_BEARER_SPACES + MAX_PROSE_WORD + 1,
  },
  {
    name: 'provider-key',
    source: () =>
      `sk-${notPrecededByWordChar('sk-')}(?:(?:proj|ant|or)-[${KEY_BODY_CHARS}]{8,}|[${KEY_BODY_CHARS}]{16,})` +
      `|AIza${notPrecededByWordChar('AIza')}[${KEY_BODY_CHARS}]{30,}`,
    mask: prefixMask,
    continuation: new RegExp(`[${KEY_BODY_CHARS}]*`, 'y'),
    decisionLength: 4 + 30,
  },
  {
    name: 'query-param',
    source: () =>
      `[?&](?:${SECRET_QUERY_PARAMS.map(anyCase).join('|')})=[${QUERY_VALUE_CHARS}]+` +
      // `&amp;key=` in HTML-escaped text is the same parameter.
      `|&amp;(?:${SECRET_QUERY_PARAMS.map(anyCase).join('|')})=[${QUERY_VALUE_CHARS}]+`,
    mask: (match) => match.slice(0, match.indexOf('=') + 1) + MASK,
    continuation: new RegExp(`[${QUERY_VALUE_CHARS}]*`, 'y'),
    decisionLength: '&amp;access_token='.length + 1,
  },
  {
    // A credential header inside JSON text (a log line that logs a headers object): masked whatever the value.
    name: 'json-credential-header',
    source: () => `"(?:${CREDENTIAL_HEADER_NAMES.join('|')})"[ \\t]{0,4}:[ \\t]{0,4}"(?:[^"\\\\]|\\\\.)+`,
    mask: (match) => {
      const nameEnd = match.indexOf('"', 1);
      const valueStart = match.indexOf('"', nameEnd + 1) + 1;
      const name = match.slice(1, nameEnd).toLowerCase();
      return match.slice(0, valueStart) + maskCredentialHeader(name, match.slice(valueStart));
    },
    continuation: /[^"]*/y,
    decisionLength: '"proxy-authorization"'.length + 10,
  },
  shortSecretValueRule,
];

/** The bearer rule, whose matches the redactor extends over a configured secret right after the scheme. */
export const BEARER_RULE = PATTERN_RULES[0]!;

/**
 * Where a bearer match would start whose token starts at `tokenStart`: the position of `Bearer` (any case)
 * when it and 1–8 spaces or tabs come right before `tokenStart`, at or after `from`, and not after a letter
 * or digit — the bearer rule's own conditions. Otherwise -1.
 */
export function bearerStartBefore(text: string, tokenStart: number, from: number): number {
  let spaces = 0;
  while (spaces <= MAX_BEARER_SPACES) {
    const ch = text.charCodeAt(tokenStart - spaces - 1);
    if (ch !== 0x20 && ch !== 0x09) break;
    spaces++;
  }
  if (spaces === 0 || spaces > MAX_BEARER_SPACES) return -1;
  const start = tokenStart - spaces - 6;
  if (start < from || !BEARER_WORD.test(text.slice(start, start + 6))) return -1;
  return start > 0 && WORD_CHAR.test(text.charAt(start - 1)) ? -1 : start;
}

/** The length of `Bearer` and its spaces at `start` (a bearer match's start). */
export function bearerTokenOffset(text: string, start: number): number {
  let offset = 6;
  while (text.charCodeAt(start + offset) === 0x20 || text.charCodeAt(start + offset) === 0x09) offset++;
  return offset;
}

const BEARER_WORD = new RegExp(`^${BEARER}$`);
const WORD_CHAR = /[A-Za-z0-9]/;
