import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../config/schema.js';
import { corsOptionsFor, laneHeaders } from './cors.js';

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
});
