import { describe, expect, it } from 'vitest';
import { CHAT_ROUTES } from '../pipeline/route-table.js';
import { RouteLabels } from './route-labels.js';

describe('RouteLabels', () => {
  const labels = new RouteLabels();
  for (const route of CHAT_ROUTES) labels.add(route.url);
  for (const url of ['*', '/v1/models', '/v1/models/*', '/v1/responses/:id', '/v1/responses/:id/input_items'])
    labels.add(url);

  it.each([
    ['/v1/chat/completions', '/v1/chat/completions'],
    ['/v1/chat/completions?stream=1', '/v1/chat/completions'],
    ['/anthropic/v1/messages/count_tokens', '/anthropic/v1/messages/count_tokens'],
    ['/v1beta/models/gemini-2.0-flash:countTokens', '/v1beta/models/*:countTokens'],
    ['/v1beta/models/gemini-2.0-flash:generateContent', '/v1beta/models/*'],
    ['/v1/models', '/v1/models'],
    ['/v1/models/gpt-4o', '/v1/models/*'],
    ['/v1/responses/resp_123', '/v1/responses/:id'],
    ['/v1/responses/resp_123/input_items', '/v1/responses/:id/input_items'],
  ])('%s is served by %s', (url, label) => {
    expect(labels.labelOf(url)).toBe(label);
  });

  it('names a path no route serves unmatched, never by its own text (a catch-all route aside)', () => {
    for (const url of ['/', '/v1/chat/completions/', '/v1/chat', '/v1/responses//input_items', '/x.y?z=1'])
      expect(labels.labelOf(url)).toBe('unmatched');
  });

  it('reads the dots and other characters of a pattern as themselves', () => {
    const dotted = new RouteLabels();
    dotted.add('/openapi.json');
    expect(dotted.labelOf('/openapi.json')).toBe('/openapi.json');
    expect(dotted.labelOf('/openapiXjson')).toBe('unmatched');
  });
});
