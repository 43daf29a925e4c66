import { describe, expect, it } from 'vitest';
import { ModelAllowList, type ModelRequest } from './model-allow-list.js';

const ask = (backend: string, model: string, requested = `${backend}:${model}`): ModelRequest => ({
  requested,
  backend,
  model,
});

describe('ModelAllowList', () => {
  it('matches backend:model globs on the backend and the model it is sent', () => {
    const list = new ModelAllowList([['anthropic:*', 'openai:gpt-4o*']]);
    expect(list.allows(ask('anthropic', 'claude-sonnet-4-5'))).toBe(true);
    expect(list.allows(ask('openai', 'gpt-4o-mini'))).toBe(true);
    expect(list.allows(ask('openai', 'gpt-5'))).toBe(false);
    expect(list.allows(ask('openrouter', 'anthropic/claude-3'))).toBe(false);
  });

  it('matches a bare name or glob on any backend, the whole name only', () => {
    const list = new ModelAllowList([['gpt-4o', 'claude-*']]);
    expect(list.allows(ask('openai', 'gpt-4o', 'gpt-4o'))).toBe(true);
    expect(list.allows(ask('openrouter', 'gpt-4o'))).toBe(true);
    expect(list.allows(ask('openai', 'gpt-4o-mini'))).toBe(false);
    expect(list.allows(ask('anthropic', 'claude-3-haiku'))).toBe(true);
    expect(list.allows(ask('openai', 'xclaude-3'))).toBe(false);
  });

  it('lets `*` span slashes and colons, and treats other characters literally', () => {
    expect(new ModelAllowList([['openrouter:*']]).allows(ask('openrouter', 'meta/llama:free'))).toBe(true);
    expect(new ModelAllowList([['*']]).allows(ask('mock', 'anything'))).toBe(true);
    const dotted = new ModelAllowList([['gpt-4.1']]);
    expect(dotted.allows(ask('openai', 'gpt-4.1'))).toBe(true);
    expect(dotted.allows(ask('openai', 'gpt-4x1'))).toBe(false);
    expect(new ModelAllowList([['a+(b)']]).allows(ask('x', 'a+(b)'))).toBe(true);
  });

  it('needs every list to allow the model: the key and each of its labels', () => {
    const list = new ModelAllowList([['anthropic:*', 'openai:*'], ['*:claude-*']]);
    expect(list.allows(ask('anthropic', 'claude-opus-4'))).toBe(true);
    expect(list.allows(ask('openai', 'gpt-4o'))).toBe(false);
    expect(new ModelAllowList([]).allows(ask('openai', 'gpt-4o'))).toBe(true);
  });
});
