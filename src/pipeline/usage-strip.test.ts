import { describe, expect, it } from 'vitest';
import { UsageChunkStripper, withStreamUsageBytes } from './usage-strip.js';

const chunk = (json: object) => `data: ${JSON.stringify(json)}\n\n`;

describe('the usage chunk the proxy asked for', () => {
  it('is taken out, and read, however the bytes are cut', () => {
    const stream =
      chunk({ choices: [{ delta: { content: 'hi' } }], usage: null }) +
      chunk({ choices: [{ delta: {}, finish_reason: 'stop' }], usage: null }) +
      chunk({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 2 } }) +
      'data: [DONE]\n\n';
    const expected = stream.replace(
      chunk({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 2 } }),
      '',
    );
    for (const size of [1, 7, 64, stream.length]) {
      const stripper = new UsageChunkStripper();
      let out = '';
      for (let i = 0; i < stream.length; i += size) out += stripper.see(stream.slice(i, i + size)).toString();
      out += stripper.end().toString();
      expect(out, `cut every ${size}`).toBe(expected);
      expect(stripper.usage).toEqual({ input: 5, output: 2, cacheRead: 0, cacheWrite: 0 });
    }
  });

  it('keeps the choices of a last chunk that carries usage too, without its usage', () => {
    const stripper = new UsageChunkStripper();
    const out = stripper.see(
      chunk({
        choices: [{ delta: {}, finish_reason: 'stop' }],
        usage: { prompt_tokens: 1, completion_tokens: 1 },
      }),
    );
    expect(out.toString()).toBe(chunk({ choices: [{ delta: {}, finish_reason: 'stop' }] }));
    expect(stripper.usage).toEqual({ input: 1, output: 1, cacheRead: 0, cacheWrite: 0 });
  });

  it('is found at the end of a chunk of many events, its blank lines LF or CRLF', () => {
    for (const end of ['\n\n', '\r\n\r\n']) {
      const event = (json: object) => `data: ${JSON.stringify(json)}${end}`;
      const text = Array.from({ length: 20 }, (_, i) =>
        event({ choices: [{ delta: { content: `tok${i} ` } }], usage: null }),
      ).join('');
      const usage = event({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 20 } });
      for (const tail of [`${usage}data: [DONE]${end}`, usage]) {
        const stripper = new UsageChunkStripper();
        expect(stripper.see(text + tail).toString()).toBe(text + tail.replace(usage, ''));
        expect(stripper.usage).toEqual({ input: 7, output: 20, cacheRead: 0, cacheWrite: 0 });
      }
    }
  });

  it('passes CRLF events and a last event that never ended', () => {
    const stripper = new UsageChunkStripper();
    const first = stripper.see('data: {"choices":[{"delta":{"content":"a"}}]}\r\n\r\ndata: {"cho');
    expect(first.toString()).toBe('data: {"choices":[{"delta":{"content":"a"}}]}\r\n\r\n');
    expect(stripper.end().toString()).toBe('data: {"cho');
  });
});

describe('asking for streamed usage in the request bytes', () => {
  it('splices the ask after the opening brace, or leaves a body with stream_options to the object', () => {
    expect(withStreamUsageBytes(Buffer.from(' {"model":"m","stream":true}'))?.toString()).toBe(
      ' {"stream_options":{"include_usage":true},"model":"m","stream":true}',
    );
    expect(withStreamUsageBytes('{"stream_options":{"x":1},"model":"m"}')).toBeNull();
    expect(withStreamUsageBytes('{ }')).toBeNull();
  });
});

describe('an unfinished event longer than any usage chunk', () => {
  it('is passed on as it comes, not held', () => {
    const stripper = new UsageChunkStripper();
    const line = `data: ${'x'.repeat(10_000)}`;
    expect(stripper.see(line).toString()).toBe(line);
    expect(stripper.end().length).toBe(0);
  });
});
