import { describe, expect, it } from 'vitest';
import { confirmation, settingsReply } from './replies.js';

const chainOf = (name: string) => (name === 'coder' ? ['openai:gpt-4o', 'anthropic:claude'] : undefined);

describe('replies', () => {
  it('show a route with the chain it tries, any other model as its name', () => {
    expect(confirmation({ name: 'route', route: 'coder' }, '!/', { model: 'coder' }, chainOf)).toBe(
      'This session now uses route coder (route: tries openai:gpt-4o, then anthropic:claude).',
    );
    expect(settingsReply({ model: 'coder', oneoff: 'gemini:flash' }, chainOf)).toBe(
      "This session's settings:\n" +
        '  model: coder (route: tries openai:gpt-4o, then anthropic:claude)\n' +
        '  next request only: gemini:flash',
    );
    expect(settingsReply({ model: 'openai:gpt-4o' })).toBe(
      "This session's settings:\n  model: openai:gpt-4o",
    );
    expect(settingsReply({})).toBe("This session has no settings: the client's own choices apply.");
  });
});
