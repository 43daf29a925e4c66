import { describe, expect, it } from 'vitest';
import { flatToolName, flattenTools } from './tool-namespaces.js';

/** Codex 0.171's default model, as recorded (test/fixtures/clients/codex-0.171.0-default): trimmed. */
const CODEX_DEFAULT = {
  model: 'gpt-6.2-sol',
  input: [
    {
      type: 'additional_tools',
      role: 'developer',
      tools: [
        {
          type: 'namespace',
          name: 'functions',
          tools: [
            {
              type: 'custom',
              name: 'exec',
              format: { type: 'grammar', syntax: 'lark', definition: 'start: /.+/' },
            },
            { type: 'function', name: 'wait', parameters: { type: 'object' } },
          ],
        },
        { type: 'namespace', name: 'clock', tools: [{ type: 'function', name: 'sleep', parameters: {} }] },
      ],
    },
    { type: 'message', role: 'user', content: 'hi' },
  ],
};

type Tool = Record<string, unknown>;

describe('flattenTools', () => {
  it('leaves an entry that is no object as it came, for the decoder to refuse by name', () => {
    expect(flattenTools({ tools: [null] }).tools).toEqual([null]);
    expect(flattenTools({ tools: [null, { type: 'namespace', name: 'n', tools: [] }] }).tools).toEqual([
      null,
    ]);
  });

  it('gives a request without namespaces its own tools, not a copy', () => {
    const tools = [{ type: 'function', name: 'a' }];
    const flat = flattenTools({ tools, input: 'hi' });
    expect(flat.tools).toBe(tools);
    expect(flat.namespaced.size).toBe(0);
  });

  it("lifts Codex's additional_tools: the default namespace's names bare, the others prefixed", () => {
    const before = JSON.stringify(CODEX_DEFAULT);
    const flat = flattenTools(CODEX_DEFAULT);
    expect((flat.tools as Tool[]).map((t) => [t.type, t.name])).toEqual([
      ['custom', 'exec'],
      ['function', 'wait'],
      ['function', 'clock__sleep'],
    ]);
    expect([...flat.namespaced]).toEqual([['clock__sleep', { namespace: 'clock', name: 'sleep' }]]);
    // The client's objects are not changed.
    expect(JSON.stringify(CODEX_DEFAULT)).toBe(before);
  });

  it('keeps the first of a name given twice (the same tools replayed in a later turn)', () => {
    const again = { ...CODEX_DEFAULT, input: [CODEX_DEFAULT.input[0], ...CODEX_DEFAULT.input] };
    expect((flattenTools(again).tools as Tool[]).map((t) => t.name)).toEqual([
      'exec',
      'wait',
      'clock__sleep',
    ]);
    const both = flattenTools({
      tools: [{ type: 'function', name: 'wait', description: 'mine' }],
      input: again.input,
    });
    expect((both.tools as Tool[]).map((t) => [t.name, t.description])).toEqual([
      ['wait', 'mine'],
      ['exec', undefined],
      ['clock__sleep', undefined],
    ]);
  });

  it('names a call of a namespace as the backend was told it', () => {
    expect(flatToolName(undefined, 'exec')).toBe('exec');
    expect(flatToolName('functions', 'exec')).toBe('exec');
    expect(flatToolName('collaboration', 'spawn_agent')).toBe('collaboration__spawn_agent');
  });
});
