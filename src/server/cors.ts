import type { ProxyConfig } from '../config/schema.js';

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
 * CORS for browser-based clients: any origin unless `--cors-origin` narrows it — but with authentication off,
 * none unless `--cors-origin` names some (README "Turning it off"): any web page could otherwise spend the
 * provider keys and read the answers. Null: no CORS at all.
 */
export function corsOptionsFor(config: ProxyConfig, authOn: boolean): CorsOptions | null {
  if (!authOn && config.server.cors_origins.length === 0) return null;
  return {
    origin: config.server.cors_origins.length > 0 ? config.server.cors_origins : '*',
    credentials: false,
    methods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowedHeaders: [
      'authorization',
      'content-type',
      'x-api-key',
      'x-goog-api-key',
      'anthropic-version',
      'anthropic-beta',
      'x-request-id',
      'x-stainless-arch',
      'x-stainless-lang',
      'x-stainless-os',
      'x-stainless-package-version',
      'x-stainless-retry-count',
      'x-stainless-runtime',
      'x-stainless-runtime-version',
      'x-stainless-timeout',
      'x-goog-api-client',
      'anthropic-dangerous-direct-browser-access',
    ],
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
