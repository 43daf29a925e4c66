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

/** Header sources after `Authorization`, in the order of SPEC §2.2. */
const PLAIN_HEADER_SOURCES = ['x-api-key', 'x-goog-api-key'] as const;
const QUERY_PARAMETERS = ['key', 'api_key'] as const;

/**
 * Finds the proxy key a request carries (SPEC §2.2): the first present of `Authorization: Bearer`,
 * `x-api-key`, `x-goog-api-key`, query `key` / `api_key`. `query` is the raw query string without `?`.
 */
export function extractCredential(headers: IncomingHttpHeaders, query: string): PresentedCredential | null {
  const authorization = headers.authorization;
  if (authorization !== undefined) return { source: 'authorization', value: bearerToken(authorization) };

  for (const source of PLAIN_HEADER_SOURCES) {
    const header = headers[source];
    if (header !== undefined) return { source, value: singleValue(header) };
  }

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
