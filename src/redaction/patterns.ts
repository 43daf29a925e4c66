/**
 * The data behind redaction: which key formats are recognised, how each is masked, and which headers always
 * carry credentials. `Redactor` compiles these into one regular expression; keep the table here so the
 * rules can be read (and reviewed) in one place.
 */

export const MASK = '****';

/** Shortest configured secret that is redacted as an exact value (see `Redactor` for why). */
export const MIN_EXACT_SECRET_LENGTH = 4;

/** Replaces configured secrets in prompts bound for a backend (SPEC §3). */
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
  /** Builds the source; receives the alternation of exact secrets (or undefined when there are none). */
  source(exactSecrets: string | undefined): string;
  mask(match: string): string;
  /**
   * Characters that would have extended a match of this rule: a stream that had to release a very long
   * match early drops what follows as long as it consists of these (sticky regex).
   */
  readonly continuation: RegExp;
  /**
   * Upper bound of characters after a match's start that decide whether (and how) it matches, apart from
   * greedy runs that end at the first character outside the run; exact secrets add their own length.
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

export const PATTERN_RULES: readonly PatternRule[] = [
  {
    name: 'bearer',
    source: (exact) =>
      `${BEARER}${notPrecededByWordChar(BEARER)}[ \\t]{1,${MAX_BEARER_SPACES}}(?:` +
      // A configured secret first: it may hold characters a b64token may not, and must be covered whole.
      (exact === undefined ? '' : `(?:${exact})|`) +
      `(?![a-z]{1,${MAX_PROSE_WORD}}(?![${BEARER_TOKEN_CHARS}]))[${BEARER_TOKEN_CHARS}]{${MIN_BEARER_TOKEN},})`,
    mask: (match) => `${match.slice(0, 6)} ${MASK}`,
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
];
