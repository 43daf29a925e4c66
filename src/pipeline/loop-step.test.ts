import { describe, expect, it } from 'vitest';
import type { Protocol } from '../protocols/types.js';
import { loopStep } from './loop-step.js';

/** Seven identical tool calls and outputs, in each protocol's own shape. */
const LOOPS: Record<Protocol, Record<string, unknown>> = {
  openai: {
    messages: [
      { role: 'user', content: 'fix it' },
      ...Array.from({ length: 7 }, () => [
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'c', type: 'function', function: { name: 'Bash', arguments: '{"command":"ls"}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'c', content: 'same' },
      ]).flat(),
    ],
  },
  anthropic: {
    messages: [
      { role: 'user', content: 'fix it' },
      ...Array.from({ length: 7 }, () => [
        {
          role: 'assistant',
          content: [{ type: 'tool_use', id: 't', name: 'Bash', input: { command: 'ls' } }],
        },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'same' }] },
      ]).flat(),
    ],
  },
  gemini: {
    contents: [
      { role: 'user', parts: [{ text: 'fix it' }] },
      ...Array.from({ length: 7 }, () => [
        { role: 'model', parts: [{ functionCall: { name: 'run_shell_command', args: { command: 'ls' } } }] },
        {
          role: 'user',
          parts: [{ functionResponse: { name: 'run_shell_command', response: { out: 'same' } } }],
        },
      ]).flat(),
    ],
  },
  responses: {
    input: [
      { role: 'user', content: 'fix it' },
      ...Array.from({ length: 7 }, () => [
        { type: 'function_call', call_id: 'c', name: 'shell', arguments: '{"command":["ls"]}' },
        { type: 'function_call_output', call_id: 'c', output: 'same' },
      ]).flat(),
    ],
  },
};

describe('loopStep', () => {
  it.each(Object.keys(LOOPS) as Protocol[])('%s: steers a loop found through the byte count', (from) => {
    const body = LOOPS[from];
    const steering = loopStep(from, body, 7, Buffer.from(JSON.stringify(body)));
    expect(steering).toContain('7 times in a row');
  });

  it.each(Object.keys(LOOPS) as Protocol[])(
    '%s: does not parse a body whose bytes hold too few tool calls and outputs',
    (from) => {
      // The bytes decide alone: a body they say cannot loop is never read (here it would have looped).
      const bytes = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }));
      expect(loopStep(from, LOOPS[from], 7, bytes)).toBeUndefined();
      expect(loopStep(from, LOOPS[from], 7)).toContain('7 times in a row');
    },
  );

  it('parses once calls and outputs together reach the count, and finds no loop in three of each', () => {
    const three = { messages: (LOOPS.anthropic.messages as unknown[]).slice(0, 7) };
    const bytes = Buffer.from(JSON.stringify(three));
    expect(loopStep('anthropic', three, 7, bytes)).toBeUndefined();
    expect(loopStep('anthropic', three, 6, bytes)).toBeUndefined();
    // Three calls and three outputs: six markers, so a guard of three repeats reads the turns and steers.
    expect(loopStep('anthropic', three, 3, bytes)).toContain('3 times in a row');
  });
});
