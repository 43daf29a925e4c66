import { describe, expect, it } from 'vitest';
import { CHAT_ROUTES, MODEL_ROUTES, protocolForPath } from './route-table.js';

describe('the front-end route table', () => {
  it('names each route with the protocol its path speaks: one table, no second opinion', () => {
    for (const route of [...CHAT_ROUTES, ...MODEL_ROUTES]) {
      expect(protocolForPath(route.url), route.url).toBe(route.protocol);
    }
  });

  it.each([
    ['/anthropic/v1/messages', 'anthropic'],
    ['/anthropic', 'anthropic'],
    ['/anthropicx/v1/messages', 'openai'],
    ['/v1beta/models/gemini-2.0-flash:generateContent', 'gemini'],
    ['/v1beta', 'gemini'],
    ['/v1betax', 'openai'],
    ['/v1/chat/completions', 'openai'],
    ['/models', 'openai'],
    ['/health', 'openai'],
  ])('%s speaks %s', (path, protocol) => {
    expect(protocolForPath(path)).toBe(protocol);
  });
});
