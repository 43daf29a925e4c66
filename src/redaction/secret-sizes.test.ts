import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PROMPT_SECRET_REPLACEMENT } from './patterns.js';
import { Redactor } from './redactor.js';
import { StreamRedactor } from './stream.js';

/** A base64 key of `length` characters: `+`, `/` and `=` give it distinct JSON and URL forms. */
const longKey = (length: number): string =>
  randomBytes(Math.ceil((length * 3) / 4) + 3)
    .toString('base64')
    .slice(0, length - 1) + '/';

function streamThrough(stream: StreamRedactor, text: string, chunk: number): string {
  let out = '';
  for (let i = 0; i < text.length; i += chunk) out += stream.push(text.slice(i, i + chunk));
  return out + stream.flush();
}

describe('Redactor: secrets of any length', () => {
  it.each([33 * 1024, 40 * 1024, 100 * 1024])('builds and redacts a %i-character secret', (length) => {
    const secret = longKey(length);
    const redactor = new Redactor([secret, 'other-secret-0123']);
    const line = JSON.stringify({ msg: `key ${secret} and other-secret-0123`, url: `/x?token=${secret}` });
    expect(JSON.parse(redactor.redact(line))).toEqual({ msg: 'key **** and ****', url: '/x?token=****' });
    expect(redactor.redact(`/p/${encodeURIComponent(secret)}/q`)).toBe('/p/****/q');
    expect(redactor.redact(`Authorization: Bearer ${secret}.`)).toBe('Authorization: Bearer ****.');
    expect(redactor.redactPromptSecrets({ content: `k=${secret}` }).body).toEqual({
      content: `k=${PROMPT_SECRET_REPLACEMENT}`,
    });
  });

  it('builds with hundreds of 1 KiB secrets and finds each', () => {
    const secrets = Array.from({ length: 300 }, () => longKey(1024));
    const redactor = new Redactor(secrets);
    const text = secrets.map((s, i) => `${i}:${s}`).join(' ');
    const out = redactor.redact(text);
    expect(out).toBe(secrets.map((_, i) => `${i}:****`).join(' '));
  });

  it('redacts a 40 KB secret split across stream chunks of any size', () => {
    const secret = longKey(40 * 1024);
    const redactor = new Redactor([secret]);
    expect(redactor.holdback).toBeGreaterThan(secret.length);
    const text = `data: {"a":"${secret}"}\n\ndata: ${JSON.stringify(secret)}\n\n`;
    for (const chunk of [1000, 4096, 39_999, 65_536]) {
      const out = streamThrough(new StreamRedactor(redactor), text, chunk);
      expect(out).toBe(redactor.redact(text));
      expect(out).toBe('data: {"a":"****"}\n\ndata: "****"\n\n');
    }
  });

  it('covers a configured secret after Bearer whole, also when it starts like a bearer token', () => {
    // 8+ token characters, then characters a bearer token may not hold: the bearer rule alone stops there.
    const secret = 'abcdefghij!k@l#m';
    const redactor = new Redactor([secret, 'team-key']);
    expect(redactor.redact(`Bearer ${secret} rest`)).toBe('Bearer **** rest');
    expect(redactor.redact(`x bearer\t${secret}`)).toBe('x bearer ****');
    expect(redactor.redact(`xBearer ${secret}`)).toBe('xBearer ****');
    // The secret first, as when it was the first alternative of the bearer rule.
    expect(redactor.redact('Bearer team-key-and-more')).toBe('Bearer ****-and-more');
  });
});

describe('Redactor: short configured secrets (1–3 characters) as whole values', () => {
  const redactor = new Redactor(['a', 'Q7', 'xyz', ':', '","', '{', 'a b']);

  it('masks a JSON string value equal to one, never inside other text or an object key', () => {
    const line = JSON.stringify({
      a: 'a',
      msg: 'a cat',
      list: ['a', 'Q7', 'xyz', 'xyzzy'],
      nested: '{"k":"xyz"}',
    });
    const out = redactor.redact(line);
    expect(JSON.parse(out)).toEqual({
      a: '****',
      msg: 'a cat',
      list: ['****', '****', '****', 'xyzzy'],
      nested: '{"k":"****"}',
    });
    expect(redactor.redact('{"a" : 1, "xyz":2}')).toBe('{"a" : 1, "xyz":2}');
    expect(redactor.redact('a plain xyz text with Q7')).toBe('a plain xyz text with Q7');
  });

  it('masks the whole token after Bearer, not the start of a longer one', () => {
    expect(redactor.redact('Authorization: Bearer xyz')).toBe('Authorization: Bearer ****');
    expect(redactor.redact('"Bearer Q7"')).toBe('"Bearer ****"');
    expect(redactor.redact('the bearer abstract')).toBe('the bearer abstract');
  });

  it('masks a whole string in values, headers and prompts', () => {
    expect(redactor.redactValue({ k: 'xyz', l: ['a', 'ab', ':'], m: 'xyz!' })).toEqual({
      k: '****',
      l: ['****', 'ab', '****'],
      m: 'xyz!',
    });
    expect(redactor.redactHeaders({ 'x-one': 'Q7', 'x-two': 'Q7 Q7' })).toEqual({
      'x-one': '****',
      'x-two': 'Q7 Q7',
    });
    const body = { messages: [{ content: 'xyz' }, { content: 'xyz and a' }] };
    const raw = JSON.stringify(body);
    expect(redactor.redactPromptSecrets(body, raw)).toEqual({
      body: { messages: [{ content: PROMPT_SECRET_REPLACEMENT }, { content: 'xyz and a' }] },
      changed: true,
    });
    const clean = { messages: [{ content: 'nothing here' }] };
    expect(redactor.redactPromptSecrets(clean, JSON.stringify(clean))).toEqual({
      body: clean,
      changed: false,
    });
  });

  it('never changes the structure of a JSON text, whatever the short secrets', () => {
    const char = fc.constantFrom('a', 'b', '"', '\\', ',', ':', '[', ']', '{', '}', ' ', '\n', 'é');
    const short = fc.string({ unit: char, minLength: 1, maxLength: 3 });
    const json = fc.jsonValue({ maxDepth: 3 }).map((value) => ({ value }));
    fc.assert(
      fc.property(
        fc.array(short, { minLength: 1, maxLength: 4 }),
        json,
        fc.array(short),
        (secrets, doc, extra) => {
          const withSecrets = { ...doc, extra, [secrets[0]!]: secrets };
          const text = JSON.stringify(withSecrets);
          const parsed = JSON.parse(new Redactor(secrets).redact(text)) as Record<string, unknown>;
          // The structure stays: the same keys in the same order. A key's own text may be masked where it
          // holds a short secret as a nested JSON string (`"\"a\""` holds `\"a\"`), as any string may.
          const keys = Object.keys(parsed);
          expect(keys.slice(0, 2)).toEqual(['value', 'extra']);
          expect(keys).toHaveLength(Object.keys(withSecrets).length);
          expect((parsed['extra'] as unknown[]).length).toBe(extra.length);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('gives a stream exactly redact(whole text) for any chunking', () => {
    const piece = fc.constantFrom('"a"', '"xyz"', '\\"Q7\\"', 'Bearer ', 'xyz', '"', ':', ' ', 'a', '\\');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), fc.integer({ min: 1, max: 7 }), (parts, chunk) => {
        const text = parts.join('');
        expect(streamThrough(new StreamRedactor(redactor), text, chunk)).toBe(redactor.redact(text));
      }),
      { numRuns: 500 },
    );
  });
});
