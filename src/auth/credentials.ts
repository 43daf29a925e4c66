import type { IncomingHttpHeaders } from 'node:http';

export type CredentialSource = 'authorization' | 'x-api-key' | 'x-goog-api-key' | 'query';

/**
 * The credential a request presented. `value: null` means the source was present but unusable (a
 * non-Bearer scheme, an empty value, a repeated header or parameter): that is still a failed attempt.
 */
export interface PresentedCredential {
  source: CredentialSource;
  value: string | null;
}

const QUERY_PARAMETERS = ['key', 'api_key'] as const;

/**
 * Finds the proxy key a request carries (README, Authentication): the first present of `Authorization: Bearer`,
 * `x-api-key`, `x-goog-api-key`, query `key` / `api_key`. `query` is the raw query string without `?`.
 *
 * `rawHeaders` (Node's `IncomingMessage.rawHeaders`) shows a credential header sent twice, which `headers`
 * hides: Node keeps the first `Authorization` and joins two `x-api-key` with ", ". A request carrying any
 * of the three more than once is malformed (`value: null`, a failed attempt), whichever would have won.
 */
export function extractCredential(
  headers: IncomingHttpHeaders,
  query: string,
  rawHeaders?: readonly string[],
): PresentedCredential | null {
  const authorization = headers.authorization;
  const apiKey = headers['x-api-key'];
  const googApiKey = headers['x-goog-api-key'];
  // A repeated header is also present in `headers`: without one, rawHeaders need not be read.
  if (
    rawHeaders !== undefined &&
    (authorization !== undefined || apiKey !== undefined || googApiKey !== undefined)
  ) {
    const repeated = repeatedCredentialHeader(rawHeaders);
    if (repeated !== null) return { source: repeated, value: null };
  }

  if (authorization !== undefined) return { source: 'authorization', value: bearerToken(authorization) };

  if (apiKey !== undefined) return { source: 'x-api-key', value: singleValue(apiKey) };
  if (googApiKey !== undefined) return { source: 'x-goog-api-key', value: singleValue(googApiKey) };

  // Most requests carry a header, so the query is only parsed when it can hold a key at all.
  if (query === '' || !query.includes('key=')) return null;
  const params = new URLSearchParams(query);
  for (const name of QUERY_PARAMETERS) {
    const values = params.getAll(name);
    if (values.length > 0)
      return { source: 'query', value: values.length === 1 ? nonEmpty(values[0]) : null };
  }
  return null;
}

/**
 * Whether the header name `name` is `lower` (lower-case letters and `-`, as long as `name`) in any case,
 * without making a lower-case copy: `| 0x20` folds A-Z onto a-z and leaves `-` as it is; no other byte of
 * a header name (an HTTP token) folds onto a letter or `-`.
 */
function sameName(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * The first credential header (in the order README, Authentication gives) that `rawHeaders` holds more than once, or null.
 * One pass over the names, told apart by length first: on the hot path, for every request with a key.
 */
function repeatedCredentialHeader(rawHeaders: readonly string[]): CredentialSource | null {
  let authorization = 0;
  let apiKey = 0;
  let googApiKey = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 13) {
      if (sameName(name, 'authorization')) authorization++;
    } else if (name.length === 9) {
      if (sameName(name, 'x-api-key')) apiKey++;
    } else if (name.length === 14) {
      if (sameName(name, 'x-goog-api-key')) googApiKey++;
    }
  }
  if (authorization > 1) return 'authorization';
  if (apiKey > 1) return 'x-api-key';
  return googApiKey > 1 ? 'x-goog-api-key' : null;
}

/** The token of `Bearer <token>` (scheme case-insensitive, RFC 7235), or null for anything else. */
function bearerToken(header: string | string[]): string | null {
  const value = singleValue(header);
  if (value === null) return null;
  const separator = value.search(/[ \t]/);
  if (separator < 0 || value.slice(0, separator).toLowerCase() !== 'bearer') return null;
  return nonEmpty(value.slice(separator + 1).trim());
}

function singleValue(header: string | string[]): string | null {
  return typeof header === 'string' ? nonEmpty(header.trim()) : null;
}

function nonEmpty(value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value;
}
