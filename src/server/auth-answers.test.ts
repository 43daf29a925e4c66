import { describe, expect, it } from 'vitest';
import type { AuthRefusal } from '../auth/gate.js';
import { refusalText, renderRefusal } from './auth-answers.js';

const PATHS = [
  '/v1/chat/completions',
  '/v1/responses',
  '/anthropic/v1/messages',
  '/v1beta/models/gemini-2.0-flash:generateContent',
];
const REFUSALS: AuthRefusal[] = [
  { status: 401, kind: 'missing' },
  { status: 401, kind: 'malformed' },
  { status: 401, kind: 'invalid' },
  { status: 401, kind: 'expired' },
  { status: 429, retryAfterSeconds: 30 },
  { status: 429, retryAfterSeconds: 7 },
];

describe('refusalText', () => {
  const cases = PATHS.flatMap((path) => REFUSALS.map((refusal) => [path, refusal] as const));

  it.each(cases)('%s %j: the rendered refusal, serialised', (path, refusal) => {
    const rendered = renderRefusal(refusal, path);
    const text = refusalText(refusal, path);
    expect(text.status).toBe(rendered.status);
    expect(text.headers).toEqual(rendered.headers);
    expect(JSON.parse(text.text)).toEqual(rendered.body);
  });

  it('is made once per protocol and kind, and per Retry-After value', () => {
    const invalid = refusalText({ status: 401, kind: 'invalid' }, '/v1/chat/completions');
    expect(refusalText({ status: 401, kind: 'invalid' }, '/v1/chat/completions?x=1')).toBe(invalid);
    expect(refusalText({ status: 401, kind: 'missing' }, '/v1/chat/completions')).not.toBe(invalid);
    expect(refusalText({ status: 401, kind: 'invalid' }, '/anthropic/v1/messages')).not.toBe(invalid);
    const blocked = refusalText({ status: 429, retryAfterSeconds: 30 }, '/v1/chat/completions');
    expect(refusalText({ status: 429, retryAfterSeconds: 30 }, '/v1/chat/completions')).toBe(blocked);
    const other = refusalText({ status: 429, retryAfterSeconds: 29 }, '/v1/chat/completions');
    expect(other.headers).toEqual({ 'retry-after': '29' });
    expect(JSON.parse(other.text).error.retry_after).toBe(29);
  });

  it('cannot be changed by a writer: the answer and its headers are frozen', () => {
    const text = refusalText({ status: 401, kind: 'invalid' }, '/v1/chat/completions');
    expect(Object.isFrozen(text)).toBe(true);
    expect(Object.isFrozen(text.headers)).toBe(true);
  });

  it('stays bounded across many Retry-After values, and still right after starting over', () => {
    for (let seconds = 1; seconds <= 3600; seconds++) {
      const text = refusalText({ status: 429, retryAfterSeconds: seconds }, '/v1/responses');
      expect(text.headers['retry-after']).toBe(String(seconds));
    }
    const again = refusalText({ status: 429, retryAfterSeconds: 5 }, '/v1/responses');
    expect(JSON.parse(again.text)).toEqual(
      renderRefusal({ status: 429, retryAfterSeconds: 5 }, '/v1/responses').body,
    );
  });
});
