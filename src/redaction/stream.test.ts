import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Redactor } from './redactor.js';
import { StreamRedactor } from './stream.js';

const secrets = ['proxy-key-Zx81!qq', 'team-key', 'team-key-extended-version', 'a"b\\c-secret'];
const redactor = new Redactor(secrets);

/** Secrets of every kind the redactor knows, as they appear in streamed text. */
const secretTexts = [
  ...secrets,
  JSON.stringify(secrets[3]).slice(1, -1),
  'sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z',
  'sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe',
  'sk-or-v1-0123456789abcdef0123456789abcdef',
  'sk-T3BlbkFJabcdefghijklmnopqrstuvwxyz012345',
  'AIzaSyD-1234567890abcdefghijklmnopqrstu',
  'Bearer eyJhbGciOiJIUzI1NiJ9.payload-Sig',
  'Bearer proxy-key-Zx81!qq',
  '?key=VerySecretQueryValue',
  '"authorization": "Basic dXNlcjpwYXNzd29yZA=="',
];
/** The part of each that must never appear in the output. */
const mustVanish = (text: string): string => text.replace(/^(Bearer |\?key=|"authorization": "Basic )/, '');

const filler = fc.constantFrom(
  ' ',
  'data: {"choices":[{"delta":{"content":"',
  '"}}]}\n\n',
  'task-list ',
  'risk-free ',
  'the bearer of bad news ',
  'sk ',
  'x',
  'AIza',
  'Bearer ',
  'team-ke',
  '\\',
  '"',
);

/** Random text mixing secrets and filler, and random cut points into it. */
const textWithCuts = fc
  .array(fc.oneof(filler, fc.constantFrom(...secretTexts), fc.string({ maxLength: 12 })), { maxLength: 40 })
  .map((parts) => parts.join(''))
  .chain((text) =>
    fc.tuple(
      fc.constant(text),
      fc
        .uniqueArray(fc.integer({ min: 0, max: text.length }), { maxLength: 12 })
        .map((cuts) => cuts.sort((a, b) => a - b)),
    ),
  );

function streamThrough(stream: StreamRedactor, text: string, cuts: number[]): string {
  let out = '';
  let previous = 0;
  for (const cut of [...cuts, text.length]) {
    out += stream.push(text.slice(previous, cut));
    previous = cut;
  }
  return out + stream.flush();
}

describe('StreamRedactor', () => {
  it('produces exactly redact(whole text) for any chunking', () => {
    fc.assert(
      fc.property(textWithCuts, ([text, cuts]) => {
        expect(streamThrough(new StreamRedactor(redactor), text, cuts)).toBe(redactor.redact(text));
      }),
      { numRuns: 500 },
    );
  });

  it('never lets a secret through when it is split character by character', () => {
    for (const secret of secretTexts) {
      const text = `data: prefix ${secret} suffix\n`;
      const cuts = Array.from({ length: text.length }, (_, i) => i);
      const out = streamThrough(new StreamRedactor(redactor), text, cuts);
      expect(out).not.toContain(mustVanish(secret));
      expect(out).toBe(redactor.redact(text));
    }
  });

  it('releases text as it comes, holding back only a bounded tail', () => {
    const stream = new StreamRedactor(redactor);
    const chunk = 'plain words without anything secret. '.repeat(20);
    const released = stream.push(chunk);
    expect(released.length).toBeGreaterThanOrEqual(chunk.length - redactor.holdback);
    expect(released + stream.flush()).toBe(chunk);
  });

  it('holds a key that may still grow, then masks it whole', () => {
    const stream = new StreamRedactor(redactor);
    const first = stream.push('key: ' + 'x'.repeat(200) + ' sk-abcdefghijklmnopqrstuvwxyz');
    expect(first).not.toContain('sk-abc');
    const rest = stream.push('MORE_OF_THE_KEY and then text') + stream.flush();
    expect(first + rest).toBe('key: ' + 'x'.repeat(200) + ' sk-**** and then text');
  });

  it('releases an overlong match early as its mask and drops the rest of its run', () => {
    const stream = new StreamRedactor(redactor, 64);
    const key = 'sk-' + 'A'.repeat(500);
    const text = `start ${key} end`;
    const cuts = [10, 100, 300, 400, 506];
    expect(streamThrough(stream, text, cuts)).toBe('start sk-**** end');
  });

  it('can be reused after flush', () => {
    const stream = new StreamRedactor(redactor);
    expect(stream.push('risk-') + stream.flush()).toBe('risk-');
    expect(stream.push('sk-abcdefghijklmnop') + stream.push('qrst') + stream.flush()).toBe('sk-****');
  });
});
