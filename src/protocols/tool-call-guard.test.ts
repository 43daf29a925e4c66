import { describe, expect, it } from 'vitest';
import type { SseMessage } from './codec.js';
import { OFFERED_TOOLS, RefusedToolCall, TOOL_CALL_GUARDS, type ToolJudge } from './tool-call-guard.js';

/** Condemns any call whose arguments mention `push --force`; `block` refuses instead. */
const judge =
  (action: 'steer' | 'block' = 'steer'): ToolJudge =>
  (name, args) =>
    args.includes('push --force')
      ? action === 'steer'
        ? { kind: 'replace', text: `stopped ${name}` }
        : { kind: 'refuse', message: `refused ${name}` }
      : undefined;

const guard = TOOL_CALL_GUARDS.responses!;

/** A Responses stream as the API sends it: one message item, then one call item; sequence numbers in order. */
function stream(call: Record<string, unknown>, argsKey: 'arguments' | 'input'): SseMessage[] {
  let seq = 0;
  const ev = (type: string, data: Record<string, unknown>): SseMessage => ({
    event: type,
    data: JSON.stringify({ type, sequence_number: seq++, ...data }),
  });
  const text = { id: 'msg_1', type: 'message', status: 'completed', role: 'assistant', content: [] };
  const kind = argsKey === 'input' ? 'custom_tool_call_input' : 'function_call_arguments';
  const value = call[argsKey] as string;
  return [
    ev('response.created', { response: { id: 'resp_1', output: [] } }),
    ev('response.output_item.added', { output_index: 0, item: text }),
    ev('response.output_item.done', { output_index: 0, item: text }),
    ev('response.output_item.added', { output_index: 1, item: { ...call, [argsKey]: '' } }),
    ev(`response.${kind}.delta`, { item_id: call.id, output_index: 1, delta: value.slice(0, 5) }),
    ev(`response.${kind}.delta`, { item_id: call.id, output_index: 1, delta: value.slice(5) }),
    ev(`response.${kind}.done`, { item_id: call.id, output_index: 1, [argsKey]: value }),
    ev('response.output_item.done', { output_index: 1, item: call }),
    ev('response.completed', { response: { id: 'resp_1', output: [text, call] } }),
  ];
}

function run(messages: SseMessage[], j: ToolJudge): SseMessage[] {
  const filter = guard.createStreamFilter(j);
  return [...messages.flatMap((m) => filter.push(m)), ...filter.end()];
}

const parsed = (messages: SseMessage[]) => messages.map((m) => JSON.parse(m.data) as Record<string, unknown>);

const EXEC = {
  id: 'fc_1',
  type: 'function_call',
  status: 'completed',
  call_id: 'call_1',
  name: 'exec_command',
  arguments: '{"cmd":"git push --force origin main"}',
};

describe('Responses tool-call guard', () => {
  it('passes a stream without a condemned call on as it came, message for message', () => {
    const safe = { ...EXEC, arguments: '{"cmd":"git push origin main"}' };
    const messages = stream(safe, 'arguments');
    expect(run(messages, judge())).toEqual(messages);
  });

  it('replaces a condemned function call in a stream by a message, numbered in order', () => {
    const out = parsed(run(stream(EXEC, 'arguments'), judge()));
    expect(out.map((e) => e.type)).toEqual([
      'response.created',
      'response.output_item.added',
      'response.output_item.done',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(out.map((e) => e.sequence_number)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const steer = {
      id: 'msg_proxy_fc_1',
      type: 'message',
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text: 'stopped exec_command', annotations: [] }],
    };
    expect(out[5]).toMatchObject({
      delta: 'stopped exec_command',
      output_index: 1,
      item_id: 'msg_proxy_fc_1',
    });
    expect(out[8]).toEqual({
      type: 'response.output_item.done',
      sequence_number: 8,
      output_index: 1,
      item: steer,
    });
    expect((out[9]!.response as { output: unknown[] }).output[1]).toEqual(steer);
  });

  it('judges a freeform (custom) tool call by its input', () => {
    const custom = {
      id: 'ctc_1',
      type: 'custom_tool_call',
      status: 'completed',
      call_id: 'call_1',
      name: 'shell',
      input: 'git push --force',
    };
    const seen: string[] = [];
    const out = parsed(
      run(stream(custom, 'input'), (name, args) => {
        seen.push(`${name} ${args}`);
        return judge()(name, args);
      }),
    );
    expect(seen).toEqual(['shell {"command":"git push --force"}']);
    expect(out.some((e) => e.type === 'response.custom_tool_call_input.delta')).toBe(false);
    expect(out.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta)).toEqual([
      'stopped shell',
    ]);
  });

  it('ends a stream with an error event under block, and passes nothing after', () => {
    const out = run(stream(EXEC, 'arguments'), judge('block'));
    expect(out.at(-1)).toEqual({
      event: 'error',
      data: JSON.stringify({
        type: 'error',
        code: 'dangerous_command',
        message: 'refused exec_command',
        param: null,
        sequence_number: 7,
      }),
    });
    expect(parsed(out).map((e) => e.type)).toEqual([
      'response.created',
      'response.output_item.added',
      'response.output_item.done',
      'error',
    ]);
  });

  it('rewrites a whole Response: function, local_shell and shell calls; refuses under block', () => {
    const localShell = {
      id: 'lsh_1',
      type: 'local_shell_call',
      call_id: 'c2',
      status: 'completed',
      action: { type: 'exec', command: ['bash', '-lc', 'git push --force'] },
    };
    const shell = {
      id: 'sh_1',
      type: 'shell_call',
      call_id: 'c3',
      action: { commands: ['ls', 'git push --force'] },
    };
    const safe = { ...EXEC, id: 'fc_2', arguments: '{"cmd":"ls"}' };
    const body = { id: 'resp_1', status: 'completed', output: [EXEC, localShell, shell, safe] };
    const seen: string[] = [];
    const out = guard.rewriteWhole(body, (name, args) => {
      seen.push(name);
      return judge()(name, args);
    });
    expect(seen).toEqual(['exec_command', 'local_shell', 'shell', 'exec_command']);
    expect((out!.output as Array<{ type: string; id: string }>).map((i) => [i.type, i.id])).toEqual([
      ['message', 'msg_proxy_fc_1'],
      ['message', 'msg_proxy_lsh_1'],
      ['message', 'msg_proxy_sh_1'],
      ['function_call', 'fc_2'],
    ]);
    expect(guard.rewriteWhole({ output: [safe] }, judge())).toBeUndefined();
    expect(() => guard.rewriteWhole(body, judge('block'))).toThrow(RefusedToolCall);
  });

  it('names the offered tools, built-in shells included', () => {
    expect(
      OFFERED_TOOLS.responses({
        tools: [
          { type: 'function', name: 'exec_command' },
          { type: 'custom', name: 'apply_patch' },
          { type: 'local_shell' },
          { type: 'shell' },
          { type: 'web_search' },
        ],
      }),
    ).toEqual(['exec_command', 'apply_patch', 'local_shell', 'shell']);
  });
});

describe('OpenAI chat tool-call guard, parallel calls', () => {
  const openai = TOOL_CALL_GUARDS.openai!;
  const chunk = (delta: Record<string, unknown>, finish: string | null = null): SseMessage => ({
    data: JSON.stringify({ id: 'c1', choices: [{ index: 0, delta, finish_reason: finish }] }),
  });
  const head = (index: number, command: string, id = `call_${index}`): Record<string, unknown> => ({
    index,
    id,
    type: 'function',
    function: { name: 'Bash', arguments: JSON.stringify({ command }) },
  });
  /** Three calls, the middle one condemned: each call whole in its own chunk, then the finish. */
  const messages = [
    chunk({ role: 'assistant', content: null, tool_calls: [head(0, 'npm test')] }),
    chunk({ tool_calls: [head(1, 'git push --force')] }),
    chunk({ tool_calls: [head(2, 'ls')] }),
    chunk({}, 'tool_calls'),
    { data: '[DONE]' },
  ];

  it('numbers the kept calls from 0 again, in order, when one is replaced', () => {
    const filter = openai.createStreamFilter(judge());
    const out = [...messages.flatMap((m) => filter.push(m)), ...filter.end()];
    expect(out.map((m) => m.data)).toEqual([
      JSON.stringify({
        id: 'c1',
        choices: [
          {
            index: 0,
            delta: { role: 'assistant', content: null, tool_calls: [head(0, 'npm test')] },
            finish_reason: null,
          },
        ],
      }),
      JSON.stringify({
        id: 'c1',
        choices: [
          {
            index: 0,
            delta: { tool_calls: [head(1, 'ls', 'call_2')] },
            finish_reason: null,
          },
        ],
      }),
      JSON.stringify({
        id: 'c1',
        choices: [{ index: 0, delta: { content: 'stopped Bash' }, finish_reason: null }],
      }),
      JSON.stringify({ id: 'c1', choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] }),
      '[DONE]',
    ]);
  });

  it('leaves the indexes alone when nothing is replaced', () => {
    const filter = openai.createStreamFilter(() => undefined);
    const out = [...messages.flatMap((m) => filter.push(m)), ...filter.end()];
    expect(out.map((m) => m.data)).toEqual(messages.map((m) => m.data));
  });
});
