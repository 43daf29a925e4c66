import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { projectRootsIn } from './project-root.js';
import { ShellGuard } from './shell-guard.js';
import { dangerIn, DEFAULT_SHELL_RULES, NO_CONTEXT } from './shell-rules.js';

const FIXTURES = new URL('../../test/fixtures/clients/', import.meta.url);

/**
 * The last request each real agent sent (test/fixtures/clients; opencode's first names a title, no tools),
 * as the proxy received its JSON text.
 */
function lastRequest(agent: string): string {
  const dir = new URL(`${agent}/`, FIXTURES);
  const file = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .at(-1)!;
  return JSON.stringify((JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as { body: unknown }).body);
}

describe('projectRootsIn', () => {
  it.each([
    ['claude-2.1.332', '/tmp/lip-agent-claude-hwc6mP/work'],
    ['codex-0.171.0', '/tmp/lip-agent-codex-xGeaus/work'],
    ['codex-0.171.0-default', '/tmp/qa-D/work-codex-resp-main/work'],
    ['gemini-0.61.0', '/tmp/lip-agent-gemini-Ib54v1/work'],
    ['opencode-1.18.33', '/tmp/lip-agent-opencode-UGjH2S/work'],
  ])("reads %s's working directory from its recorded request", (agent, root) => {
    expect(projectRootsIn(lastRequest(agent))).toEqual([root]);
  });

  it('reads nothing from a request that states none, and no relative path', () => {
    expect(projectRootsIn(JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }))).toEqual([]);
    expect(projectRootsIn(JSON.stringify({ system: 'Working directory: work' }))).toEqual([]);
  });
});

describe('rm-rf-root with the project root known', () => {
  const context = { projectRoots: () => ['/home/u/proj'] };
  it.each([
    'rm -rf /home/u/proj',
    'rm -rf /home/u/proj/',
    "rm -fr '/home/u/proj/*'",
    'cd /home/u/proj && rm -rf /home/u/./proj',
    'rm -rf /home/u',
    'rm -rf /home',
  ])('stops %s', (line) => {
    expect(dangerIn(line, DEFAULT_SHELL_RULES, context)?.name).toBe('rm-rf-root');
    if (line.includes('/home/u/proj'))
      expect(dangerIn(line, DEFAULT_SHELL_RULES, NO_CONTEXT)).toBe(undefined);
  });

  it.each(['rm -rf /home/u/proj/build', 'rm -rf /home/u/project', 'rm -r /home/u/proj', 'rm -rf /tmp/x'])(
    'passes %s',
    (line) => {
      expect(dangerIn(line, DEFAULT_SHELL_RULES, context)).toBe(undefined);
    },
  );
});

describe("ShellGuard: a call's own working directory is a project root", () => {
  const guard = new ShellGuard({ action: 'steer', rules: DEFAULT_SHELL_RULES, extraTools: [] });

  it('stops rm -rf of the workdir a Codex call names, and asks the request only when needed', () => {
    let asked = 0;
    const roots = () => {
      asked++;
      return ['/elsewhere'];
    };
    expect(
      guard.judge('exec_command', JSON.stringify({ cmd: 'rm -rf /srv/app', workdir: '/srv/app' }), roots),
    ).toMatchObject({ kind: 'replace', text: expect.stringContaining('(rm-rf-root)') });
    expect(
      guard.judge('exec_command', JSON.stringify({ cmd: 'rm -rf /srv/app', workdir: '/srv/b' }), roots),
    ).toBe(undefined);
    expect(asked).toBe(2);
    // No absolute path to delete: the request's text is not read.
    expect(guard.judge('exec_command', JSON.stringify({ cmd: 'rm -rf build' }), roots)).toBe(undefined);
    expect(asked).toBe(2);
  });
});
