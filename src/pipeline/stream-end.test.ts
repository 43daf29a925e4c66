import { describe, expect, it } from 'vitest';
import { ProxyError } from '../proxy-error.js';
import { FinishWatch, midStreamError } from './stream-end.js';

const created = 'event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\n';
const delta =
  'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":1}\n\n';
const completed = `event: response.completed\ndata: {"type":"response.completed","sequence_number":2,"response":{"text":"${'x'.repeat(2000)}"}}\n\n`;

describe('FinishWatch (Responses)', () => {
  it('knows a stream finished by its last event name, however chunks cut it, bytes or text', () => {
    const whole = created + delta + completed;
    for (const cut of [5, created.length + 3, created.length + delta.length + 10, whole.length - 100]) {
      for (const asText of [false, true]) {
        const watch = new FinishWatch('responses');
        for (const piece of [whole.slice(0, cut), whole.slice(cut, cut + 7), whole.slice(cut + 7)])
          watch.see(asText ? piece : Buffer.from(piece));
        expect(watch.missingEnd('b'), `cut at ${cut}`).toBeNull();
      }
    }
  });

  it('reads the last event name of a final event longer than the tail kept, through many small chunks', () => {
    const long = `event: response.completed\ndata: {"type":"response.completed","sequence_number":2,"response":{"text":"${'y'.repeat(30_000)}"}}\n\n`;
    const whole = created + delta + long;
    // Pieces of 7 and 13 bytes: the trims (every 32 chunks) fall at every offset of the `event:` lines.
    for (const size of [7, 13, 1000]) {
      for (const start of [0, 3]) {
        const watch = new FinishWatch('responses');
        watch.see(Buffer.from(whole.slice(0, start)));
        for (let at = start; at < whole.length; at += size)
          watch.see(Buffer.from(whole.slice(at, at + size)));
        expect(watch.missingEnd('b'), `pieces of ${size} from ${start}`).toBeNull();
      }
    }
  });

  it('tells a stream cut inside a long event from a finished one, however it was chunked', () => {
    // The last event line names a delta; the completed event's name only appears in its text.
    const longDelta = `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":1,"delta":"${'event: response.completed '.repeat(1000)}`;
    for (const size of [7, 13, 1000]) {
      const watch = new FinishWatch('responses');
      const whole = created + longDelta;
      for (let at = 0; at < whole.length; at += size) watch.see(Buffer.from(whole.slice(at, at + size)));
      const owed = watch.missingEnd('b') ?? '';
      expect(JSON.parse(owed.split('data: ')[1]!), `pieces of ${size}`).toMatchObject({
        type: 'error',
        code: 'upstream_incomplete',
      });
      expect(watch.cutShort).toBe(true);
    }
  });

  it('owes a numbered error event to a stream cut short, one past the last number sent', () => {
    const watch = new FinishWatch('responses');
    watch.see(Buffer.from(created));
    watch.see(Buffer.from(delta));
    expect(watch.nextSequence()).toBe(2);
    const owed = watch.missingEnd('b') ?? '';
    expect(JSON.parse(owed.split('data: ')[1]!)).toEqual({
      type: 'error',
      code: 'upstream_incomplete',
      message: "Backend 'b' ended the stream before the answer was finished",
      param: null,
      sequence_number: 2,
    });
    expect(new FinishWatch('responses').nextSequence()).toBe(0);
    expect(new FinishWatch('openai').nextSequence()).toBeUndefined();
  });
});

describe('FinishWatch (OpenAI): the end and the usage read from the last chunks', () => {
  const chunk = (i: number, finish: string | null) =>
    `data: {"id":"c","choices":[{"index":0,"delta":{"content":"tok${i} "},"finish_reason":${finish === null ? 'null' : `"${finish}"`}}]}\n\n`;
  const events = Array.from({ length: 40 }, (_, i) => chunk(i, i === 39 ? 'stop' : null)).join('');
  const usage = 'data: {"id":"c","choices":[],"usage":{"prompt_tokens":42,"completion_tokens":180}}\n\n';

  it('the same verdict and usage however the stream is chunked, whichever is read first', () => {
    const unfinished = events.slice(0, events.lastIndexOf('data: ')) + 'data: {"id":"c","choi';
    const DONE = 'data: [DONE]\n\n';
    // The stream, what it is owed at its end ('error': the error event of a stream cut short), its usage.
    const cases: [string, string | null, boolean][] = [
      [events + usage + DONE, null, true],
      [events + usage, DONE, true],
      [events + usage.slice(0, 30), `\n\n${DONE}`, false],
      [unfinished, 'error', false],
    ];
    for (const [whole, owed, withUsage] of cases) {
      for (const size of [7, 100, 5000]) {
        for (const usageFirst of [false, true]) {
          const watch = new FinishWatch('openai');
          for (let at = 0; at < whole.length; at += size) watch.see(Buffer.from(whole.slice(at, at + size)));
          const used = usageFirst ? watch.usage() : undefined;
          const end = watch.missingEnd('b');
          const label = `pieces of ${size}, usage ${usageFirst ? 'first' : 'last'}`;
          if (owed === 'error') {
            expect(JSON.parse(end!.split('data: ')[1]!).error.code, label).toBe('upstream_incomplete');
            expect(watch.cutShort).toBe(true);
          } else expect(end, label).toBe(owed);
          expect(used ?? watch.usage(), label).toEqual(
            withUsage ? { input: 42, output: 180, cacheRead: 0, cacheWrite: 0 } : null,
          );
        }
      }
    }
  });
});

describe('FinishWatch: the usage read on bytes as on text', () => {
  it('reads the same usage from a stream of bytes as from the same stream of text, every protocol', () => {
    const filler = (n: number) =>
      Array.from({ length: n }, (_, i) => `data: {"i":${i},"usage":null,"t":"x\\"y"}\n\n`).join('');
    const blocks = {
      openai: '{"prompt_tokens":42,"completion_tokens":180,"prompt_tokens_details":{"cached_tokens":2}}',
      responses: '{"input_tokens":7,"output_tokens":9}',
      gemini: '{"promptTokenCount":3,"candidatesTokenCount":4}',
    } as const;
    for (const protocol of ['openai', 'responses', 'gemini'] as const) {
      const key = protocol === 'gemini' ? 'usageMetadata' : 'usage';
      const last = `data: {"${key}":${blocks[protocol]}}\n\n`;
      for (const stream of [
        filler(3) + last + filler(1),
        filler(2) + last + filler(30),
        filler(5),
        last.slice(0, 25) + filler(2),
        filler(200) + last,
      ]) {
        for (const size of [9, 300, 100_000]) {
          const bytes = new FinishWatch(protocol);
          const text = new FinishWatch(protocol);
          for (let at = 0; at < stream.length; at += size) {
            bytes.see(Buffer.from(stream.slice(at, at + size)));
            text.see(stream.slice(at, at + size));
          }
          expect(bytes.usage(), `${protocol}, pieces of ${size}`).toEqual(text.usage());
          expect(bytes.missingEnd('b')).toBe(text.missingEnd('b'));
        }
      }
    }
  });
});

describe('midStreamError', () => {
  it('names a backend gone silent as such, a broken stream as broken', () => {
    const silent = new ProxyError(504, "Backend 'openai' went silent mid-stream", {
      code: 'upstream_stalled',
    });
    expect(midStreamError('openai', 'openai', silent)).toBe(
      `data: ${JSON.stringify({ error: { message: "Backend 'openai' went silent mid-stream", type: 'server_error', code: 'upstream_stalled', param: null } })}\n\n`,
    );
    expect(midStreamError('openai', 'openai', new Error('socket hang up'))).toContain(
      `"message":"Backend 'openai' failed mid-stream"`,
    );
  });
});
