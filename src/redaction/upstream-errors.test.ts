import { describe, expect, it } from 'vitest';
import { Redactor } from './redactor.js';
import { ErrorEventGuard, guardErrorEvents, redactDecodedJson, redactErrorText } from './upstream-errors.js';

const PROVIDER = 'sk-proj-UpstreamErrorKey0123456789abcdef';
const OPAQUE = 'opaque-configured-secret-42';
const redactor = new Redactor([PROVIDER, OPAQUE]);

/** Every character as a JSON `\uXXXX` escape: what no text redactor recognises. */
const escapeAll = (text: string) =>
  [...text].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
const escapeDashes = (text: string) => text.replaceAll('-', '\\u002d');

/** Every string in a JSON text, decoded, keys included. */
function decodedStrings(json: string): string {
  const out: string[] = [];
  JSON.parse(json, (key, value: unknown) => {
    out.push(key);
    if (typeof value === 'string') out.push(value);
    return value;
  });
  return out.join('\n');
}

describe('redactErrorText', () => {
  it('redacts keys however JSON escapes their characters, in values and in keys', () => {
    const body =
      `{"error":{"message":"Incorrect API key provided: ${escapeDashes(PROVIDER)}",` +
      `"param":"${escapeAll(OPAQUE)}","${escapeAll(PROVIDER)}":1,"code":"invalid_api_key"}}`;
    const safe = redactErrorText(redactor, body);
    const decoded = decodedStrings(safe);
    expect(decoded).not.toContain(PROVIDER);
    expect(decoded).not.toContain(OPAQUE);
    expect(JSON.parse(safe)).toEqual({
      error: {
        message: 'Incorrect API key provided: sk-proj-****',
        param: '****',
        'sk-proj-****': 1,
        code: 'invalid_api_key',
      },
    });
  });

  it('keeps a body with nothing to redact as it was, and redacts text that is not JSON', () => {
    const body = '{ "error": { "message": "overloaded" } }';
    expect(redactErrorText(redactor, body)).toBe(body);
    expect(redactErrorText(redactor, `<html>bad key ${PROVIDER}</html>`)).toBe(
      '<html>bad key sk-proj-****</html>',
    );
  });

  it('replaces a subtree nested deeper than any error envelope instead of walking it', () => {
    const deep = `${'['.repeat(10_000)}"${escapeAll(OPAQUE)}"${']'.repeat(10_000)}`;
    const safe = redactErrorText(redactor, deep);
    expect(safe).not.toContain(OPAQUE);
    expect(decodedStrings(safe)).toContain('[nested too deeply]');
  });

  it('returns the same reference when nothing matched (copy-on-write)', () => {
    const value = { error: { message: 'fine', list: ['a', { b: 'c' }] } };
    expect(redactDecodedJson(redactor, value)).toBe(value);
  });
});

describe('ErrorEventGuard', () => {
  const content = 'data: {"choices":[{"delta":{"content":"the error was \\"error\\""}}]}\n\n';
  const errorEvent = `data: {"error":{"message":"key ${escapeDashes(PROVIDER)} refused"}}\n\n`;

  it('passes chunks without an error event through untouched, the same object', () => {
    const guard = new ErrorEventGuard(redactor);
    const chunk = Buffer.from(content + `data: {"text":"${PROVIDER}"}\n\n`);
    expect(guard.see(chunk)).toBe(chunk);
    expect(guard.end()).toBe('');
  });

  it('redacts an error event after decoding, also when a chunk boundary cuts the marker or the key', () => {
    const whole = content + `event: error\n${errorEvent}`;
    const expected = `${content}event: error\ndata: {"error":{"message":"key sk-proj-**** refused"}}\n\n`;
    for (const asText of [false, true]) {
      for (let cut = 1; cut < whole.length; cut += 3) {
        for (const cut2 of [cut + 3, cut + 40]) {
          const guard = new ErrorEventGuard(redactor);
          let out = '';
          for (const piece of [whole.slice(0, cut), whole.slice(cut, cut2), whole.slice(cut2)]) {
            const passed = guard.see(asText ? piece : Buffer.from(piece));
            out += typeof passed === 'string' ? passed : Buffer.from(passed).toString('utf8');
          }
          expect(out + guard.end(), `cut at ${cut}/${cut2}`).toBe(expected);
        }
      }
    }
  });

  it('takes a chunk said to be free of the marker as it is, but finishes a marker held back before it', () => {
    const guard = new ErrorEventGuard(redactor);
    const chunk = Buffer.from(content);
    expect(guard.see(chunk, true)).toBe(chunk);
    // The event check only says so of whole events; the guard still searches what a held start joins.
    const held = new ErrorEventGuard(redactor);
    let out = '';
    for (const [piece, free] of [
      [`${content}data: {"err`, false],
      [errorEvent.slice('data: {"err'.length), true],
    ] as const) {
      const passed = held.see(Buffer.from(piece), free);
      out += typeof passed === 'string' ? passed : Buffer.from(passed).toString('utf8');
    }
    expect(out + held.end()).toBe(`${content}data: {"error":{"message":"key sk-proj-**** refused"}}\n\n`);
  });

  it('finds the marker in text by its tail: words that end like it pass, a marker opening a chunk is found', () => {
    const guard = new ErrorEventGuard(redactor);
    const near = `data: {"terror":"mirror\\"","Error":"rror","x":"${PROVIDER}"}\n\n`;
    expect(guard.see(near)).toBe(near);
    const opening = new ErrorEventGuard(redactor);
    expect(opening.see(`"error":{"message":"${PROVIDER}"}}\n\n`)).toBe(
      '"error":{"message":"sk-proj-****"}}\n\n',
    );
  });

  it('takes "error": null for no error: a Responses stream passes untouched, a real error after it is redacted', () => {
    const created = `event: response.created\ndata: {"type":"response.created","response":{"id":"r","error" : null,"text":"${PROVIDER}"}}\n\n`;
    const guard = new ErrorEventGuard(redactor);
    const first = Buffer.from(created);
    expect(guard.see(first)).toBe(first);
    const failed = `event: error\ndata: {"type":"error","message":"key ${PROVIDER}","error":null}\n\n`;
    expect(guard.see(Buffer.from(failed))).toBe(
      'event: error\ndata: {"type":"error","message":"key sk-proj-****","error":null}\n\n',
    );
    // A null error beside a real one in the same chunk: redacted.
    const both = new ErrorEventGuard(redactor);
    expect(both.see(`data: {"error":null}\n\ndata: {"error":{"message":"${PROVIDER}"}}\n\n`)).toBe(
      'data: {"error":null}\n\ndata: {"error":{"message":"sk-proj-****"}}\n\n',
    );
    // Cut before the null is certain: taken for an error (redacted, nothing lost).
    const cut = new ErrorEventGuard(redactor);
    let out = '';
    for (const piece of ['data: {"error":', ` nu`, `ll,"m":"${PROVIDER}"}\n\n`]) {
      const passed = cut.see(Buffer.from(piece));
      out += typeof passed === 'string' ? passed : Buffer.from(passed).toString('utf8');
    }
    expect(out + cut.end()).toBe('data: {"error": null,"m":"sk-proj-****"}\n\n');
  });

  it('guards a stream read as an iterable, releasing what is held back at its end', async () => {
    async function* source() {
      yield Buffer.from(content);
      yield Buffer.from(errorEvent.slice(0, 30));
      yield Buffer.from(errorEvent.slice(30, -2)); // the stream ends without the event's blank line
    }
    let out = '';
    for await (const chunk of guardErrorEvents(source(), redactor)) out += Buffer.from(chunk).toString();
    expect(out).toBe(`${content}data: {"error":{"message":"key sk-proj-**** refused"}}`);
  });
});
