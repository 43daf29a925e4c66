import { describe, expect, it } from 'vitest';
import { CONVERSATIONS } from '../protocols/conversation.js';
import { checkLoop, LOOP_MARKER } from './loop-guard.js';

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
    expect(checkLoop(history(6), openai, 7)).toBeUndefined();
    const verdict = checkLoop(history(7), openai, 7);
    expect(verdict?.kind).toBe('steer');
    expect(verdict?.kind === 'steer' && verdict.text).toContain(
      'the same tool call 7 times in a row (Bash {"command":"npm test"})',
    );
  });

  it('counts the same output coming back, whatever the calls', () => {
    const turns: unknown[] = [{ role: 'user', content: 'go' }];
    for (let i = 0; i < 7; i++) turns.push(call(`step ${i}`), result('permission denied'));
    expect(checkLoop(turns, openai, 7)?.kind).toBe('steer');
  });

  it('stops counting at a different call', () => {
    const turns = [...history(3), call('ls'), result('x'), ...history(6).slice(1)];
    expect(checkLoop(turns, openai, 7)).toBeUndefined();
  });

  it('lets the conversation go on after the steering message, and refuses the loop going on', () => {
    const steered = [
      ...history(7),
      { role: 'assistant', content: `${LOOP_MARKER} stop` },
      { role: 'user', content: 'try another way' },
    ];
    expect(checkLoop(steered, openai, 7)).toBeUndefined();
    const turns = [
      ...history(7),
      { role: 'assistant', content: `${LOOP_MARKER} stop` },
      { role: 'user', content: 'go on' },
      call('npm test'),
      result('run 8'),
    ];
    expect(checkLoop(turns, openai, 7)?.kind).toBe('refuse');
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
    expect(checkLoop(a, CONVERSATIONS.anthropic, 7)?.kind).toBe('steer');
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
    expect(checkLoop(g, CONVERSATIONS.gemini, 7)?.kind).toBe('steer');
    expect(checkLoop(g.slice(2), CONVERSATIONS.gemini, 7)).toBeUndefined();
  });
});
