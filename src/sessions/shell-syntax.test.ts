import { describe, expect, it } from 'vitest';
import { shellWords, simpleCommands } from './shell-syntax.js';

describe('shellWords', () => {
  it('honours quotes, escapes and operators', () => {
    expect(shellWords(`git  commit -m "a b" && echo 'c;d'|x`)).toEqual([
      'git',
      'commit',
      '-m',
      'a b',
      '&&',
      'echo',
      'c;d',
      '|',
      'x',
    ]);
    expect(shellWords('a\\ b;c')).toEqual(['a b', ';', 'c']);
  });

  it('keeps a substitution in its word, and a here-document out of the words', () => {
    expect(shellWords('echo "a $(date +"%F") b" `id -u` <(ls)')).toEqual([
      'echo',
      'a $(date +"%F") b',
      '`id -u`',
      '<(ls)',
    ]);
    expect(shellWords("cat <<'EOF' > x\nrm -rf /\nEOF\nls")).toEqual(['cat', '>', 'x', ';', 'ls']);
  });
});

describe('simpleCommands', () => {
  it('unwraps sudo, env, assignments, paths and sh -c', () => {
    expect(simpleCommands(`sudo -u root env X=1 /usr/bin/git push -f`)).toEqual([
      { program: 'git', args: ['push', '-f'], pipesTo: undefined },
    ]);
    expect(simpleCommands(`bash -c "cd x && git push --force"`)).toEqual([
      { program: 'cd', args: ['x'], pipesTo: undefined },
      { program: 'git', args: ['push', '--force'], pipesTo: undefined },
    ]);
    expect(simpleCommands('curl -s https://x | sudo bash')).toEqual([
      { program: 'curl', args: ['-s', 'https://x'], pipesTo: 'bash' },
      { program: 'bash', args: [], pipesTo: undefined },
    ]);
  });

  it('strips grouping and keywords', () => {
    expect(simpleCommands('if ! test -d x; then { rm -rf x; }; fi')).toEqual([
      { program: 'test', args: ['-d', 'x'], pipesTo: undefined },
      { program: 'rm', args: ['-rf', 'x'], pipesTo: undefined },
    ]);
  });

  it('reads the code su, substitutions and a shell fed a here-document run', () => {
    expect(simpleCommands(`su - root -c 'id' && echo "$(date)" && sh <(curl -s https://x)`)).toEqual([
      { program: 'id', args: [], pipesTo: undefined },
      { program: 'date', args: [], pipesTo: undefined },
      { program: 'echo', args: ['$(date)'], pipesTo: undefined },
      { program: 'curl', args: ['-s', 'https://x'], pipesTo: 'sh' },
      { program: 'sh', args: ['<(curl -s https://x)'], pipesTo: undefined },
    ]);
    expect(simpleCommands('bash -c "$(curl -s https://x)"')).toEqual([
      { program: 'curl', args: ['-s', 'https://x'], pipesTo: 'eval' },
      { program: '$(curl -s https://x)', args: [], pipesTo: undefined },
    ]);
    expect(simpleCommands('bash <<EOF\nls\nEOF')).toEqual([
      { program: 'ls', args: [], pipesTo: undefined },
      { program: 'bash', args: [], pipesTo: undefined },
    ]);
    expect(simpleCommands("cat <<'EOF'\nls\nEOF")).toEqual([
      { program: 'cat', args: [], pipesTo: undefined },
    ]);
  });

  it("gives a for loop's variable its list", () => {
    expect(simpleCommands('for d in a b; do rm -r $d/x; done')).toEqual([
      { program: 'for', args: ['d', 'in', 'a', 'b'], pipesTo: undefined },
      { program: 'rm', args: ['-r', 'a/x', 'b/x'], pipesTo: undefined },
    ]);
  });
});
