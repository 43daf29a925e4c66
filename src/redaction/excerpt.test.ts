import { describe, expect, it } from 'vitest';
import { redactedExcerpt } from './excerpt.js';
import { Redactor } from './redactor.js';

describe('redactedExcerpt', () => {
  const secret = 'opaque-secret-key-0123456789abcdefghij';
  const redactor = new Redactor([secret]);
  const redact = (text: string) => redactor.redact(text);

  it('redacts the whole text, then cuts it: a secret across the cut leaves nothing of itself', () => {
    const text = `${'a'.repeat(250)}${secret}`;
    expect(redactedExcerpt(text, 256, redact)).toBe(`${'a'.repeat(250)}****`);
    expect(redactedExcerpt(text, 252, redact)).toBe(`${'a'.repeat(250)}**…`);
  });

  it('marks a cut, and leaves short text whole', () => {
    expect(redactedExcerpt('x'.repeat(10), 4, redact)).toBe('xxxx…');
    expect(redactedExcerpt('short', 40, redact)).toBe('short');
  });
});
