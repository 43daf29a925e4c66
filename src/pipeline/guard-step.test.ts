import { describe, expect, it } from 'vitest';
import { OFFERED_TOOLS } from '../protocols/tool-call-guard.js';
import { scanJson } from '../protocols/json-scan.js';
import type { Protocol } from '../protocols/types.js';
import { ShellGuard } from '../sessions/shell-guard.js';
import { DEFAULT_SHELL_RULES } from '../sessions/shell-rules.js';
import type { ChatExchange } from './exchange.js';
import { shellJudge } from './guard-step.js';
import { RequestBody } from './request-body.js';

const guard = new ShellGuard({ action: 'steer', rules: DEFAULT_SHELL_RULES, extraTools: ['my "odd" tool'] });

/** An exchange whose body is `body`'s bytes, as the chat lane hands them over (nothing parsed yet). */
function exchange(body: object): ChatExchange {
  const bytes = Buffer.from(JSON.stringify(body));
  const scan = scanJson(bytes);
  if (scan.verdict !== 'ok' || !scan.isObject) throw new Error('not a JSON object');
  const json = new RequestBody(bytes, scan.members);
  return { id: 'r1', authKeyName: 'k', json, body: undefined } as unknown as ChatExchange;
}

const fn = (name: string, description = 'a tool') => ({
  type: 'function',
  function: { name, description, parameters: { type: 'object' } },
});

/** Each protocol's tools, offering `names`. */
const TOOLS: Record<Protocol, (names: string[], description?: string) => unknown[]> = {
  openai: (names, d) => names.map((n) => fn(n, d)),
  anthropic: (names, d) => names.map((name) => ({ name, description: d, input_schema: { type: 'object' } })),
  gemini: (names, d) => [{ functionDeclarations: names.map((name) => ({ name, description: d })) }],
  responses: (names, d) =>
    names.map((name) =>
      name === 'local_shell' ? { type: 'local_shell' } : { type: 'function', name, description: d },
    ),
};

const CASES: { names: string[]; description?: string; watched: boolean }[] = [
  { names: ['Bash', 'Read'], watched: true },
  { names: ['Read', 'Write'], watched: false },
  { names: ['run_shell_command'], watched: true },
  { names: ['execute_command'], watched: true },
  // opencode's shell tool, and Codex's string-command one.
  { names: ['read', 'bash'], watched: true },
  { names: ['shell_command'], watched: true },
  { names: ['my "odd" tool'], watched: true },
  { names: ['Bashful'], watched: false },
  // A watched name inside a description is escaped text, not a tool's name.
  { names: ['Read'], description: 'Like "Bash", but reads', watched: false },
  { names: [], watched: false },
];

describe('shellJudge', () => {
  for (const protocol of Object.keys(TOOLS) as Protocol[]) {
    it(`reads the offered tools of a ${protocol} body on its bytes, as the parsed body says`, () => {
      for (const { names, description, watched } of CASES) {
        const body = { model: 'm', tools: TOOLS[protocol](names, description) };
        const ex = exchange(body);
        expect(guard.watches(OFFERED_TOOLS[protocol](body)), names.join()).toBe(watched);
        expect(shellJudge(guard, ex, protocol, body, {}) !== undefined, names.join()).toBe(watched);
        // Nothing parsed for it.
        expect(ex.json?.unparsedRange('tools')).toBeDefined();
      }
    });
  }

  it('sees the shell tool of a Responses request given as a type alone', () => {
    const body = { model: 'm', tools: TOOLS.responses(['local_shell']) };
    expect(shellJudge(guard, exchange(body), 'responses', body, {})).toBeDefined();
  });

  it('reads a body a step has changed (no bytes) through its parsed tools', () => {
    const body = { model: 'm', tools: TOOLS.openai(['Bash']) };
    const ex = { id: 'r2', authKeyName: 'k', json: undefined, body } as unknown as ChatExchange;
    expect(shellJudge(guard, ex, 'openai', body, {})).toBeDefined();
    expect(
      shellJudge(guard, ex, 'openai', { model: 'm', tools: TOOLS.openai(['Read']) }, {}),
    ).toBeUndefined();
  });

  it('judges the calls and logs each stop, without the command', () => {
    const body = { model: 'm', tools: TOOLS.openai(['Bash']) };
    const warnings: object[] = [];
    const judge = shellJudge(guard, exchange(body), 'openai', body, { warn: (obj) => warnings.push(obj) });
    expect(judge?.('Bash', JSON.stringify({ command: 'git status' }))).toBeUndefined();
    expect(judge?.('Bash', JSON.stringify({ command: 'git push --force origin main' }))?.kind).toBe(
      'replace',
    );
    expect(warnings).toEqual([{ request_id: 'r1', key: 'k', tool: 'Bash', action: 'replace' }]);
  });

  it("reads opencode's bash call: its command", () => {
    const body = { model: 'm', tools: TOOLS.openai(['bash']) };
    const judge = shellJudge(guard, exchange(body), 'openai', body, {});
    expect(judge?.('bash', JSON.stringify({ command: 'ls -la', description: 'List' }))).toBeUndefined();
    expect(judge?.('bash', JSON.stringify({ command: 'git reset --hard', description: 'Reset' }))?.kind).toBe(
      'replace',
    );
  });

  it('reads nothing of a body without tools', () => {
    const body = { model: 'm', messages: [{ role: 'user', content: 'run "Bash"' }] };
    const ex = exchange(body);
    expect(shellJudge(guard, ex, 'openai', ex.json!.fields, {})).toBeUndefined();
    expect(ex.json?.unparsedRange('messages')).toBeDefined();
  });

  it('is off without a guard', () => {
    const body = { model: 'm', tools: TOOLS.openai(['Bash']) };
    expect(shellJudge(null, exchange(body), 'openai', body, {})).toBeUndefined();
  });
});
