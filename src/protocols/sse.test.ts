import { describe, expect, it } from 'vitest';
import { MAX_SSE_LINE_BYTES, SseParser } from './sse.js';

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
