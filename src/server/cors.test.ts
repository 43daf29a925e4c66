import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../config/schema.js';
import { corsOptionsFor, grantableRequestHeaders, laneHeaders, REQUESTED_HEADERS_LIMITS } from './cors.js';

/** What a browser page may read of an answer: everything the proxy says to clients in its headers. */
const EXPOSED =
  'x-request-id, x-proxy-overhead-ms, retry-after, ' +
  'x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, ' +
  'x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, ' +
  'x-proxy-backend, x-proxy-model, x-proxy-attempts, x-proxy-dropped, x-proxy-token-count';

describe('CORS', () => {
  it("exposes the rate-limit headers and the proxy's own to a browser, on the chat lane and Fastify's routes", () => {
    const options = corsOptionsFor(ConfigSchema.parse({}), true);
    if (options === null) throw new Error('CORS is on with auth on');
    // Fastify's routes: @fastify/cors joins the same list.
    expect(options.exposedHeaders.join(', ')).toBe(EXPOSED);
    const headers = laneHeaders({}, options);
    expect(headers(undefined)['access-control-expose-headers']).toBe(EXPOSED);
    expect(headers('http://a.example')['access-control-expose-headers']).toBe(EXPOSED);
  });

  it('sends no CORS headers with auth off and no origin named', () => {
    expect(corsOptionsFor(ConfigSchema.parse({}), false)).toBeNull();
  });

  it('leaves allowed headers to the pre-flight: @fastify/cors grants what it asks for', () => {
    const options = corsOptionsFor(ConfigSchema.parse({}), true);
    expect(options).not.toHaveProperty('allowedHeaders');
    expect(options?.credentials).toBe(false);
  });

  it('grants a bounded list of header names, as browsers write it or with spaces', () => {
    const { names, characters } = REQUESTED_HEADERS_LIMITS;
    for (const value of [
      undefined,
      '',
      'authorization',
      'authorization,content-type,x-stainless-helper-method',
      'X-Session-Id, session-id ,\topenai-beta',
      "x-!#$%&'*+.^_`|~1",
      Array.from({ length: names }, (_, i) => `h${i}`).join(','),
      'h'.repeat(characters),
    ])
      expect(grantableRequestHeaders(value), String(value)).toBe(true);
    for (const value of [
      ',',
      'a,',
      ',a',
      'a,,b',
      'a b',
      'a;b',
      'a:b',
      '"a"',
      'a\u00e9',
      'a\r\nb',
      Array.from({ length: names + 1 }, (_, i) => `h${i}`).join(','),
      'h'.repeat(characters + 1),
    ])
      expect(grantableRequestHeaders(value), JSON.stringify(value)).toBe(false);
  });
});
