import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ToolJudge } from '../protocols/tool-call-guard.js';
import { ToolCallTap } from './tool-call-tap.js';

const judge: ToolJudge = (name, args) =>
  args.includes('--force') ? { kind: 'replace', text: `stopped ${name}` } : undefined;

const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'x', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

/** An OpenAI stream: text, then a shell call whose arguments come in two pieces, then the finish. */
function stream(command: string): string {
  const args = JSON.stringify({ command });
  return [
    ': a comment\n\n',
    chunk({ role: 'assistant', content: 'Let me ' }),
    chunk({ content: 'push.' }),
    chunk({
      tool_calls: [{ index: 0, id: 'c1', type: 'function', function: { name: 'shell', arguments: '' } }],
    }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(0, 9) } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(9) } }] }),
    chunk({}, 'tool_calls'),
    'data: [DONE]\n\n',
  ].join('');
}

/** The stream through a tap, cut into chunks at `cuts`. */
function through(text: string, cuts: number[]): string {
  const tap = new ToolCallTap('openai', judge);
  const bytes = Buffer.from(text);
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let out = '';
  let from = 0;
  for (const at of [...points, bytes.length]) {
    const piece = tap.see(bytes.subarray(from, at));
    out += typeof piece === 'string' ? piece : Buffer.from(piece).toString('utf8');
    from = at;
  }
  return out + tap.end();
}

const events = (text: string) =>
  text
    .split('\n\n')
    .filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]')
    .map(
      (e) =>
        JSON.parse(e.slice(6)) as {
          choices: Array<{ delta: Record<string, unknown>; finish_reason: string | null }>;
        },
    );

describe('ToolCallTap', () => {
  it('passes a stream whose call is allowed on as its bytes, however it is cut', () => {
    const text = stream('git push origin main');
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 12 }), (cuts) => {
        expect(through(text, cuts)).toBe(text);
      }),
    );
  });

  it('replaces a condemned call, however the stream is cut, and keeps the text before it as its bytes', () => {
    const text = stream('git push --force');
    const whole = through(text, []);
    expect(whole.startsWith(': a comment\n\n' + chunk({ role: 'assistant', content: 'Let me ' }))).toBe(true);
    const deltas = events(whole).map((e) => e.choices[0]!);
    expect(deltas.some((d) => 'tool_calls' in d.delta)).toBe(false);
    expect(deltas.map((d) => d.delta.content ?? null).filter(Boolean)).toEqual([
      'Let me ',
      'push.',
      'stopped shell',
    ]);
    expect(deltas.at(-1)!.finish_reason).toBe('stop');
    expect(whole.endsWith('data: [DONE]\n\n')).toBe(true);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 12 }), (cuts) => {
        expect(through(text, cuts)).toBe(whole);
      }),
    );
  });

  it('passes each whole event without a call on as the same buffer, and still stops a call after them', () => {
    const tap = new ToolCallTap('openai', judge);
    const pieces = stream('git push --force')
      .split(/(?<=\n\n)/)
      .map((e) => Buffer.from(e));
    const out = pieces.map((piece) => tap.see(piece));
    // The comment and the two text events: not copied, not parsed.
    for (const i of [0, 1, 2]) expect(out[i]).toBe(pieces[i]);
    const text = out.map((o) => (typeof o === 'string' ? o : Buffer.from(o).toString('utf8'))).join('');
    const deltas = events(text + tap.end()).map((e) => e.choices[0]!);
    expect(deltas.map((d) => d.delta.content ?? null).filter(Boolean)).toEqual([
      'Let me ',
      'push.',
      'stopped shell',
    ]);
  });

  it('takes text as bytes are taken (a translated stream, decoded before translation), however it is cut', () => {
    for (const command of ['git push origin main', 'git push --force']) {
      const text = stream(command);
      const expected = through(text, []);
      fc.assert(
        fc.property(fc.array(fc.nat(), { maxLength: 12 }), (cuts) => {
          const tap = new ToolCallTap('openai', judge);
          const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
          let out = '';
          let from = 0;
          for (const at of [...points, text.length]) {
            const piece = tap.see(text.slice(from, at));
            out += typeof piece === 'string' ? piece : Buffer.from(piece).toString('utf8');
            from = at;
          }
          expect(out + tap.end()).toBe(expected);
        }),
      );
    }
    // Whole events of text without a call: the same string back, nothing held.
    const tap = new ToolCallTap('openai', judge);
    const first = chunk({ role: 'assistant', content: 'Let me ' });
    expect(tap.see(first)).toBe(first);
    expect(tap.end()).toBe('');
  });

  it('reads events ended by CRLF pairs', () => {
    const text = stream('git push --force').replaceAll('\n\n', '\r\n\r\n');
    const deltas = events(through(text, [30, 200]).replaceAll('\r\n', '\n')).map((e) => e.choices[0]!);
    expect(deltas.map((d) => d.delta.content ?? null).filter(Boolean)).toEqual([
      'Let me ',
      'push.',
      'stopped shell',
    ]);
  });

  it('refuses an event longer than the bound', () => {
    const tap = new ToolCallTap('openai', judge);
    expect(() => tap.see(Buffer.alloc(1024 * 1024 + 10, 0x61))).toThrow(/longer than/);
  });
});
