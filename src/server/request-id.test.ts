import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { requestIdFor } from './request-id.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const sent = (value: string | string[] | undefined): IncomingMessage =>
  ({ headers: value === undefined ? {} : { 'x-request-id': value } }) as unknown as IncomingMessage;

describe('requestIdFor', () => {
  it.each([
    ['a word', 'my-trace-123'],
    ['one character', 'a'],
    ['every allowed character', 'AZaz09._:-'],
    ['a UUID', '0b7c6a1e-7f0e-4c5b-9d8e-2a1b3c4d5e6f'],
    ['128 characters, the longest kept', 'x'.repeat(128)],
  ])('keeps a client id of %s', (_what, id) => {
    expect(requestIdFor(sent(id))).toBe(id);
  });

  it.each([
    ['no header', undefined],
    ['an empty value', ''],
    ['129 characters', 'x'.repeat(129)],
    ['a space', 'my trace'],
    ['a tab', 'my\ttrace'],
    ['a line break', 'my\r\ntrace: forged'],
    ['a NUL byte', 'my\u0000trace'],
    ['DEL', 'my\u007ftrace'],
    ['an ANSI escape', '\u001b[31mred'],
    ['Latin-1', 'tracé'],
    ['non-Latin-1 Unicode', 'трасса-日本'],
    ['an emoji', 'trace-👋'],
    ['a slash', 'a/b'],
    ['a comma (two headers joined)', 'a, b'],
    ['quotes and angle brackets', '"<script>"'],
    ['JSON punctuation', '{"id":1}'],
    ['a percent escape', 'a%0Ab'],
    ['two headers', ['one', 'two']],
  ])('replaces a client id with %s by a fresh UUID', (_what, id) => {
    const first = requestIdFor(sent(id));
    expect(first).toMatch(UUID);
    expect(requestIdFor(sent(id))).not.toBe(first);
  });
});
