import { describe, expect, it } from 'vitest';
import { isJsonObject } from './relay.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');

describe('isJsonObject (the check on a whole answer passed on as is)', () => {
  it.each(['{}', '{"id":"chatcmpl-1","choices":[]}', ' \r\n\t{"a":1}\n', '{"text":"ünïcödé ✓"}'])(
    'takes %j',
    (text) => {
      expect(isJsonObject(bytes(text))).toBe(true);
    },
  );

  it.each([
    '',
    '   ',
    '{',
    '}',
    '[1,2]',
    '"text"',
    'null',
    '<html><body>Not Found</body></html>',
    '{"choices": [ this is not json',
    'OK',
  ])('refuses %j', (text) => {
    expect(isJsonObject(bytes(text))).toBe(false);
  });
});
