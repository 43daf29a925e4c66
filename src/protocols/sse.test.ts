import { StringDecoder } from 'node:string_decoder';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../test/helpers/seeded-random.js';
import { MAX_SSE_LINE_BYTES, SseParser, StreamText } from './sse.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');

/** Every event of `chunks` fed one after another, then the end. */
function parse(chunks: Array<Uint8Array | string>) {
  const parser = new SseParser();
  const events = [];
  for (const chunk of chunks)
    events.push(...(typeof chunk === 'string' ? parser.feedText(chunk) : parser.feed(chunk)));
  events.push(...parser.end());
  return events;
}

describe('SseParser', () => {
  it('reads bytes and decoded text alike, events named or not', () => {
    const wire = 'event: ping\ndata: {"a":1}\n\ndata: {"b":2}\n\n';
    const expected = [{ event: 'ping', data: '{"a":1}' }, { data: '{"b":2}' }];
    expect(parse([bytes(wire)])).toEqual(expected);
    expect(parse([wire])).toEqual(expected);
  });

  it('decodes a UTF-8 character split between two chunks whole', () => {
    const all = bytes('data: {"t":"héllo €"}\n\n');
    const cut = all.indexOf(0xe2) + 1; // inside the euro sign's three bytes
    expect(parse([all.subarray(0, cut), all.subarray(cut)])).toEqual([{ data: '{"t":"héllo €"}' }]);
  });

  it('drops a byte order mark that opens the stream, as bytes or text, split or not', () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const event = [{ data: '{"x":1}' }];
    expect(parse([Buffer.concat([bom, bytes('data: {"x":1}\n\n')])])).toEqual(event);
    expect(parse([bom.subarray(0, 2), Buffer.concat([bom.subarray(2), bytes('data: {"x":1}\n\n')])])).toEqual(
      event,
    );
    expect(parse(['\ufeffdata: {"x":1}\n\n'])).toEqual(event);
    // Only at the very start: later, the mark is part of a line (here an unknown field's name).
    expect(parse(['data: 1\n\n', '\ufeffdata: 2\n\n'])).toEqual([{ data: '1' }]);
  });

  it('takes CRLF and CR line ends, lines split anywhere, and a last event without its blank line', () => {
    expect(parse(['data: a\r', '\n\r\ndata: b\r\rda', 'ta: c'])).toEqual([
      { data: 'a' },
      { data: 'b' },
      { data: 'c' },
    ]);
  });

  it('throws past the line bound, text or bytes, and not for many events in one large chunk', () => {
    const long = 'x'.repeat(MAX_SSE_LINE_BYTES + 1);
    expect(() => new SseParser().feedText(`data: ${long}`)).toThrow(/longer than/);
    const parser = new SseParser();
    expect(() => {
      for (let i = 0; i < 3; i++) parser.feed(bytes(`data: ${'y'.repeat(MAX_SSE_LINE_BYTES / 2)}`));
    }).toThrow(/longer than/);
    const many = `data: ${'z'.repeat(1000)}\n\n`.repeat(Math.ceil(MAX_SSE_LINE_BYTES / 1000) + 10);
    expect(new SseParser().feedText(many)).toHaveLength(Math.ceil(MAX_SSE_LINE_BYTES / 1000) + 10);
  });
});

describe('StreamText', () => {
  // ASCII chunks are read as latin1 until the first that is not: each chunk's text must be exactly what a
  // streaming UTF-8 decoder gives for it, whatever the cuts, split characters and malformed bytes.
  it("gives each chunk's text as StringDecoder does, for random streams cut anywhere", () => {
    const { random, pick } = seededRandom(0x5eed7e47);
    const pieces = ['data: {"a":"tok1 "}\n\n', 'plain ascii ', '\u0000\u007f', 'é', '👋', '中文', '\ufeff'];
    const odd = [Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0xe2, 0x82]), Buffer.from([0x80])];
    for (let round = 0; round < 300; round++) {
      const parts: Buffer[] = [];
      const asciiOnly = random() < 0.3;
      for (let n = Math.floor(random() * 12); n > 0; n--) {
        const r = random();
        if (asciiOnly || r < 0.6) parts.push(Buffer.from(pick(pieces.slice(0, 3))));
        else if (r < 0.9) parts.push(Buffer.from(pick(pieces)));
        else parts.push(pick(odd));
      }
      const whole = Buffer.concat(parts);
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < whole.length;) {
        const size = 1 + Math.floor(random() * 9);
        const slice = whole.subarray(at, at + size);
        // Plain Uint8Array views too, as a caller may hand in.
        chunks.push(random() < 0.5 ? slice : new Uint8Array(slice.buffer, slice.byteOffset, slice.length));
        at += size;
      }
      const text = new StreamText();
      const decoder = new StringDecoder('utf8');
      for (const chunk of chunks) expect(text.write(chunk)).toBe(decoder.write(chunk as Buffer));
      expect(text.end()).toBe(decoder.end());
    }
  });
});
