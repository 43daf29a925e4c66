import type { IncomingHttpHeaders } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { extractCredential } from './credentials.js';
import { KeySet } from './keys.js';

describe('extractCredential', () => {
  it.each<[string, IncomingHttpHeaders, string, ReturnType<typeof extractCredential>]>([
    ['nothing', {}, '', null],
    ['Bearer token', { authorization: 'Bearer k1' }, '', { source: 'authorization', value: 'k1' }],
    ['lower-case scheme', { authorization: 'bearer k1' }, '', { source: 'authorization', value: 'k1' }],
    ['upper-case scheme', { authorization: 'BEARER k1' }, '', { source: 'authorization', value: 'k1' }],
    [
      'extra spaces and a tab',
      { authorization: '  Bearer \t k1  ' },
      '',
      { source: 'authorization', value: 'k1' },
    ],
    ['Basic scheme', { authorization: 'Basic dXNlcjpwYXNz' }, '', { source: 'authorization', value: null }],
    ['scheme without token', { authorization: 'Bearer' }, '', { source: 'authorization', value: null }],
    ['scheme and blanks only', { authorization: 'Bearer   ' }, '', { source: 'authorization', value: null }],
    ['bare token', { authorization: 'k1' }, '', { source: 'authorization', value: null }],
    ['empty Authorization', { authorization: '' }, '', { source: 'authorization', value: null }],
    ['Bearerish scheme', { authorization: 'Bearerx k1' }, '', { source: 'authorization', value: null }],
    ['x-api-key', { 'x-api-key': 'k2' }, '', { source: 'x-api-key', value: 'k2' }],
    ['x-goog-api-key', { 'x-goog-api-key': 'k3' }, '', { source: 'x-goog-api-key', value: 'k3' }],
    ['empty x-api-key', { 'x-api-key': '' }, '', { source: 'x-api-key', value: null }],
    ['repeated x-api-key', { 'x-api-key': ['a', 'b'] }, '', { source: 'x-api-key', value: null }],
    ['query key', {}, 'alt=sse&key=k4', { source: 'query', value: 'k4' }],
    ['query api_key', {}, 'api_key=k5', { source: 'query', value: 'k5' }],
    ['percent-encoded query key', {}, 'key=a%2Fb', { source: 'query', value: 'a/b' }],
    ['empty query key', {}, 'key=', { source: 'query', value: null }],
    ['repeated query key', {}, 'key=a&key=b', { source: 'query', value: null }],
    ['unrelated query', {}, 'monkey=1&keys=2', null],
    ['key-like parameter names only', {}, 'xkey=1&key_id=2', null],
  ])('%s', (_label, headers, query, expected) => {
    expect(extractCredential(headers, query)).toEqual(expected);
  });

  it('takes the first present source in the order README, Authentication gives', () => {
    const all = { authorization: 'Bearer a', 'x-api-key': 'b', 'x-goog-api-key': 'c' };
    expect(extractCredential(all, 'key=d')?.value).toBe('a');
    expect(extractCredential({ 'x-api-key': 'b', 'x-goog-api-key': 'c' }, 'key=d')?.value).toBe('b');
    expect(extractCredential({ 'x-goog-api-key': 'c' }, 'key=d')?.value).toBe('c');
    expect(extractCredential({}, 'api_key=e&key=d')?.value).toBe('d');
  });

  describe('a credential header sent more than once (seen only in rawHeaders) is malformed', () => {
    it.each<[string, IncomingHttpHeaders, string[], ReturnType<typeof extractCredential>]>([
      [
        'two Authorization (Node keeps the first)',
        { authorization: 'Bearer k1' },
        ['Authorization', 'Bearer k1', 'authorization', 'Bearer k2'],
        { source: 'authorization', value: null },
      ],
      [
        'the same Authorization twice',
        { authorization: 'Bearer k1' },
        ['AUTHORIZATION', 'Bearer k1', 'Authorization', 'Bearer k1'],
        { source: 'authorization', value: null },
      ],
      [
        'two x-api-key (Node joins them)',
        { 'x-api-key': 'k1, k2' },
        ['x-api-key', 'k1', 'X-Api-Key', 'k2'],
        { source: 'x-api-key', value: null },
      ],
      [
        'two x-goog-api-key, one empty',
        { 'x-goog-api-key': 'k1, ' },
        ['x-goog-api-key', 'k1', 'X-Goog-Api-Key', ''],
        { source: 'x-goog-api-key', value: null },
      ],
      [
        'a good Authorization beside two x-api-key',
        { authorization: 'Bearer k1', 'x-api-key': 'a, b' },
        ['authorization', 'Bearer k1', 'x-api-key', 'a', 'x-api-key', 'b'],
        { source: 'x-api-key', value: null },
      ],
      [
        'one of each source (not a repeat)',
        { authorization: 'Bearer k1', 'x-api-key': 'k2', 'x-goog-api-key': 'k3' },
        ['Authorization', 'Bearer k1', 'X-API-KEY', 'k2', 'x-goog-api-key', 'k3'],
        { source: 'authorization', value: 'k1' },
      ],
      [
        'look-alike names of the same lengths',
        { authorization: 'Bearer k1' },
        [
          'authorization',
          'Bearer k1',
          'authorizatiox',
          'v',
          'x-api-kex',
          'v',
          'content-length',
          '0',
          'proxy-authorization',
          'Bearer p',
        ],
        { source: 'authorization', value: 'k1' },
      ],
    ])('%s', (_label, headers, rawHeaders, expected) => {
      expect(extractCredential(headers, '', rawHeaders)).toEqual(expected);
    });

    it('does not read rawHeaders when no credential header is present', () => {
      const rawHeaders = new Proxy(['x', 'y'], {
        get: () => {
          throw new Error('read');
        },
      });
      expect(extractCredential({}, 'key=k4', rawHeaders)).toEqual({ source: 'query', value: 'k4' });
    });
  });

  it('does not fall through to a later source when an earlier one is malformed', () => {
    expect(extractCredential({ authorization: 'Basic x', 'x-api-key': 'good' }, '')).toEqual({
      source: 'authorization',
      value: null,
    });
  });

  const headerValue = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  );
  const headers = fc.dictionary(
    fc.constantFrom('authorization', 'x-api-key', 'x-goog-api-key', 'content-type', 'cookie'),
    headerValue,
  ) as fc.Arbitrary<IncomingHttpHeaders>;

  it('never throws and never yields a value that was not sent (property)', () => {
    fc.assert(
      fc.property(headers, fc.string({ unit: 'binary', maxLength: 60 }), (hs, query) => {
        const credential = extractCredential(hs, query);
        if (credential === null || credential.value === null) return;
        expect(credential.value).not.toBe('');
        if (credential.source !== 'query') expect(String(hs[credential.source])).toContain(credential.value);
      }),
    );
  });

  it('never authenticates arbitrary input against a key that was not sent (property)', () => {
    const keys = new KeySet([{ name: 'only', key: 'the-one-real-key-0123456789' }]);
    fc.assert(
      fc.property(headers, fc.string({ maxLength: 60 }), (hs, query) => {
        const credential = extractCredential(hs, query);
        const name = credential?.value ? keys.verify(credential.value) : null;
        expect(name).toBeNull();
      }),
    );
  });
});
