import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arrayTailStarts } from '../pipeline/array-tail.js';
import { checkLoop, LOOP_MARKER } from '../sessions/loop-guard.js';
import { CONVERSATIONS } from './conversation.js';
import { scanJson } from './json-scan.js';
import { newestToolTurnsDiffer } from './tool-turns.js';
import type { Protocol } from './types.js';

/** No secret in these conversations: nothing to redact. */
const keep = (text: string): string => text;

/** How a string is written: as JSON.stringify writes it, with `/` as `\/`, or with `o` and `é` as `\u` escapes. */
type Spelling = 'plain' | 'slash' | 'unicode';

/** JSON text of `value`, every string value spelled by `spell` (names are written plainly). */
function encode(value: unknown, spell: () => Spelling): string {
  if (typeof value === 'string') {
    const text = JSON.stringify(value);
    const how = spell();
    if (how === 'slash') return text.replace(/\//g, '\\/');
    if (how === 'unicode') return text.replace(/o/g, '\\u006f').replace(/é/g, '\\u00e9');
    return text;
  }
  if (Array.isArray(value)) return `[${value.map((v) => encode(v, spell)).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${encode(v, spell)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

const COMMANDS = ['ls', 'npm test', 'cat a/b.ts', 'echo é'];
const OUTPUTS = ['FAIL', 'ok', 'a/b', 'é', 'line\nnext'];

/** Each protocol's turns member, a call, a result and a plain text turn of each role. */
const SHAPES: Record<
  Protocol,
  {
    member: string;
    call(command: string, i: number): unknown;
    result(output: string, i: number): unknown;
    text(text: string, assistant: boolean): unknown;
  }
> = {
  openai: {
    member: 'messages',
    call: (command, i) => ({
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: `c${i}`, type: 'function', function: { name: 'Bash', arguments: JSON.stringify({ command }) } },
      ],
    }),
    result: (output, i) =>
      i % 3 === 0
        ? { role: 'tool', tool_call_id: `c${i}`, content: [{ type: 'text', text: output }] }
        : { role: 'tool', tool_call_id: `c${i}`, content: output },
    text: (text, assistant) => ({ role: assistant ? 'assistant' : 'user', content: text }),
  },
  anthropic: {
    member: 'messages',
    call: (command, i) => ({
      role: 'assistant',
      content: [
        { type: 'text', text: 'Running it.' },
        { type: 'tool_use', id: `t${i}`, name: 'Bash', input: { command, timeout: 5 } },
      ],
    }),
    result: (output, i) => ({
      role: 'user',
      content: [{ type: 'tool_result', tool_use_id: `t${i}`, content: output }],
    }),
    text: (text, assistant) => ({
      role: assistant ? 'assistant' : 'user',
      content: [{ type: 'text', text }],
    }),
  },
  gemini: {
    member: 'contents',
    call: (command, i) => ({
      role: 'model',
      parts: [
        {
          functionCall:
            i % 4 === 0 ? { name: 'run_shell_command' } : { name: 'run_shell_command', args: { command } },
        },
      ],
    }),
    result: (output) => ({
      role: 'user',
      parts: [{ functionResponse: { name: 'run_shell_command', response: { output } } }],
    }),
    text: (text, assistant) => ({ role: assistant ? 'model' : 'user', parts: [{ text }] }),
  },
  responses: {
    member: 'input',
    call: (command, i) =>
      i % 2 === 0
        ? {
            type: 'function_call',
            call_id: `f${i}`,
            name: 'shell',
            arguments: JSON.stringify({ command: [command] }),
          }
        : { type: 'custom_tool_call', call_id: `f${i}`, name: 'shell', input: command },
    result: (output, i) =>
      i % 2 === 0
        ? { type: 'function_call_output', call_id: `f${i}`, output }
        : { type: 'custom_tool_call_output', call_id: `f${i}`, output },
    text: (text, assistant) => ({ type: 'message', role: assistant ? 'assistant' : 'user', content: text }),
  },
};

const PROTOCOLS = Object.keys(SHAPES) as Protocol[];
const FIRST_TAIL: Record<Protocol, number> = { openai: 4, anthropic: 4, gemini: 4, responses: 6 };

/** The body's bytes and what the reader says of its newest turns. */
function read(protocol: Protocol, turns: unknown[], spell: () => Spelling = () => 'plain') {
  const { member } = SHAPES[protocol];
  const bytes = Buffer.from(encode({ model: 'm', [member]: turns }, spell));
  const scan = scanJson(bytes);
  if (scan.verdict !== 'ok') throw new Error('not JSON');
  const range = scan.members.get(member)!;
  const found = arrayTailStarts(bytes, range[0], range[1], FIRST_TAIL[protocol])!;
  return { bytes, differ: newestToolTurnsDiffer(protocol, bytes, found.starts) };
}

describe('newestToolTurnsDiffer', () => {
  it.each(PROTOCOLS)('%s: an agent stepping through different calls and outputs differs', (protocol) => {
    const shape = SHAPES[protocol];
    const turns = [shape.text('go', false)];
    for (let i = 0; i < 4; i++) turns.push(shape.call(`cat file${i}`, i), shape.result(`out ${i}`, i));
    expect(read(protocol, turns).differ).toBe(true);
    expect(read(protocol, turns, () => 'unicode').differ).toBe(true);
  });

  it.each(PROTOCOLS)('%s: the same call or the same output, however spelled, does not differ', (protocol) => {
    const shape = SHAPES[protocol];
    const spellings: Spelling[] = ['slash', 'plain', 'unicode', 'slash'];
    let n = 0;
    const spell = () => spellings[n++ % spellings.length]!;
    const sameCall = [
      shape.call('cat a/b.ts', 1),
      shape.result('one', 1),
      shape.call('cat a/b.ts', 5),
      shape.result('two', 5),
    ];
    expect(read(protocol, sameCall, spell).differ).toBe(false);
    const sameOutput = [
      shape.call('ls', 1),
      shape.result('é a/b', 1),
      shape.call('pwd', 5),
      shape.result('é a/b', 5),
    ];
    expect(read(protocol, sameOutput, spell).differ).toBe(false);
  });

  it('compares text past ASCII as its UTF-8 text: bytes that are not UTF-8 read as U+FFFD, as the parser reads them', () => {
    const body = (a: number[], b: number[]) =>
      Buffer.concat([
        Buffer.from(
          '{"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"a","arguments":"1"}}]},{"role":"tool","content":"é',
        ),
        Buffer.from(a),
        Buffer.from(
          '"},{"role":"assistant","tool_calls":[{"function":{"name":"b","arguments":"2"}}]},{"role":"tool","content":"é',
        ),
        Buffer.from(b),
        Buffer.from('"}]}'),
      ]);
    const differ = (bytes: Buffer) => {
      const scan = scanJson(bytes);
      if (scan.verdict !== 'ok') throw new Error('not JSON');
      const [start, end] = scan.members.get('messages')!;
      return newestToolTurnsDiffer('openai', bytes, arrayTailStarts(bytes, start, end, 4)!.starts);
    };
    // Two different invalid bytes: one text, U+FFFD, for the parser — the same output twice.
    expect(differ(body([0xff], [0xfe]))).toBe(false);
    expect(differ(body([0xc3, 0xa9], [0xc3, 0xa8]))).toBe(true);
  });

  it('reads a repeated member name as JSON.parse does: the last one counts', () => {
    const differ = (text: string, protocol: Protocol = 'openai', member = 'messages') => {
      const bytes = Buffer.from(text);
      const scan = scanJson(bytes);
      if (scan.verdict !== 'ok') throw new Error('not JSON');
      const [start, end] = scan.members.get(member)!;
      return newestToolTurnsDiffer(protocol, bytes, arrayTailStarts(bytes, start, end, 4)!.starts);
    };
    const call = (fn: string) => `{"role":"assistant","tool_calls":[{"function":${fn}}]}`;
    const openai = (first: string, second: string) =>
      `{"messages":[${first},{"role":"tool","content":"x"},${second},{"role":"tool","content":"y"}]}`;
    // The two calls differ only in a `function` or a `tool_calls` that a later member of the name replaces.
    const same = '{"name":"Bash","arguments":"ls"}';
    expect(differ(openai(call(same), call(same)))).toBe(false);
    expect(
      differ(
        openai(
          `{"role":"assistant","tool_calls":[{"function":{"name":"a","arguments":"1"},"function":${same}}]}`,
          call(same),
        ),
      ),
    ).toBe(false);
    expect(
      differ(
        openai(
          `{"role":"assistant","tool_calls":[{"function":{"name":"a","arguments":"1"}}],"tool_calls":[{"function":${same}}]}`,
          call(same),
        ),
      ),
    ).toBe(false);
    expect(
      differ(
        openai(
          `{"role":"assistant","tool_calls":[{"function":${same}}],"tool_calls":[{"function":{"name":"a","arguments":"1"}}]}`,
          call(same),
        ),
      ),
    ).toBe(true);
    // A later `function` that is not an object leaves the call without a name: no call in that turn.
    expect(
      differ(openai(`{"role":"assistant","tool_calls":[{"function":${same},"function":null}]}`, call(same))),
    ).toBe(false);
    // Anthropic: a later `content` replaces the blocks, results included.
    const block = (command: string) => `{"type":"tool_use","name":"Bash","input":{"command":"${command}"}}`;
    const result = (text: string) => `{"role":"user","content":[{"type":"tool_result","content":"${text}"}]}`;
    const anthropic = (first: string, second: string) =>
      `{"messages":[${first},${result('x')},${second},${result('y')}]}`;
    expect(
      differ(
        anthropic(
          `{"role":"assistant","content":[${block('a')}]}`,
          `{"role":"assistant","content":[${block('b')}]}`,
        ),
        'anthropic',
      ),
    ).toBe(true);
    expect(
      differ(
        anthropic(
          `{"role":"assistant","content":[${block('a')}],"content":[${block('b')}]}`,
          `{"role":"assistant","content":[${block('b')}]}`,
        ),
        'anthropic',
      ),
    ).toBe(false);
    for (const [text, protocol] of [
      [
        openai(
          `{"role":"assistant","tool_calls":[{"function":{"name":"a","arguments":"1"},"function":${same}}]}`,
          call(same),
        ),
        'openai',
      ],
      [
        anthropic(
          `{"role":"assistant","content":[${block('a')}],"content":[${block('b')}]}`,
          `{"role":"assistant","content":[${block('b')}]}`,
        ),
        'anthropic',
      ],
    ] as const) {
      // The parser's reading of the same turns agrees: the same call twice.
      const turns = CONVERSATIONS[protocol].turns(JSON.parse(text) as Record<string, unknown>)!;
      expect(checkLoop(turns, CONVERSATIONS[protocol], 2, keep)).not.toBeUndefined();
    }
  });

  it('does not read a string that is not valid JSON: the parser reports it', () => {
    const bytes = Buffer.from(
      '{"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"a","arguments":"1"}}]},' +
        '{"role":"tool","content":"x"},{"role":"assistant","tool_calls":[{"function":{"name":"b","arguments":"2"}}]},' +
        '{"role":"tool","content":"bad \\x escape"}]}',
    );
    const range = scanJson(bytes);
    if (range.verdict !== 'ok') throw new Error('the scan checks no string values');
    const [start, end] = range.members.get('messages')!;
    expect(newestToolTurnsDiffer('openai', bytes, arrayTailStarts(bytes, start, end, 4)!.starts)).toBe(false);
    expect(() => JSON.parse(bytes.toString())).toThrow(SyntaxError);
  });

  it.each(PROTOCOLS)(
    '%s: never says "differ" of a history the guard would stop or could not decide',
    (protocol) => {
      const shape = SHAPES[protocol];
      const steered = shape.text(`${LOOP_MARKER} stop`, true);
      // Mostly a call and its result, as agents' histories go; now and then the proxy's steering or a user's word.
      const turns = fc.oneof(
        {
          arbitrary: fc
            .tuple(fc.constantFrom(...COMMANDS), fc.constantFrom(...OUTPUTS), fc.nat(7))
            .map(([c, o, i]) => [shape.call(c, i), shape.result(o, i)]),
          weight: 8,
        },
        { arbitrary: fc.constant([steered]), weight: 1 },
        { arbitrary: fc.constant([shape.text('more', false)]), weight: 1 },
      );
      let said = 0;
      fc.assert(
        fc.property(
          fc.array(turns, { maxLength: 12 }).map((list) => list.flat()),
          fc.array(fc.constantFrom<Spelling>('plain', 'slash', 'unicode'), { minLength: 1, maxLength: 8 }),
          (turns, spellings) => {
            let n = 0;
            const { bytes, differ } = read(protocol, turns, () => spellings[n++ % spellings.length]!);
            const parsed = (JSON.parse(bytes.toString()) as Record<string, unknown[]>)[shape.member]!;
            const conversation = CONVERSATIONS[protocol];
            if (!differ) return;
            said++;
            // Decided on the tail alone, and nothing for the whole conversation at any number of repeats.
            expect(
              checkLoop(parsed.slice(-FIRST_TAIL[protocol]), conversation, 2, keep, true),
            ).toBeUndefined();
            for (let repeats = 2; repeats <= 8; repeats++)
              expect(checkLoop(parsed, conversation, repeats, keep)).toBeUndefined();
          },
        ),
        { numRuns: 300 },
      );
      // The property is not vacuous: the reader said "differ" of many of the histories.
      expect(said).toBeGreaterThan(20);
    },
  );
});
