import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteNeedle } from '../protocols/byte-needle.js';
import { parseCommands } from '../sessions/commands.js';
import { jsonForms, mayStartString } from './session.js';

const PREFIX = Buffer.from('!/');

/**
 * A user message as a client's JSON body, written by JSON.stringify or by an encoder that escapes more: non-
 * ASCII as `\u` escapes, and `/` as `\/` (PHP's json_encode does both).
 */
function body(text: string, asciiOnly = false, slashes = false): Buffer {
  let json = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: text }] });
  if (asciiOnly)
    json = json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (slashes) json = json.replaceAll('/', '\\/');
  return Buffer.from(json);
}

/** What the session step asks of a body: any spelling of the prefix at the start of a string. */
const FORMS = jsonForms('!/').map((form) => Buffer.from(form));
const NEEDLES = jsonForms('!/').map((form) => new ByteNeedle(form));
/** Searched as bytes and as needles (what the step uses), which must agree. */
const wakes = (bytes: Buffer) => {
  const byBytes = FORMS.some((form) => mayStartString(bytes, form));
  expect(NEEDLES.some((form) => mayStartString(bytes, form))).toBe(byBytes);
  return byBytes;
};

describe('mayStartString (the session step’s look at the body’s bytes)', () => {
  it('finds a command message, after any white space', () => {
    expect(mayStartString(body('!/help'), PREFIX)).toBe(true);
    expect(mayStartString(body(' \n\t\r\f!/set(temperature=0)'), PREFIX)).toBe(true);
    expect(mayStartString(body('\u00a0\u2028\ufeff!/session'), PREFIX)).toBe(true);
    expect(mayStartString(body('\u00a0\u2028\ufeff!/session', true), PREFIX)).toBe(true);
  });

  it('passes over the prefix inside a text: source code, quotes, escapes', () => {
    expect(mayStartString(body('if (!/^\\d+$/.test(s)) return;'), PREFIX)).toBe(false);
    expect(mayStartString(body('type "!/help" to see the commands'), PREFIX)).toBe(false);
    expect(mayStartString(body('a backslash \\!/help'), PREFIX)).toBe(false);
    expect(mayStartString(body('\\n!/help'), PREFIX)).toBe(false);
    expect(mayStartString(body('no prefix at all'), PREFIX)).toBe(false);
  });

  it('never misses a message that parseCommands reads as commands', () => {
    const unit = fc.constantFrom(
      ' ',
      '\n',
      '\t',
      '\u000b',
      '\u00a0',
      '\u2028',
      '\ufeff',
      'a',
      '"',
      '\\',
      '!/',
      '!',
      '/',
      'n',
      'u00',
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit, maxLength: 12 }),
          // Always a command: white space, the prefix, anything.
          fc
            .tuple(
              fc.string({ unit: fc.constantFrom(' ', '\n', '\u00a0', '\u3000'), maxLength: 3 }),
              fc.string({ unit }),
            )
            .map(([space, rest]) => `${space}!/${rest}`),
        ),
        fc.boolean(),
        fc.boolean(),
        (text, asciiOnly, slashes) => {
          if (parseCommands(text, '!/', (t) => t) !== undefined)
            expect(wakes(body(text, asciiOnly, slashes))).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('finds the prefix with its slash written `\\/` (valid JSON for `/`), and only at a string start', () => {
    expect(jsonForms('!/')).toEqual(['!/', '!\\/']);
    expect(jsonForms('#')).toEqual(['#']);
    expect(jsonForms('/a/')).toEqual(['/a/', '/a\\/', '\\/a/', '\\/a\\/']);
    const escaped = Buffer.from('{"messages":[{"role":"user","content":"!\\/help"}]}');
    expect(JSON.parse(escaped.toString()).messages[0].content).toBe('!/help');
    expect(mayStartString(escaped, PREFIX)).toBe(false);
    expect(wakes(escaped)).toBe(true);
    expect(wakes(body('if (!/x/.test(s)) return;', false, true))).toBe(false);
  });

  it('finds a prefix that JSON escapes, as the session step searches it', () => {
    const prefix = '"\\';
    const escaped = Buffer.from(JSON.stringify(prefix).slice(1, -1));
    expect(mayStartString(body(`${prefix}help`), escaped)).toBe(true);
    expect(mayStartString(body(`say ${prefix}help`), escaped)).toBe(false);
  });
});
