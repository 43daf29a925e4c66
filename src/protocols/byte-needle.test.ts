import { describe, expect, it } from 'vitest';
import { ByteNeedle, eventsHoldAny, holdsAny } from './byte-needle.js';

describe('ByteNeedle', () => {
  const needle = new ByteNeedle('"tool_calls"');

  it('finds the needle where Buffer.indexOf does, in short and long spans', () => {
    const cases = [
      '',
      '"tool_calls"',
      'data: {"delta":{"tool_calls":[{"index":0}]}}\n\n',
      'data: {"delta":{"content":"tool_calls"},"finish_reason":null}\n\n',
      '"tool_call" "tool_callsX" tool_calls" "tool__calls"',
      `${'x_'.repeat(3000)}"tool_calls"`,
      'x_'.repeat(3000),
    ];
    for (const text of cases) {
      const bytes = Buffer.from(text);
      expect(needle.indexIn(bytes)).toBe(bytes.indexOf(needle.bytes));
      expect(needle.in(bytes)).toBe(bytes.includes(needle.bytes));
    }
  });

  it('searches only [start, end): a needle that crosses either bound is not there', () => {
    const bytes = Buffer.from('ab"tool_calls"cd');
    expect(needle.indexIn(bytes, 2, 14)).toBe(2);
    expect(needle.indexIn(bytes, 3, 16)).toBe(-1);
    expect(needle.indexIn(bytes, 0, 13)).toBe(-1);
    const long = Buffer.from(`${'-'.repeat(4000)}"tool_calls"`);
    expect(needle.indexIn(long, 0, long.length - 1)).toBe(-1);
    expect(needle.indexIn(long, 0, long.length)).toBe(4000);
  });

  it('reads a Uint8Array that is not a Buffer, and a needle of one byte', () => {
    const bytes = new Uint8Array(Buffer.from('xx"tool_calls"'));
    expect(needle.indexIn(bytes)).toBe(2);
    expect(new ByteNeedle('_').indexIn(bytes)).toBe(7);
    expect(() => new ByteNeedle('')).toThrow('an empty needle');
  });

  it('holdsAny: any of several needles', () => {
    const needles = ['"function_call"', '"custom_tool_call"'].map((m) => new ByteNeedle(m));
    expect(holdsAny(needles, Buffer.from('{"type":"custom_tool_call"}'))).toBe(true);
    expect(holdsAny(needles, Buffer.from('{"type":"message"}'))).toBe(false);
  });

  it('indexInEvents finds what Buffer.indexOf finds, from any start and up to any end (fuzz)', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = Buffer.from('"error":{}, usage\\n\n');
    const some = (length: number) =>
      Buffer.from(Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]!));
    for (let round = 0; round < 2000; round++) {
      const text = some(1 + Math.floor(random() * 8)).toString('latin1');
      const needle = new ByteNeedle(text);
      const hay = some(Math.floor(random() * 200));
      const from = Math.floor(random() * (hay.length + 2));
      const to = Math.floor(random() * (hay.length + 2));
      const window = hay.subarray(0, to);
      const expected = from > window.length ? -1 : window.indexOf(needle.bytes, from);
      const label = `${text} in ${hay.toString('latin1')} [${from}, ${to})`;
      expect(needle.indexInEvents(hay, from, to), label).toBe(expected);
      expect(needle.indexIn(hay, from, to), label).toBe(expected);
    }
  });

  it('indexInEvents: a needle at the very start and the very end, and not one cut by the end', () => {
    const error = new ByteNeedle('"error"');
    expect(error.indexInEvents(Buffer.from('"error": 1'))).toBe(0);
    expect(error.indexInEvents(Buffer.from('{"x":"error"'))).toBe(5);
    expect(error.indexInEvents(Buffer.from('{"x":"error"'), 0, 11)).toBe(-1);
    expect(error.indexInEvents(new Uint8Array(Buffer.from('a"error"b')))).toBe(1);
    expect(error.indexInEvents(Buffer.from('"errors"'))).toBe(-1);
    expect(eventsHoldAny([new ByteNeedle('"usage"'), error], Buffer.from('{"error":null}'))).toBe(true);
  });

  it('a needle of more than 255 bytes (a long secret) is found where Buffer.indexOf finds it', () => {
    const long = new ByteNeedle(`${'ab'.repeat(200)}Z`);
    for (const text of [`${'ab'.repeat(600)}Z`, `${'ab'.repeat(600)}`, `x${'ab'.repeat(200)}Zab`]) {
      const bytes = Buffer.from(text);
      const expected = bytes.indexOf(long.bytes);
      expect(long.indexIn(bytes)).toBe(expected);
      expect(long.indexInEvents(bytes)).toBe(expected);
    }
  });

  it('long spans: the native search from the rarest byte, past candidates whose start differs', () => {
    // `_call` is in every name; only the last one is "tool_call — past the misses the whole needle is searched.
    const tool = new ByteNeedle('"tool_call');
    for (const names of [3, 7, 8, 9, 40]) {
      const text = `${'{"make_call":1,"tool__call":2,'.repeat(names)}${' '.repeat(600)}"tool_calls"`;
      const bytes = Buffer.from(text);
      expect(tool.indexIn(bytes), `${names} names`).toBe(bytes.indexOf(tool.bytes));
      expect(tool.indexIn(bytes, 0, bytes.length - 3), `${names} names, cut`).toBe(-1);
      expect(tool.indexIn(new Uint8Array(bytes)), `${names} names, Uint8Array`).toBe(
        bytes.indexOf(tool.bytes),
      );
    }
  });

  it('indexIn over short spans (the anchor byte searched natively) finds what Buffer.indexOf finds, views and starts past the end included (fuzz)', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = Buffer.from('"tool_call-!/Kk ');
    const some = (length: number) =>
      Buffer.from(Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]!));
    for (let round = 0; round < 500; round++) {
      const needle = new ByteNeedle(some(1 + Math.floor(random() * 5)).toString('latin1'));
      // A view into a larger buffer, as a socket's chunk is: the search must stay within it.
      const outer = some(40 + Math.floor(random() * 500));
      const offset = Math.floor(random() * 20);
      const view = new Uint8Array(
        outer.buffer,
        outer.byteOffset + offset,
        outer.length - offset - Math.floor(random() * 20),
      );
      const hay = Buffer.from(view);
      const from = Math.floor(random() * (hay.length + 4));
      const to = Math.max(0, hay.length - Math.floor(random() * 40));
      const found = hay.subarray(0, to).indexOf(needle.bytes, from);
      const expected = from > to ? -1 : found;
      expect(needle.indexIn(view, from, to), `${needle.text} [${from}, ${to}) view`).toBe(expected);
      expect(needle.indexIn(hay, from, to), `${needle.text} [${from}, ${to})`).toBe(expected);
    }
  });

  it('indexIn over long spans finds what Buffer.indexOf finds, from any start and up to any end (fuzz)', () => {
    let seed = 11;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const alphabet = Buffer.from('"tool_call-Kk ');
    const some = (length: number) =>
      Buffer.from(Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]!));
    for (let round = 0; round < 300; round++) {
      const needle = new ByteNeedle(some(1 + Math.floor(random() * 6)).toString('latin1'));
      const hay = some(400 + Math.floor(random() * 1600));
      const from = Math.floor(random() * 200);
      const to = hay.length - Math.floor(random() * 200);
      const expected = hay.subarray(0, to).indexOf(needle.bytes, from);
      expect(needle.indexIn(hay, from, to), `${needle.text} [${from}, ${to})`).toBe(expected);
    }
  });
});
