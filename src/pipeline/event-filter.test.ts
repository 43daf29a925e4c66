import { describe, expect, it } from 'vitest';
import { TOOL_MARK_WORDS } from '../protocols/json-scan.js';
import { MAX_SSE_LINE_BYTES } from '../protocols/sse.js';
import { parseJsonText } from '../server/json-body.js';
import { EventCheck } from './event-filter.js';
import { seededRandom } from '../../test/helpers/seeded-random.js';

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

  it('cuts a chunk right when its blank line is in its first bytes', () => {
    const f = new EventCheck();
    const out =
      text(f.push(b('data: "text"'))) +
      text(f.push(b('\n\n:'))) +
      text(f.push(b(' ping\ndata: {"__proto__":1}\n\ndata: {"a":1}\n\n'))) +
      text(f.end());
    expect(out).toBe('data: "text"\n\ndata: {"a":1}\n\n');
    expect(f.dropped).toBe(1);
  });

  it('says when what it passed holds no "error" mark (one JSON data line each, no such string)', () => {
    const free = (stream: string) => {
      const f = new EventCheck();
      expect(f.push(b(stream))).not.toBeNull();
      return f.markFree;
    };
    expect(free('data: {"a":"errors","b":"xerror","error_code":1}\n\ndata: [DONE]\n\n')).toBe(true);
    expect(free('event: message\ndata: {"a":"\\"error\\""}\r\n\r\n')).toBe(true);
    expect(free('data: {"error":{"message":"m"}}\n\n')).toBe(false);
    expect(free('data: {"type":"error"}\n\n')).toBe(false);
    expect(free('data: {"a":"say \\"error"}\n\n')).toBe(false);
    expect(free('event: "error"\ndata: {}\n\n')).toBe(false);
    // `"error": null` says there is none (a Responses stream's Response object): the guard passes it too.
    expect(free('data: {"response":{"status":"completed","error":null,"usage":null}}\n\n')).toBe(true);
    expect(free('data: {"error" :\t null}\n\n')).toBe(true);
    expect(free('data: {"type":"error","error":null}\n\n')).toBe(false);
    expect(free('data: {"error":null,"a":{"error":"x"}}\n\n')).toBe(false);
    expect(free('data: {"error":"null"}\n\n')).toBe(false);
    expect(free('data: {"a":"x\\"error","error":null}\n\n')).toBe(false);
    // Any event not read in one pass: not known.
    expect(free(': ping\n\ndata: {}\n\n')).toBe(false);
    expect(free('data: {"a":\ndata: 1}\n\n')).toBe(false);
  });

  it('says when what it passed cannot hold a tool-call marker (one JSON data line each, no such string)', () => {
    const free = (stream: string) => {
      const f = new EventCheck();
      expect(f.push(b(stream))).not.toBeNull();
      return f.toolFree;
    };
    expect(
      free(
        'data: {"a":"tool_callsx","b":"xtool_use","tool_call_id":1,"c":"shell_call "}\n\ndata: [DONE]\n\n',
      ),
    ).toBe(true);
    expect(free('event: message\ndata: {"a":"\\"tool_use","b":"x\\"functionCall\\""}\r\n\r\n')).toBe(false);
    // Any string with an escape may end in one: not known.
    expect(free('data: {"a":"x\\"functionCall\\" y"}\n\n')).toBe(false);
    for (const word of TOOL_MARK_WORDS) {
      expect(free(`data: {"${word}":[]}\n\n`)).toBe(false);
      expect(free(`data: {"type":"${word}"}\n\n`)).toBe(false);
      expect(free(`data: {"a":"say \\"${word}"}\n\n`)).toBe(false);
      expect(free(`data: {"a":"${word}s","b":"x${word}x"}\n\n`)).toBe(true);
    }
    expect(free('event: "tool_use"\ndata: {}\n\n')).toBe(false);
    // Any event not read in one pass: not known.
    expect(free(': ping\n\ndata: {}\n\n')).toBe(false);
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
  it('keeps and drops what a reading of each event line by line does, on random streams cut anywhere (fuzz)', () => {
    const { random, pick } = seededRandom(0x1d872b41);
    const DATA = [
      '{"id":"c1","choices":[{"index":0,"delta":{"content":"tok é"},"finish_reason":null}]}',
      '{"type":"content_block_delta","delta":{"text":"a\\"b\\n"}}',
      '[1, 2.5e3, true, false, null, "x"]',
      '"text"',
      '12',
      '{}',
      '[DONE]',
      ' {"a" : 1 }\t\r',
      '{"__proto__":1}',
      '{"a":"line\\nbreak"}',
      '{"a":1}}',
      '{"error":{"message":"m","type":"error"}}',
      '{"status":"completed","error":null,"usage":null}',
      '{"error" : null,"type":"error"}',
      '{"a":"say \\"error","b":"\\"error\\"","c":"errors"}',
      '{"choices":[{"delta":{"tool_calls":[{"id":"c"}]}}]}',
      '{"type":"tool_use","name":"Bash"}',
      '{"a":"say \\"functionCall","b":"shell_calls","c":"xlocal_shell_call","d":"tool_use\\""}',
      '{"function_call":1,"x":"\\"custom_tool_call\\""}',
      '{"a":',
      'not json',
      '',
    ];
    const NOISE = ['"', '\\', '{', '}', ']', ',', ' ', '\r', '\u0001', 'é', '[DONE]'];
    const damaged = (data: string) => {
      if (random() > 0.2) return data;
      const at = Math.floor(random() * (data.length + 1));
      return random() < 0.5 ? data.slice(0, at) + pick(NOISE) + data.slice(at) : data.slice(0, at);
    };
    const eventOf = () => {
      const end = pick(['\n', '\n', '\r\n']);
      const lines: string[] = [];
      if (random() < 0.3)
        lines.push(
          pick([
            'event: message_delta',
            'event:x',
            'event: "error"',
            'event: "tool_use"',
            ': ping',
            'id: 7',
            'retry: 10',
          ]),
        );
      const data = damaged(pick(DATA));
      const field = pick(['data: ', 'data: ', 'data:']);
      if (random() < 0.1 && data.length > 2) {
        const cut = Math.floor(data.length / 2);
        lines.push(field + data.slice(0, cut), field + data.slice(cut));
      } else if (random() < 0.95) lines.push(field + data);
      if (random() < 0.05 || lines.length === 0) lines.push(pick(['event: late', ': no data']));
      return lines.map((line) => line + end).join('') + end;
    };
    /** The rules, read plainly: events end at a blank line; data lines joined; JSON, `[DONE]` or none pass. */
    const expected = (stream: string): { kept: string; dropped: number } => {
      let kept = '';
      let dropped = 0;
      const events = stream.match(/[^]*?\n\r?\n|[^]+$/g) ?? [];
      for (const event of events) {
        const data = event
          .split('\n')
          .map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line))
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(line.startsWith('data: ') ? 6 : 5));
        let good = data.length === 0 || data.join('\n') === '[DONE]';
        if (!good) {
          try {
            parseJsonText(data.join('\n'));
            good = true;
          } catch {
            good = false;
          }
        }
        if (good) kept += event;
        else dropped += 1;
      }
      return { kept, dropped };
    };
    for (let round = 0; round < 1500; round++) {
      const stream = Array.from({ length: 1 + Math.floor(random() * 6) }, eventOf).join('');
      const bytes = b(stream);
      const f = new EventCheck();
      let out = '';
      for (let at = 0; at < bytes.length;) {
        const size = random() < 0.5 ? bytes.length : 1 + Math.floor(random() * 40);
        const passed = f.push(bytes.subarray(at, at + size));
        // Free of a mark: no `"error"` but as a member `"error": null` (the guard's own reading).
        if (f.markFree) expect(/"error"(?!\s*:\s*null)/.test(text(passed)), text(passed)).toBe(false);
        if (f.toolFree)
          for (const word of TOOL_MARK_WORDS) expect(passed?.includes(`"${word}"`), text(passed)).toBe(false);
        out += text(passed);
        at += size;
      }
      out += text(f.end());
      const want = expected(stream);
      expect({ stream, out, dropped: f.dropped }).toEqual({ stream, out: want.kept, dropped: want.dropped });
    }
  });
});
