import { describe, expect, it } from 'vitest';
import { ProxyError } from '../proxy-error.js';
import type { SseMessage } from './codec.js';
import { codecs } from './registry.js';
import { StreamTranslation, translateStream } from './translate.js';
import { ARGS, TEXT, TRANSCRIPTS, chunked, decodeSseText, reassemble } from './testing/fixtures.js';
import type { Protocol } from './types.js';

const PROTOCOLS: Protocol[] = ['openai', 'anthropic', 'gemini', 'responses'];
const PAIRS = PROTOCOLS.flatMap((from) => PROTOCOLS.map((to) => [from, to] as const));
// An OpenAI chat client's usage chunk comes only when it asked for it (see the test of that below).
const meta = { model: 'client-model', requestId: 'req_1', includeUsage: true };

/** The transcript up to (not including) the second text delta, cut at an event boundary. */
function headOf(from: Protocol): string {
  const head = TRANSCRIPTS[from].slice(0, TRANSCRIPTS[from].indexOf(' wörld'));
  const end = Math.max(head.lastIndexOf('\n\n') + 2, head.lastIndexOf('\r\n\r\n') + 4, 0);
  return head.slice(0, end);
}

/**
 * A 502 error event as a client of each protocol reads it back: OpenAI's wire error keeps the code,
 * Anthropic's only a type (api_error, i.e. 500), Gemini's the status (whose code stands in).
 */
const READ_BACK_502: Record<Protocol, (code: string) => { status: number; code: string; param?: null }> = {
  openai: (code) => ({ status: 502, code, param: null }),
  anthropic: () => ({ status: 500, code: 'server_error' }),
  gemini: () => ({ status: 502, code: 'upstream_unreachable' }),
  responses: (code) => ({ status: 502, code }),
};
const readBack502 = (to: Protocol, message: string, code: string) => ({
  type: 'error',
  error: { message, ...READ_BACK_502[to](code) },
});

async function collect(gen: AsyncGenerator<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const s of gen) out.push(s);
  return out;
}

describe('translateStream', () => {
  describe.each(PAIRS)('%s → %s', (from, to) => {
    it.each([1, 3, 7, 64])(
      'keeps text, streamed tool arguments, stop reason and usage with %i-byte chunks',
      async (size) => {
        const out = await collect(translateStream(chunked(TRANSCRIPTS[from], size), from, to, meta));
        const answer = reassemble(await decodeSseText(to, out.join('')));
        expect(answer.errors).toEqual([]);
        expect(answer.text).toBe(TEXT);
        expect(answer.toolCalls).toHaveLength(1);
        expect(answer.toolCalls[0]?.name).toBe('weather');
        expect(JSON.parse(answer.toolCalls[0]?.arguments ?? '')).toEqual(JSON.parse(ARGS));
        expect(answer.stopReason).toBe('tool_use');
        // The totals; a Responses usage also says its (zero) cached and reasoning tokens.
        expect(answer.usage).toMatchObject({ inputTokens: 11, outputTokens: 22 });
      },
    );

    if (to === 'openai') {
      it('writes no usage chunk (choices: []) when the client did not ask for one', async () => {
        const unasked = { model: 'client-model', requestId: 'req_1' };
        const out = (await collect(translateStream(chunked(TRANSCRIPTS[from], 64), from, to, unasked))).join(
          '',
        );
        const chunks = out
          .split('\n\n')
          .filter((e) => e.startsWith('data: {'))
          .map((e) => JSON.parse(e.slice('data: '.length)) as { choices: unknown[]; usage?: unknown });
        expect(chunks.length).toBeGreaterThan(2);
        for (const chunk of chunks) {
          expect(chunk.choices).toHaveLength(1);
          expect(chunk.usage).toBeUndefined();
        }
        expect(out.endsWith('data: [DONE]\n\n')).toBe(true);
        const answer = reassemble(await decodeSseText(to, out));
        expect(answer.text).toBe(TEXT);
        expect(answer.stopReason).toBe('tool_use');
      });
    }

    it('ends with the target protocol error event when the source fails mid-stream', async () => {
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield* chunked(headOf(from), 5);
        throw Object.assign(new Error('socket hang up at 10.0.0.1'), { code: 'ECONNRESET' });
      }
      const out = (await collect(translateStream(failing(), from, to, meta))).join('');
      const answer = reassemble(await decodeSseText(to, out));
      expect(answer.text).toBe('Héllo 👋');
      expect(answer.errors).toHaveLength(1);
      expect(answer.errors).toEqual([
        readBack502(to, 'Backend stream was interrupted', 'upstream_interrupted'),
      ]);
      expect(out).not.toContain('10.0.0.1');
    });

    it('turns a stream that stops without finishing into an error event', async () => {
      const out = (await collect(translateStream(chunked(headOf(from), 9), from, to, meta))).join('');
      const answer = reassemble(await decodeSseText(to, out));
      expect(answer.stopReason).toBeUndefined();
      expect(answer.text).toBe('Héllo 👋');
      expect(answer.errors).toEqual([
        readBack502(to, 'Backend stream ended before the answer was finished', 'upstream_incomplete'),
      ]);
    });
  });

  it('yields each event as soon as it is parsed, without waiting for the rest of the answer', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    async function* slow(): AsyncGenerator<Uint8Array> {
      yield* chunked(
        TRANSCRIPTS.anthropic.slice(0, TRANSCRIPTS.anthropic.indexOf('event: content_block_delta')),
        1000,
      );
      await gate;
      yield* chunked(
        TRANSCRIPTS.anthropic.slice(TRANSCRIPTS.anthropic.indexOf('event: content_block_delta')),
        1000,
      );
    }
    const gen = translateStream(slow(), 'anthropic', 'openai', meta);
    const first = await gen.next();
    expect(first.value).toContain('"role":"assistant"');
    release();
    const rest = await collect(gen);
    expect(rest.join('')).toContain('data: [DONE]');
  });

  it.each(PAIRS)(
    '%s → %s: a chunk of many events is one string (one write to the client)',
    async (from, to) => {
      const whole = TRANSCRIPTS[from];
      const out = await collect(translateStream(chunked(whole, 1 << 20), from, to, meta));
      const byByte = new StreamTranslation(from, to, meta);
      let perEvent = '';
      for await (const chunk of chunked(whole, 1)) perEvent += byByte.push(chunk);
      const tail = byByte.end();
      // The chunk's events as one string, then what the source's end completes (a finish left implicit).
      expect(out).toHaveLength(tail === '' ? 1 : 2);
      const events = (text: string) => decodeSseText(to, text).then(reassemble);
      expect(await events(out.join(''))).toEqual(await events(perEvent + tail));
      expect((await events(out[0]!)).text).toBe(TEXT);
    },
  );

  it('keeps what a chunk translated before a later event of it failed, then ends in an error', async () => {
    // A decoder that refuses the event `boom`.
    const openai = codecs.openai;
    const refusing = {
      ...codecs,
      openai: {
        ...openai,
        createStreamDecoder: () => {
          const decoder = openai.createStreamDecoder();
          return {
            push: (message: SseMessage) => {
              if (message.data === 'boom') throw new Error('refused');
              return decoder.push(message);
            },
            end: () => decoder.end(),
          };
        },
      },
    };
    const head = headOf('openai');
    const translation = new StreamTranslation('openai', 'anthropic', meta, refusing);
    expect(() => translation.push(Buffer.from(`${head}data: boom\n\n`))).toThrow('refused');
    const out = translation.fail(new Error('refused'));
    const before = new StreamTranslation('openai', 'anthropic', meta).push(Buffer.from(head));
    expect(before).toContain('Héllo');
    expect(out.slice(0, before.length)).toBe(before);
    const answer = reassemble(await decodeSseText('anthropic', out));
    expect(answer.text).toBe('Héllo 👋');
    expect(answer.errors).toEqual([
      readBack502('anthropic', 'Backend stream was interrupted', 'upstream_interrupted'),
    ]);
  });

  it.each([
    [
      'openai',
      'data: {"error":{"message":"Rate limited","type":"rate_limit_exceeded","code":"rate_limit_exceeded"}}\n\n',
    ],
    [
      'anthropic',
      'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
    ],
    ['gemini', 'data: {"error":{"code":503,"message":"Overloaded","status":"UNAVAILABLE"}}\n\n'],
    [
      'responses',
      'event: error\ndata: {"type":"error","code":"server_error","message":"Overloaded","param":null,"sequence_number":9}\n\n',
    ],
  ] as const)('passes a %s upstream error event on in every protocol', async (from, errorEvent) => {
    for (const to of PROTOCOLS) {
      const source = headOf(from) + errorEvent;
      const out = (await collect(translateStream(chunked(source, 4), from, to, meta))).join('');
      const answer = reassemble(await decodeSseText(to, out));
      expect(answer.errors).toHaveLength(1);
      expect(answer.stopReason).toBeUndefined();
    }
  });

  describe('a backend that stops at max_tokens inside a tool call', () => {
    // The call's arguments as far as the backend wrote them: a file's content cut mid-line.
    const CUT_ARGS = '{"file_path":"/tmp/x.txt","content":"line one\\nline tw';
    const event = (name: string, payload: object) => `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;
    const chunk = (delta: object, finish: string | null = null) =>
      `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const CUT: Partial<Record<Protocol, string>> = {
      anthropic:
        event('message_start', {
          type: 'message_start',
          message: {
            id: 'msg_1',
            type: 'message',
            role: 'assistant',
            model: 'claude-x',
            content: [],
            usage: { input_tokens: 11, output_tokens: 1 },
          },
        }) +
        event('content_block_start', {
          type: 'content_block_start',
          index: 0,
          content_block: { type: 'text', text: '' },
        }) +
        event('content_block_delta', {
          type: 'content_block_delta',
          index: 0,
          delta: { type: 'text_delta', text: 'Writing it.' },
        }) +
        event('content_block_stop', { type: 'content_block_stop', index: 0 }) +
        event('content_block_start', {
          type: 'content_block_start',
          index: 1,
          content_block: { type: 'tool_use', id: 'toolu_1', name: 'write_file', input: {} },
        }) +
        event('content_block_delta', {
          type: 'content_block_delta',
          index: 1,
          delta: { type: 'input_json_delta', partial_json: CUT_ARGS },
        }) +
        event('content_block_stop', { type: 'content_block_stop', index: 1 }) +
        event('message_delta', {
          type: 'message_delta',
          delta: { stop_reason: 'max_tokens', stop_sequence: null },
          usage: { output_tokens: 40 },
        }) +
        event('message_stop', { type: 'message_stop' }),
      openai:
        chunk({ role: 'assistant', content: 'Writing it.' }) +
        chunk({
          tool_calls: [
            { index: 0, id: 'call_1', type: 'function', function: { name: 'write_file', arguments: '' } },
          ],
        }) +
        chunk({ tool_calls: [{ index: 0, function: { arguments: CUT_ARGS } }] }) +
        chunk({}, 'length') +
        'data: [DONE]\n\n',
    };
    const cases = (['anthropic', 'openai'] as const).flatMap((from) =>
      PROTOCOLS.filter((to) => to !== from).map((to) => [from, to] as const),
    );

    it.each(cases)('%s → %s: what came before, then the error event, never a finish', async (from, to) => {
      const out = await collect(translateStream(chunked(CUT[from]!, 7), from, to, meta));
      const answer = reassemble(await decodeSseText(to, out.join('')));
      expect(answer.text).toBe('Writing it.');
      expect(answer.stopReason).toBeUndefined();
      expect(answer.errors).toEqual([
        readBack502(
          to,
          "Backend reached its output token limit inside a tool call's arguments: the call is incomplete",
          'upstream_incomplete',
        ),
      ]);
    });

    it.each(cases)('%s → %s: the same through the synchronous translation', async (from, to) => {
      const translation = new StreamTranslation(from, to, meta);
      let out: string;
      try {
        out = translation.push(Buffer.from(CUT[from]!)) + translation.end();
      } catch (err) {
        out = translation.fail(err);
      }
      const answer = reassemble(await decodeSseText(to, out));
      expect(answer.text).toBe('Writing it.');
      expect(answer.stopReason).toBeUndefined();
      expect(answer.errors).toHaveLength(1);
    });
  });

  describe.each(PAIRS)('%s → %s, continued (resume)', (from, to) => {
    async function* cut(): AsyncGenerator<Uint8Array> {
      yield* chunked(headOf(from), 5);
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    }
    const said = TEXT.slice(0, TEXT.indexOf(' wörld'));

    it('a text-only stream cut mid-way goes on with the continuation, as one answer', async () => {
      const asked: string[] = [];
      const resume = (text: string) => {
        asked.push(text);
        const next: Protocol = from === 'gemini' ? 'anthropic' : 'gemini';
        return Promise.resolve({ source: chunked(TRANSCRIPTS[next], 7), protocol: next });
      };
      const out = await collect(translateStream(cut(), from, to, meta, undefined, undefined, resume));
      const answer = reassemble(await decodeSseText(to, out.join('')));
      expect(asked).toEqual([said]);
      expect(answer.errors).toEqual([]);
      expect(answer.text).toBe(said + TEXT);
      expect(answer.toolCalls.map((call) => call.name)).toEqual(['weather']);
      expect(answer.stopReason).toBe('tool_use');
    });

    it('no continuation: the original failure', async () => {
      const out = await collect(
        translateStream(cut(), from, to, meta, undefined, undefined, () => Promise.resolve(null)),
      );
      const answer = reassemble(await decodeSseText(to, out.join('')));
      expect(answer.text).toBe(said);
      expect(answer.errors).toEqual([
        readBack502(to, 'Backend stream was interrupted', 'upstream_interrupted'),
      ]);
    });
  });

  it('a stream that was not text only is never continued', async () => {
    const transcript = TRANSCRIPTS.openai;
    async function* cutAfterTool(): AsyncGenerator<Uint8Array> {
      yield* chunked(transcript.slice(0, transcript.indexOf('Zürich')), 5);
      throw new Error('reset');
    }
    let asked = 0;
    const resume = () => {
      asked += 1;
      return Promise.resolve(null);
    };
    const out = await collect(
      translateStream(cutAfterTool(), 'openai', 'anthropic', meta, undefined, undefined, resume),
    );
    expect(asked).toBe(0);
    expect(reassemble(await decodeSseText('anthropic', out.join(''))).errors).toHaveLength(1);
  });

  it('maps a ProxyError from the source to its status, and a body timeout to 504', async () => {
    async function* throwing(err: Error): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(0);
      throw err;
    }
    const timeoutErr = new (await import('undici')).errors.BodyTimeoutError();
    const timedOut = (await collect(translateStream(throwing(timeoutErr), 'openai', 'anthropic', meta))).join(
      '',
    );
    expect(timedOut).toContain('event: error');
    expect(reassemble(await decodeSseText('anthropic', timedOut)).errors).toEqual([
      {
        type: 'error',
        error: { status: 500, message: 'Backend stream stalled and timed out', code: 'server_error' },
      },
    ]);
    // The Anthropic wire format carries the error *type*; 504 is an api_error there.
    expect(timedOut).toContain('"type":"api_error"');
    const proxyErr = (
      await collect(translateStream(throwing(new ProxyError(429, 'Slow down')), 'openai', 'gemini', meta))
    ).join('');
    expect(JSON.parse(proxyErr.slice('data: '.length))).toEqual({
      error: { code: 429, message: 'Slow down', status: 'RESOURCE_EXHAUSTED' },
    });
  });
});
