import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TOOL_MARK_WORDS } from '../protocols/json-scan.js';
import type { ToolJudge } from '../protocols/tool-call-guard.js';
import { EventCheck } from './event-filter.js';
import { CALL_MARKERS, ToolCallTap } from './tool-call-tap.js';

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

describe('ToolCallTap after the event check (toolFree)', () => {
  it("searches for the words the event check looks for: every protocol's markers", () => {
    const markers = new Set(Object.values(CALL_MARKERS).flatMap((needles) => needles.map((n) => n.text)));
    expect(markers).toEqual(new Set(TOOL_MARK_WORDS.map((word) => `"${word}"`)));
  });

  it("answers the same with the check's word as without it, however the stream is cut", () => {
    const judged = (text: string, cuts: number[], told: boolean) => {
      const check = new EventCheck();
      const tap = new ToolCallTap('openai', judge);
      const bytes = Buffer.from(text);
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      let out = '';
      let from = 0;
      const write = (piece: Uint8Array | string) => {
        out += typeof piece === 'string' ? piece : Buffer.from(piece).toString('utf8');
      };
      for (const at of [...points, bytes.length]) {
        const kept = check.push(bytes.subarray(from, at));
        if (kept !== null) write(tap.see(kept, told && check.toolFree));
        from = at;
      }
      const last = check.end();
      if (last !== null) write(tap.see(last, told && check.toolFree));
      write(tap.end());
      return out;
    };
    fc.assert(
      fc.property(
        fc.constantFrom('ls -la', 'git push --force', 'echo "tool_calls"'),
        fc.array(fc.nat(), { maxLength: 8 }),
        (command, cuts) => {
          const text = stream(command);
          expect(judged(text, cuts, true)).toBe(judged(text, cuts, false));
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });
});
