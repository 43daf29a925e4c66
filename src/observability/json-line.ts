/** Characters JSON.stringify would escape in a string (lone surrogates included). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be found
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * A string as JSON writes it, for log lines built by a template (`formatAccessLine`, the authentication
 * failure line): quoted as it is when nothing in it needs escaping, else by JSON.stringify.
 */
export function jsonQuote(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}
