import { describe, expect, it } from 'vitest';
import { shellCommandsInScript } from './script-commands.js';
import { ShellGuard } from './shell-guard.js';
import { DEFAULT_SHELL_RULES } from './shell-rules.js';

const SHELLS = new Set(['exec_command', 'shell_command']);

describe('shellCommandsInScript', () => {
  it('reads nothing from a script that calls no shell tool', () => {
    expect(shellCommandsInScript('text("git push --force"); await tools.wait({ ms: 1 })', SHELLS)).toBe(
      undefined,
    );
    expect(shellCommandsInScript('const exec_command = "rm -rf /"; text(exec_command)', SHELLS)).toBe(
      undefined,
    );
  });

  it('reads every string literal of a script that calls one, decoded', () => {
    expect(
      shellCommandsInScript(
        [
          '// @exec: {"yield_time_ms": 1000}',
          'const r = await tools.exec_command({ cmd: \'git status\', workdir: "/repo" });',
          '/* "not a literal" */ text(`done: ${r.output} \\u0041`);',
        ].join('\n'),
        SHELLS,
      ),
    ).toEqual(['git status', '/repo', 'done: _ A']);
    expect(shellCommandsInScript('tools["shell_command"]("a\\x20b\\n" + \'c\')', SHELLS)).toEqual([
      'shell_command',
      'a b\nc',
    ]);
    expect(shellCommandsInScript('await tools?.exec_command?.("ls")', SHELLS)).toEqual(['ls']);
  });

  it('reads a list of literals as one argument vector too', () => {
    expect(
      shellCommandsInScript('tools.exec_command({ cmd: ["git", "push", "-f", "a b"] })', SHELLS),
    ).toEqual(['git', 'push', '-f', 'a b', "git push -f 'a b'"]);
  });

  it('reads an unterminated literal to its line end, skips comments, and reads strings in `${…}` whole', () => {
    expect(shellCommandsInScript('tools.exec_command("a"); x = "c" // "d', SHELLS)).toEqual(['a', 'c']);
    expect(shellCommandsInScript('tools.exec_command("rm -rf /', SHELLS)).toEqual(['rm -rf /']);
    expect(shellCommandsInScript('tools.exec_command(`a ${"}" + `${1}`} b`)', SHELLS)).toEqual(['a _ b']);
  });
});

describe("ShellGuard on Codex's code cell (exec)", () => {
  const guard = new ShellGuard({
    action: 'steer',
    rules: DEFAULT_SHELL_RULES,
    extraTools: ['run_in_terminal'],
  });
  const judge = (script: string, as: 'command' | 'input' = 'command') =>
    guard.judge('exec', JSON.stringify({ [as]: script }));

  it('watches a request offering exec', () => {
    expect(guard.watches(['wait', 'exec'])).toBe(true);
    const bytes = Buffer.from('[{"type":"custom","name":"exec"}]');
    expect(guard.namedIn(bytes, 0, bytes.length)).toBe(true);
  });

  it('stops a dangerous command the script spells, in place, in a variable or as a list', () => {
    expect(judge('await tools.exec_command({ cmd: "git push --force origin main" })')).toMatchObject({
      kind: 'replace',
      text: expect.stringContaining('I was about to run `git push --force origin main`'),
    });
    expect(judge('const c = "rm -rf /";\nawait tools.exec_command({ cmd: c });')).toMatchObject({
      text: expect.stringContaining('(rm-rf-root)'),
    });
    expect(judge('await tools.exec_command({ cmd: ["git", "reset", "--hard"] })', 'input')).toMatchObject({
      text: expect.stringContaining('I was about to run `git reset --hard`'),
    });
    // A tool named in the configuration is a shell tool to a script too.
    expect(judge('await tools.run_in_terminal({ command: "mkfs.ext4 /dev/sda" })')).toMatchObject({
      text: expect.stringContaining('(mkfs)'),
    });
  });

  it('passes a safe script and one that calls no shell tool', () => {
    expect(judge('await tools.exec_command({ cmd: "git push origin main" })')).toBe(undefined);
    expect(judge('text("never run git push --force")')).toBe(undefined);
    expect(judge('await tools.exec_command({ cmd: `rm -rf ${dir}` })')).toBe(undefined);
  });
});
