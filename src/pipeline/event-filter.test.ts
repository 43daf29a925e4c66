import { describe, expect, it } from 'vitest';
import { MAX_SSE_LINE_BYTES } from '../protocols/sse.js';
import { EventCheck } from './event-filter.js';

const b = (s: string) => Buffer.from(s);
const text = (out: Buffer | null) => (out === null ? '' : out.toString('utf8'));

describe('EventCheck', () => {
  it('passes JSON events, [DONE] and comments, drops an event that is not JSON', () => {
    const f = new EventCheck();
    const out =
      text(f.push(b('data: {"a":1}\n\n: ping\n\ndata: {"this is": not json}\n\n'))) +
      text(f.push(b('event: x\ndata: {"b":2}\n\ndata: [DONE]\n\n'))) +
      text(f.end());
    expect(out).toBe('data: {"a":1}\n\n: ping\n\nevent: x\ndata: {"b":2}\n\ndata: [DONE]\n\n');
    expect(f.dropped).toBe(1);
  });

  it('passes a chunk of good whole events on as the same buffer: no copy', () => {
    const f = new EventCheck();
    const chunk = b('event: a\ndata: {"x":[1,2,{"y":"z"}]}\n\ndata: {"t":"é"}\r\n\r\n');
    expect(f.push(chunk)).toBe(chunk);
    expect(f.end()).toBeNull();
    expect(f.dropped).toBe(0);
  });

  it('joins events cut across chunks, CRLF ones too, and multi-byte characters', () => {
    const f = new EventCheck();
    const whole = b('data: {"t":"é"}\r\n\r\ndata: <html>\r\n\r\ndata: {"u":1}\n\n');
    let out = '';
    for (let i = 0; i < whole.length; i += 3) out += text(f.push(whole.subarray(i, i + 3)));
    out += text(f.end());
    expect(out).toBe('data: {"t":"é"}\r\n\r\ndata: {"u":1}\n\n');
    expect(f.dropped).toBe(1);
  });

  it('reads data split over several lines as one value', () => {
    const f = new EventCheck();
    expect(text(f.push(b('data: {"a":\ndata: 1}\n\ndata: {"a":\ndata: oops\n\n')))).toBe(
      'data: {"a":\ndata: 1}\n\n',
    );
    expect(f.dropped).toBe(1);
  });

  it('checks a last event that came without its blank line', () => {
    const f = new EventCheck();
    expect(text(f.push(b('data: {"a":1}\n\ndata: nope')))).toBe('data: {"a":1}\n\n');
    expect(f.end()).toBeNull();
    expect(f.dropped).toBe(1);
    const g = new EventCheck();
    expect(g.push(b('data: {"a":'))).toBeNull();
    expect(text(g.end())).toBe('');
    expect(text(new EventCheck().end())).toBe('');
  });

  it('says when an event grows past the line bound without ending', () => {
    const f = new EventCheck();
    const lines = b('data: x\n'.repeat(64 * 1024));
    let out: Buffer | null = null;
    for (let sent = 0; sent <= MAX_SSE_LINE_BYTES && !f.oversized; sent += lines.length) out = f.push(lines);
    expect(out).toBeNull();
    expect(f.oversized).toBe(true);
  });
});
