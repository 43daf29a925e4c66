import type { ProxyConfig } from '../config/schema.js';
import { ProxyError } from '../proxy-error.js';

/** The options of @fastify/cors that the lane mirrors (see laneHeaders). */
export type CorsOptions = {
  origin: string | string[];
  exposedHeaders: string[];
  [option: string]: unknown;
};

/**
 * The answer headers a browser client may read: a browser hides every other one from the page. The proxy's
 * own (request id, overhead, where failover answered, dropped fields, a token count's estimate) and the
 * rate-limit headers of its limits (README, Teams) and of the providers it passes on.
 */
export const EXPOSED_HEADERS: readonly string[] = [
  'x-request-id',
  'x-proxy-overhead-ms',
  'retry-after',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
  'x-proxy-backend',
  'x-proxy-model',
  'x-proxy-attempts',
  'x-proxy-dropped',
  'x-proxy-token-count',
];

/**
 * What a pre-flight's `Access-Control-Request-Headers` may be for the proxy to grant it: a list of header
 * names (RFC 9110 tokens, comma-separated, as browsers write it), at most `names` of them in at most
 * `characters`. Anything else is no browser's pre-flight and gets a 400 (preflightRefusal).
 */
export const REQUESTED_HEADERS_LIMITS = { names: 64, characters: 2048 } as const;

const HEADER_NAME = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const HEADER_NAME_LIST = new RegExp(`^${HEADER_NAME}(?:[ \\t]*,[ \\t]*${HEADER_NAME})*$`);

/** True when a pre-flight's `Access-Control-Request-Headers` (absent or empty: none asked) may be granted. */
export function grantableRequestHeaders(value: string | undefined): boolean {
  if (value === undefined || value === '') return true;
  return (
    value.length <= REQUESTED_HEADERS_LIMITS.characters &&
    HEADER_NAME_LIST.test(value) &&
    value.split(',').length <= REQUESTED_HEADERS_LIMITS.names
  );
}

/** The answer to a pre-flight whose requested headers are not grantable (grantableRequestHeaders). */
export function preflightRefusal(): ProxyError {
  return new ProxyError(
    400,
    `Invalid CORS pre-flight: Access-Control-Request-Headers must be a comma-separated list of at most ` +
      `${REQUESTED_HEADERS_LIMITS.names} header names in at most ${REQUESTED_HEADERS_LIMITS.characters} characters`,
    { code: 'invalid_preflight' },
  );
}

/**
 * CORS for browser-based clients: any origin unless `--cors-origin` narrows it — but with authentication off,
 * none unless `--cors-origin` names some (README "Turning it off"): any web page could otherwise spend the
 * provider keys and read the answers. Null: no CORS at all.
 *
 * No `allowedHeaders`: @fastify/cors then grants a pre-flight the headers it asks for (adding
 * `Vary: Access-Control-Request-Headers`), once app.ts has checked that they are a bounded list of names
 * (grantableRequestHeaders). A fixed list always lags the SDKs — each release adds `x-stainless-*` helper
 * headers, `anthropic-*` ones, tracing headers, a user's `defaultHeaders` — and a name missing from it makes
 * the browser drop the request. It guards nothing: credentials are never allowed (no cookies, no ambient
 * authority: a page must hold a proxy key to get anything; with auth off only `--cors-origin` origins get
 * CORS at all), and anyone can send the same headers from outside a browser.
 */
export function corsOptionsFor(config: ProxyConfig, authOn: boolean): CorsOptions | null {
  if (!authOn && config.server.cors_origins.length === 0) return null;
  return {
    origin: config.server.cors_origins.length > 0 ? config.server.cors_origins : '*',
    credentials: false,
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    exposedHeaders: EXPOSED_HEADERS.slice(),
    maxAge: 600,
  };
}

/** The headers of a chat answer, by the request's `Origin` (undefined when it sent none). */
export type LaneHeaders = (origin: string | undefined) => Readonly<Record<string, string>>;

/**
 * The headers every chat answer carries — the security headers and what @fastify/cors adds to any other
 * route's answer, the same rules (Fastify keeps the pre-flights): with `*`, the same for every request; with
 * a list, `Vary: Origin` always and the request's origin echoed when listed. Built once per origin, so a
 * chat request copies nothing.
 */
export function laneHeaders(
  security: Readonly<Record<string, string>>,
  options: CorsOptions | null,
): LaneHeaders {
  if (options === null) {
    const plain = { ...security };
    return () => plain;
  }
  const exposed = options.exposedHeaders.join(', ');
  const origin = options.origin;
  if (typeof origin === 'string') {
    const fixed = {
      ...security,
      'access-control-allow-origin': origin,
      'access-control-expose-headers': exposed,
    };
    return () => fixed;
  }
  const anyOrigin = origin.includes('*');
  const unlisted = { ...security, vary: 'Origin', 'access-control-expose-headers': exposed };
  const listed = new Map(
    origin.map((allowed) => [
      allowed,
      { ...unlisted, 'access-control-allow-origin': anyOrigin ? '*' : allowed },
    ]),
  );
  const wildcard = anyOrigin ? { ...unlisted, 'access-control-allow-origin': '*' } : unlisted;
  return (requestOrigin) => {
    if (requestOrigin === undefined) return unlisted;
    return listed.get(requestOrigin) ?? wildcard;
  };
}
