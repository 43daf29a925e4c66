import { describe, expect, it } from 'vitest';
import { FORWARDED_HEADERS, forwardedHeaders } from './forward-headers.js';

/** What must never reach a backend, whatever the protocol (README, "Headers on the same protocol"). */
const NEVER = [
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'api-key',
  'x-goog-api-key',
  'cookie',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'forwarded',
];

const CLIENT = {
  authorization: 'Bearer proxy-key',
  'x-api-key': 'proxy-key',
  cookie: 'a=b',
  host: 'proxy.local',
  connection: 'keep-alive',
  'x-forwarded-for': '10.0.0.1',
  'anthropic-version': '2023-06-01',
  'anthropic-beta': 'tools-2024-04-04,prompt-caching-2024-07-31',
  'openai-beta': 'assistants=v2',
};

describe('forwardedHeaders', () => {
  it('allows no credential, cookie, hop-by-hop, host or forwarding header for any protocol', () => {
    for (const names of Object.values(FORWARDED_HEADERS)) {
      for (const name of names) {
        expect(NEVER).not.toContain(name);
        expect(name).toBe(name.toLowerCase());
      }
    }
  });

  it("passes Anthropic's version and beta headers to an Anthropic backend, and nothing else", () => {
    expect(forwardedHeaders(CLIENT, 'anthropic', 'anthropic')).toEqual({
      'anthropic-version': '2023-06-01',
      'anthropic-beta': 'tools-2024-04-04,prompt-caching-2024-07-31',
    });
  });

  it("passes OpenAI's beta header to an OpenAI backend, and nothing else", () => {
    expect(forwardedHeaders(CLIENT, 'openai', 'openai')).toEqual({ 'openai-beta': 'assistants=v2' });
  });

  it("passes OpenAI's beta header on the Responses API's pass-through too", () => {
    expect(forwardedHeaders(CLIENT, 'responses', 'responses')).toEqual({ 'openai-beta': 'assistants=v2' });
    expect(forwardedHeaders(CLIENT, 'responses', 'openai')).toBeUndefined();
  });

  it('passes nothing to a Gemini backend, nor across protocols', () => {
    expect(forwardedHeaders(CLIENT, 'gemini', 'gemini')).toBeUndefined();
    expect(forwardedHeaders(CLIENT, 'anthropic', 'openai')).toBeUndefined();
    expect(forwardedHeaders(CLIENT, 'openai', 'anthropic')).toBeUndefined();
    expect(forwardedHeaders(CLIENT, 'anthropic', 'gemini')).toBeUndefined();
  });

  it('is undefined when the client sent none of them (or sent them empty)', () => {
    expect(forwardedHeaders({ host: 'x' }, 'anthropic', 'anthropic')).toBeUndefined();
    expect(forwardedHeaders({ 'openai-beta': '' }, 'openai', 'openai')).toBeUndefined();
  });
});
