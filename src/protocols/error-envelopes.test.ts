import { describe, expect, it } from 'vitest';
import { errorEnvelope, geminiErrorStatus } from './error-envelopes.js';

describe('error envelopes', () => {
  it("give Gemini clients the status their SDK retries for an overloaded backend (Anthropic's 529)", () => {
    expect(geminiErrorStatus(529)).toBe('UNAVAILABLE');
    expect(geminiErrorStatus(503)).toBe('UNAVAILABLE');
    expect(geminiErrorStatus(500)).toBe('INTERNAL');
    expect(geminiErrorStatus(599)).toBe('INTERNAL');
    expect(errorEnvelope('gemini', { status: 529, message: 'Overloaded', code: 'overloaded_error' })).toEqual(
      {
        error: { code: 529, message: 'Overloaded', status: 'UNAVAILABLE' },
      },
    );
  });
});
