import { describe, expect, it } from 'vitest';
import { readJsonBody } from '../server/json-body.js';

const read = (value: unknown) => readJsonBody(Buffer.from(JSON.stringify(value)));

describe('RequestBody: a checked body read as far as asked', () => {
  const sample = { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: 'hi é' }], n: 2 };

  it('parses a field from its own bytes, the same value on every read', () => {
    const body = read(sample);
    expect(body.field('model')).toBe('gpt-4o');
    expect(body.field('stream')).toBe(true);
    expect(body.field('missing')).toBeUndefined();
    const messages = body.field('messages');
    expect(messages).toEqual(sample.messages);
    expect(body.field('messages')).toBe(messages);
    // The whole value, parsed later, keeps the member already read.
    expect(body.value).toEqual(sample);
    expect((body.value as { messages: unknown }).messages).toBe(messages);
  });

  it('fields reads like the parsed object: names, spread, JSON, prototype', () => {
    const fields = read(sample).fields;
    expect(fields.model).toBe('gpt-4o');
    expect(Object.keys(fields)).toEqual(['model', 'stream', 'messages', 'n']);
    expect({ ...fields, model: 'x' }).toEqual({ ...sample, model: 'x' });
    expect(JSON.parse(JSON.stringify(fields))).toEqual(sample);
    expect('messages' in fields).toBe(true);
    expect(fields.constructor).toBe(Object);
    expect(typeof fields.toString).toBe('function');
    expect(Array.isArray(fields)).toBe(false);
  });

  it('the last of a repeated name wins, as in JSON.parse', () => {
    const body = readJsonBody(Buffer.from('{"model":"a","stream":false,"model":"b"}'));
    expect(body.field('model')).toBe('b');
    expect(body.value).toEqual({ model: 'b', stream: false });
  });

  it('knows an object from other JSON values', () => {
    expect(read(sample).isObject).toBe(true);
    expect(read([1]).isObject).toBe(false);
    expect(read('text').isObject).toBe(false);
    expect(read(null).isObject).toBe(false);
  });

  it('reads literals and plain strings from their bytes as JSON.parse reads them', () => {
    const values: unknown[] = [
      true,
      false,
      null,
      '',
      'gpt-4o-mini',
      'openai:gpt-4o',
      'a "quoted" name',
      'back\\slash',
      'tab\there',
      'line\nbreak',
      'é and ü',
      '\u0000',
      '😀',
      'x'.repeat(300),
      0,
      -1.5e3,
      [1, 'a'],
      { a: { b: null } },
    ];
    for (const value of values) {
      const body = read({ model: value, other: 1 });
      expect(body.field('model'), JSON.stringify(value)).toEqual(value);
    }
    // Escapes a client may write that JSON.stringify does not: `\/`, `\u` escapes of plain characters.
    const escaped = readJsonBody(Buffer.from('{"model":"a\\/b\\u0041","stream":true}'));
    expect(escaped.field('model')).toBe('a/bA');
    expect(escaped.field('stream')).toBe(true);
  });

  it('a raw control byte inside a string member is refused by the parser, as before', () => {
    const body = readJsonBody(Buffer.from('{"model":"a\u0001b"}'));
    expect(() => body.field('model')).toThrow(SyntaxError);
  });

  it('tells a member that is absent, until the whole body is parsed', () => {
    const body = read(sample);
    expect(body.lacks('tools')).toBe(true);
    expect(body.lacks('model')).toBe(false);
    void body.value;
    expect(body.lacks('tools')).toBe(false);
    expect(read([1]).lacks('tools')).toBe(false);
  });

  it('decodes the text once, and parses a body with a byte order mark', () => {
    const bytes = Buffer.from('\ufeff{"model":"m"}', 'utf8');
    const body = readJsonBody(bytes);
    expect(body.text).toBe(body.text);
    expect(body.field('model')).toBe('m');
    expect(body.value).toEqual({ model: 'm' });
    expect(body.bytes).toBe(bytes);
  });
});
