import { describe, expect, it } from 'vitest';
import { CONVERSATIONS } from '../protocols/conversation.js';
import { Redactor } from '../redaction/redactor.js';
import { checkLoop, LOOP_MARKER } from './loop-guard.js';

/** No secret in these conversations: nothing to redact. */
const keep = (text: string): string => text;

const call = (command: string) => ({
  role: 'assistant',
  content: null,
  tool_calls: [
    { id: 'c', type: 'function', function: { name: 'Bash', arguments: JSON.stringify({ command }) } },
  ],
});
const result = (content: string) => ({ role: 'tool', tool_call_id: 'c', content });

function history(n: number, sameOutput = false): unknown[] {
  const turns: unknown[] = [{ role: 'user', content: 'fix the build' }];
  for (let i = 0; i < n; i++) turns.push(call('npm test'), result(sameOutput ? 'FAIL' : `run ${i}`));
  return turns;
}

describe('checkLoop', () => {
  const openai = CONVERSATIONS.openai;

  it('lets six repeats through and steers the seventh', () => {
    expect(checkLoop(history(6), openai, 7, keep)).toBeUndefined();
    const verdict = checkLoop(history(7), openai, 7, keep);
    expect(verdict?.kind).toBe('steer');
    expect(verdict?.kind === 'steer' && verdict.text).toContain(
      'the same tool call 7 times in a row (Bash {"command":"npm test"})',
    );
  });

  it('quotes the repeated call with the secrets in it masked before it is cut short', () => {
    const secret = 'opaque-secret-key-0123456789abcdefghij';
    const redactor = new Redactor([secret]);
    const turns: unknown[] = [{ role: 'user', content: 'go' }];
    // The call as quoted: `Bash {"command":"curl -H 'k: ` (30 characters), the padding, then the secret
    // across the cut at 120.
    const command = `curl -H 'k: ${'p'.repeat(80)}${secret}' x`;
    for (let i = 0; i < 7; i++) turns.push(call(command), result(`run ${i}`));
    const verdict = checkLoop(turns, openai, 7, (text) => redactor.redact(text));
    expect(verdict?.kind === 'steer' && verdict.text).toContain(
      `(Bash {"command":"curl -H 'k: ${'p'.repeat(80)}****' x"})`,
    );
  });

  it('counts the same output coming back, whatever the calls', () => {
    const turns: unknown[] = [{ role: 'user', content: 'go' }];
    for (let i = 0; i < 7; i++) turns.push(call(`step ${i}`), result('permission denied'));
    expect(checkLoop(turns, openai, 7, keep)?.kind).toBe('steer');
  });

  it('does not count outputs that say nothing: different calls that all print nothing are no loop', () => {
    const turns: unknown[] = [{ role: 'user', content: 'make the dirs' }];
    for (let i = 0; i < 7; i++) turns.push(call(`mkdir -p dir${i}`), result(i % 2 === 0 ? '' : ' \n'));
    expect(checkLoop(turns, openai, 7, keep)).toBeUndefined();
    // Each protocol's way of writing nothing.
    const a: unknown[] = [];
    const g: unknown[] = [];
    for (let i = 0; i < 7; i++) {
      a.push(
        {
          role: 'assistant',
          content: [{ type: 'tool_use', id: `t${i}`, name: 'Bash', input: { command: `mkdir d${i}` } }],
        },
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: `t${i}`, content: [{ type: 'text', text: '' }] }],
        },
      );
      g.push(
        {
          role: 'model',
          parts: [{ functionCall: { name: 'run_shell_command', args: { command: `mkdir d${i}` } } }],
        },
        {
          role: 'user',
          parts: [{ functionResponse: { name: 'run_shell_command', response: { output: '' } } }],
        },
      );
    }
    expect(checkLoop(a, CONVERSATIONS.anthropic, 7, keep)).toBeUndefined();
    expect(checkLoop(g, CONVERSATIONS.gemini, 7, keep)).toBeUndefined();
  });

  it('counts the same output only from the same tool', () => {
    const named = (name: string, id: string) => ({
      role: 'assistant',
      content: null,
      tool_calls: [{ id, type: 'function', function: { name, arguments: `{"n":"${id}"}` } }],
    });
    const turns: unknown[] = [{ role: 'user', content: 'look around' }];
    for (let i = 0; i < 7; i++) {
      const id = `c${i}`;
      turns.push(named(i % 2 === 0 ? 'Read' : 'Grep', id), {
        role: 'tool',
        tool_call_id: id,
        content: 'No such file',
      });
    }
    expect(checkLoop(turns, openai, 7, keep)).toBeUndefined();
    // Parallel calls answered in turn: each result is the tool's whose call has its id.
    const parallel: unknown[] = [{ role: 'user', content: 'look around' }];
    for (let i = 0; i < 7; i++) {
      parallel.push(
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: `r${i}`, type: 'function', function: { name: 'Read', arguments: `{"path":"a${i}"}` } },
            { id: `g${i}`, type: 'function', function: { name: 'Grep', arguments: `{"q":"b${i}"}` } },
          ],
        },
        { role: 'tool', tool_call_id: `r${i}`, content: 'No such file' },
        { role: 'tool', tool_call_id: `g${i}`, content: 'No such file' },
      );
    }
    expect(checkLoop(parallel, openai, 7, keep)).toBeUndefined();
    expect(checkLoop(parallel, openai, 2, keep)).toBeUndefined();
  });

  it('tells the tool of a result by its call id, and still counts the same output from the same tool', () => {
    // Two calls of one answer, answered in the other order, every output the same: two tools, no loop.
    const items: unknown[] = [{ type: 'message', role: 'user', content: 'build it' }];
    const failed = 'make: *** No rule to make target';
    for (let i = 0; i < 7; i++) {
      items.push(
        {
          type: 'function_call',
          call_id: `a${i}`,
          name: 'shell',
          arguments: `{"command":["make","-j${i}"]}`,
        },
        { type: 'function_call', call_id: `b${i}`, name: 'read_file', arguments: `{"path":"log${i}"}` },
        { type: 'function_call_output', call_id: `b${i}`, output: failed },
        { type: 'function_call_output', call_id: `a${i}`, output: failed },
      );
    }
    expect(checkLoop(items, CONVERSATIONS.responses, 7, keep)).toBeUndefined();
    // shell alone, different arguments, the same output 7 times: a loop.
    const shellOnly = items.filter((item) => {
      const id = (item as { call_id?: string }).call_id;
      return id === undefined || id.startsWith('a');
    });
    expect(checkLoop(shellOnly, CONVERSATIONS.responses, 7, keep)).toEqual({
      kind: 'steer',
      text:
        `${LOOP_MARKER} This conversation has made the same tool output back 7 times in a row; repeating it ` +
        'will not give a different result. Stop and reconsider: read the last output carefully, try a ' +
        'different approach, or ask the user for help.',
    });
  });

  it('leaves a tail undecided when the call a result answers may be older than it', () => {
    const grep = (id: string, q: string) => ({
      role: 'assistant',
      content: null,
      tool_calls: [{ id, type: 'function', function: { name: 'Grep', arguments: q } }],
    });
    const turns = [
      { role: 'user', content: 'look' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'x', type: 'function', function: { name: 'Bash', arguments: '{}' } },
          { id: 'r', type: 'function', function: { name: 'Read', arguments: '{}' } },
          { id: 'g', type: 'function', function: { name: 'Grep', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'x', content: 'ok' },
      { role: 'tool', tool_call_id: 'r', content: 'No such file' },
      { role: 'tool', tool_call_id: 'g', content: 'No such file' },
      grep('h', '1'),
      { role: 'tool', tool_call_id: 'h', content: 'No such file' },
      grep('k', '2'),
      { role: 'tool', tool_call_id: 'k', content: 'No such file' },
    ];
    // Grep's output three times in a row; Read's before it is another tool's.
    expect(checkLoop(turns, openai, 3, keep)?.kind).toBe('steer');
    expect(checkLoop(turns, openai, 3, keep, true)).toMatchObject({ kind: 'steer' });
    // Without the answer that holds call 'g', its result's tool cannot be told: not "no loop".
    expect(checkLoop(turns.slice(2), openai, 3, keep, true)).toBe('undecided');
  });

  it('stops counting at a different call', () => {
    const turns = [...history(3), call('ls'), result('x'), ...history(6).slice(1)];
    expect(checkLoop(turns, openai, 7, keep)).toBeUndefined();
  });

  it('lets the conversation go on after the steering message, and refuses the same run going on', () => {
    const steered = [
      ...history(7),
      { role: 'assistant', content: `${LOOP_MARKER} stop` },
      { role: 'user', content: 'try another way' },
    ];
    expect(checkLoop(steered, openai, 7, keep)).toBeUndefined();
    // The agent calls on after the warning, no word from the user in between: the same run, refused.
    const turns = [
      ...history(7),
      { role: 'assistant', content: `${LOOP_MARKER} stop` },
      call('npm test'),
      result('run 8'),
    ];
    expect(checkLoop(turns, openai, 7, keep)).toEqual({
      kind: 'refuse',
      message:
        'Tool-call loop: the same tool call 8 times in a row (Bash {"command":"npm test"}), and it went on after ' +
        "the proxy's warning. Change the approach or start a new session.",
    });
  });

  it('ends a run at a user turn: after the steering message the user starts a new one', () => {
    const steer = { role: 'assistant', content: `${LOOP_MARKER} stop` };
    const turns: unknown[] = [...history(7), steer, { role: 'user', content: 'go on' }];
    // One more of the same call is the new run's first, not the old one going on; and so on to six.
    for (let n = 1; n <= 6; n++) {
      turns.push(call('npm test'), result(`again ${n}`));
      expect(checkLoop(turns, openai, 7, keep)).toBeUndefined();
    }
    // The seventh of the new run is steered again, not refused.
    turns.push(call('npm test'), result('again 7'));
    expect(checkLoop(turns, openai, 7, keep)?.kind).toBe('steer');
  });

  it('forgets a loop the model ended with its answer and the user moved on from', () => {
    const turns: unknown[] = [{ role: 'user', content: 'do it' }];
    for (let i = 0; i < 7; i++) turns.push(call('ls -la'), result(`total ${i}`));
    expect(checkLoop(turns, openai, 7, keep)?.kind).toBe('steer');
    const answered = [...turns, { role: 'assistant', content: 'All done: the directory is listed.' }];
    expect(checkLoop(answered, openai, 7, keep)).toBeUndefined();
    const moved = [...answered, { role: 'user', content: 'thanks. now explain what a monad is' }];
    expect(checkLoop(moved, openai, 7, keep)).toBeUndefined();
    // The same call once more after the user's word: the first of a new run.
    expect(checkLoop([...moved, call('ls -la'), result('total 7')], openai, 7, keep)).toBeUndefined();
  });

  it('counts the same output run by run too', () => {
    const turns: unknown[] = [{ role: 'user', content: 'go' }];
    for (let i = 0; i < 4; i++) turns.push(call(`step ${i}`), result('permission denied'));
    turns.push({ role: 'user', content: 'try again' });
    for (let i = 0; i < 6; i++) turns.push(call(`other ${i}`), result('permission denied'));
    expect(checkLoop(turns, openai, 7, keep)).toBeUndefined();
    turns.push(call('other 6'), result('permission denied'));
    expect(checkLoop(turns, openai, 7, keep)).toMatchObject({ kind: 'steer' });
  });

  it('ends runs the same way in every protocol', () => {
    const anthropicCall = (i: number) => ({
      role: 'assistant',
      content: [
        { type: 'text', text: 'Listing.' },
        { type: 'tool_use', id: `t${i}`, name: 'Bash', input: { command: 'ls -la' } },
      ],
    });
    // Claude Code writes its reminders beside tool results: still a tool-result turn, not the user's word.
    const anthropicResult = (i: number) => ({
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: `t${i}`, content: `total ${i}` },
        { type: 'text', text: '<system-reminder>keep going</system-reminder>' },
      ],
    });
    const geminiCall = () => ({
      role: 'model',
      parts: [{ functionCall: { name: 'run_shell_command', args: { command: 'ls' } } }],
    });
    const geminiResult = (i: number) => ({
      role: 'user',
      parts: [{ functionResponse: { name: 'run_shell_command', response: { output: `total ${i}` } } }],
    });
    // The Responses API: the model's words, its reasoning and its call are items of one answer.
    const responsesCall = (i: number) => [
      { type: 'reasoning', summary: [] },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Listing again.' }] },
      { type: 'function_call', call_id: `f${i}`, name: 'shell', arguments: '{"command":["ls"]}' },
    ];
    const responsesResult = (i: number) => ({
      type: 'function_call_output',
      call_id: `f${i}`,
      output: `total ${i}`,
    });
    const cases = [
      {
        reader: CONVERSATIONS.anthropic,
        loop: Array.from({ length: 7 }, (_, i) => [anthropicCall(i), anthropicResult(i)]).flat(),
        answer: { role: 'assistant', content: [{ type: 'text', text: 'All done.' }] },
        user: { role: 'user', content: [{ type: 'text', text: 'thanks' }] },
      },
      {
        reader: CONVERSATIONS.gemini,
        loop: Array.from({ length: 7 }, (_, i) => [geminiCall(), geminiResult(i)]).flat(),
        answer: { role: 'model', parts: [{ text: 'All done.' }] },
        user: { role: 'user', parts: [{ text: 'thanks' }] },
      },
      {
        reader: CONVERSATIONS.responses,
        loop: Array.from({ length: 7 }, (_, i) => [...responsesCall(i), responsesResult(i)]).flat(),
        answer: { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'All done.' }] },
        user: { type: 'message', role: 'user', content: 'thanks' },
      },
    ];
    for (const { reader, loop, answer, user } of cases) {
      expect(checkLoop(loop, reader, 7, keep)?.kind).toBe('steer');
      expect(checkLoop([...loop, answer], reader, 7, keep)).toBeUndefined();
      expect(checkLoop([...loop, user], reader, 7, keep)).toBeUndefined();
      expect(checkLoop([...loop, answer, user], reader, 7, keep)).toBeUndefined();
    }
  });

  it('reads Anthropic and Gemini turns too', () => {
    const a: unknown[] = [];
    for (let i = 0; i < 7; i++) {
      a.push({
        role: 'assistant',
        content: [{ type: 'tool_use', id: `t${i}`, name: 'Bash', input: { command: 'ls' } }],
      });
      a.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: `t${i}`, content: `out ${i}` }] });
    }
    expect(checkLoop(a, CONVERSATIONS.anthropic, 7, keep)?.kind).toBe('steer');
    const g: unknown[] = [];
    for (let i = 0; i < 7; i++) {
      g.push({
        role: 'model',
        parts: [{ functionCall: { name: 'run_shell_command', args: { command: 'ls' } } }],
      });
      g.push({
        role: 'user',
        parts: [{ functionResponse: { name: 'run_shell_command', response: { output: `${i}` } } }],
      });
    }
    expect(checkLoop(g, CONVERSATIONS.gemini, 7, keep)?.kind).toBe('steer');
    expect(checkLoop(g.slice(2), CONVERSATIONS.gemini, 7, keep)).toBeUndefined();
  });
});
