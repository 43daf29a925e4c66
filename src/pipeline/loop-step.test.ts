import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONVERSATIONS } from '../protocols/conversation.js';
import { scanJson } from '../protocols/json-scan.js';
import { checkLoop, LOOP_MARKER } from '../sessions/loop-guard.js';
import type { ChatExchange } from './exchange.js';
import { loopStep } from './loop-step.js';
import { RequestBody } from './request-body.js';

/** No secret in these conversations: nothing to redact. */
const keep = (text: string): string => text;

/** An exchange whose body is `body`'s bytes, read as the chat lane hands them over (nothing parsed yet). */
function exchange(body: object): { ex: ChatExchange; json: RequestBody } {
  const bytes = Buffer.from(JSON.stringify(body));
  const scan = scanJson(bytes);
  if (scan.verdict !== 'ok') throw new Error('not JSON');
  const json = new RequestBody(bytes, scan.members);
  const ex = {
    json,
    get body() {
      return json.value;
    },
  } as unknown as ChatExchange;
  return { ex, json };
}

const call = (command: string) => ({
  role: 'assistant',
  content: null,
  tool_calls: [
    {
      id: `c-${command}`,
      type: 'function',
      function: { name: 'Bash', arguments: JSON.stringify({ command }) },
    },
  ],
});
const result = (content: string) => ({ role: 'tool', tool_call_id: 'c', content });
const steered = { role: 'assistant', content: `${LOOP_MARKER} stop` };
/** A large first turn (40 KB): the tail read backwards must never reach it when a verdict comes sooner. */
const large = { role: 'system', content: 'x'.repeat(40_000) };

/** What the guard says about a whole conversation, parsed: the reference. */
function reference(messages: unknown[], repeats: number): string | undefined {
  const verdict = checkLoop(messages, CONVERSATIONS.openai, repeats, keep);
  if (verdict?.kind === 'refuse') return `refuse: ${verdict.message}`;
  return verdict?.text;
}

function viaBytes(messages: unknown[], repeats: number): string | undefined {
  try {
    return loopStep('openai', exchange({ model: 'm', messages }).ex, repeats, keep);
  } catch (err) {
    return `refuse: ${(err as Error).message}`;
  }
}

describe('loopStep on the body bytes', () => {
  it('parses nothing of a conversation with fewer tool markers than the repeats', () => {
    const messages = [{ role: 'user', content: 'hi' }, call('ls'), result('a'), call('ls'), result('a')];
    const { ex, json } = exchange({ model: 'm', messages });
    expect(loopStep('openai', ex, 7, keep)).toBeUndefined();
    // Still unparsed: the member's range is there to read.
    expect(json.unparsedRange('messages')).toBeDefined();
  });

  it('reads only the newest turns of a long conversation whose last call differs', () => {
    const messages: unknown[] = [large, { role: 'user', content: 'go' }];
    for (let i = 0; i < 200; i++) messages.push(call(`step ${i}`), result(`out ${i}`));
    const { ex, json } = exchange({ model: 'm', messages });
    expect(loopStep('openai', ex, 7, keep)).toBeUndefined();
    expect(json.unparsedRange('messages')).toBeDefined();
  });

  it('decides a short agent conversation on its newest turns, nothing else parsed', () => {
    const messages: unknown[] = [{ role: 'user', content: 'go' }];
    for (let i = 0; i < 8; i++) messages.push(call(`cat file${i}`), result(`out ${i}`));
    const { ex, json } = exchange({ model: 'm', messages });
    expect(loopStep('openai', ex, 7, keep)).toBeUndefined();
    expect(json.unparsedRange('messages')).toBeDefined();
  });

  it('steers a run longer than the tail it reads, and refuses one that went on after the steering', () => {
    const loop = (n: number) => Array.from({ length: n }, () => [call('npm test'), result('FAIL')]).flat();
    const messages = [large, { role: 'user', content: 'go' }, ...loop(40)];
    expect(viaBytes(messages, 7)).toBe(reference(messages, 7));
    expect(viaBytes(messages, 7)).toContain('the same tool call 40 times in a row');
    const after = [large, { role: 'user', content: 'go' }, ...loop(7), steered, ...loop(30)];
    expect(viaBytes(after, 7)).toMatch(/^refuse: Tool-call loop: the same tool call 37 times/);
    expect(viaBytes(after, 7)).toBe(reference(after, 7));
  });

  it('agrees with the whole-conversation check on any history', () => {
    // Two tools, answered by id or not, outputs that say nothing, the user's and the model's words.
    const read = (path: string) => ({
      role: 'assistant',
      content: null,
      tool_calls: [{ id: `r-${path}`, type: 'function', function: { name: 'Read', arguments: path } }],
    });
    const turn = fc.oneof(
      fc.constantFrom('ls', 'npm test').map(call),
      fc.constantFrom('a', 'b').map(read),
      fc.constantFrom('FAIL', 'ok', '', ' ').map(result),
      fc
        .tuple(fc.constantFrom('r-a', 'c-ls', 'x'), fc.constantFrom('FAIL', ''))
        .map(([id, content]) => ({ role: 'tool', tool_call_id: id, content })),
      fc.constant(steered),
      fc.constant({ role: 'user', content: 'more' }),
      fc.constant({ role: 'assistant', content: 'done' }),
    );
    fc.assert(
      fc.property(
        fc.array(turn, { maxLength: 60 }),
        fc.integer({ min: 2, max: 8 }),
        fc.boolean(),
        (turns, repeats, big) => {
          const messages = big ? [large, ...turns] : turns;
          expect(viaBytes(messages, repeats)).toBe(reference(messages, repeats));
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('loopStep on turns that are not valid JSON inside a string', () => {
  it('reports the bad string as the parser does (a 400 invalid_json), as before the turns were read on bytes', () => {
    const text =
      '{"model":"m","messages":[{"role":"assistant","tool_calls":[{"function":{"name":"a","arguments":"1"}}]},' +
      '{"role":"tool","content":"x"},{"role":"assistant","tool_calls":[{"function":{"name":"b","arguments":"2"}}]},' +
      '{"role":"tool","content":"bad \\x escape"}]}';
    const bytes = Buffer.from(text);
    const scan = scanJson(bytes);
    if (scan.verdict !== 'ok') throw new Error('the scan checks no string values');
    const ex = { json: new RequestBody(bytes, scan.members) } as unknown as ChatExchange;
    expect(() => loopStep('openai', ex, 2, keep)).toThrow(SyntaxError);
  });
});
