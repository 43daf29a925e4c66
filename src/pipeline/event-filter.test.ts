import { describe, expect, it } from 'vitest';
import { JsonEventFilter } from './event-filter.js';

const b = (s: string) => Buffer.from(s);

describe('JsonEventFilter', () => {
  it('passes JSON events, [DONE] and comments, drops an event that is not JSON', () => {
    const f = new JsonEventFilter();
    const out =
      f.push(b('data: {"a":1}\n\n: ping\n\ndata: {"this is": not json}\n\n')) +
      f.push(b('event: x\ndata: {"b":2}\n\ndata: [DONE]\n\n')) +
      f.end();
    expect(out).toBe('data: {"a":1}\n\n: ping\n\nevent: x\ndata: {"b":2}\n\ndata: [DONE]\n\n');
    expect(f.dropped).toBe(1);
  });

  it('joins events cut across chunks, CRLF ones too, and multi-byte characters', () => {
    const f = new JsonEventFilter();
    const whole = Buffer.from('data: {"t":"é"}\r\n\r\ndata: <html>\r\n\r\n');
    let out = '';
    for (let i = 0; i < whole.length; i += 3) out += f.push(whole.subarray(i, i + 3));
    out += f.end();
    expect(out).toBe('data: {"t":"é"}\r\n\r\n');
    expect(f.dropped).toBe(1);
  });

  it('checks a last event that came without its blank line', () => {
    const f = new JsonEventFilter();
    expect(f.push(b('data: {"a":1}\n\ndata: nope'))).toBe('data: {"a":1}\n\n');
    expect(f.end()).toBe('');
    expect(f.dropped).toBe(1);
  });
});
