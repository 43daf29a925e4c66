/**
 * The dangerous-command guard's rules (README, "Agent guardrails"): what a shell command in a tool call must
 * not do. A command is normalised first — split into simple commands at `;`, `&&`, `||`, `|` and new lines,
 * quotes removed, `sudo`, `env VAR=…`, `command`, `exec`, `nohup`, `time`, `nice`, `timeout`, `xargs` and
 * paths of programs stripped, `bash -c '…'` / `sh -lc '…'` (any option cluster with `c`) and `eval '…'`
 * unwrapped — so that spacing, quoting and wrapping do not hide a match.
 */

/** One simple command: the program and its arguments, normalised. */
export interface SimpleCommand {
  program: string;
  args: string[];
  /** The next simple command's program when this one pipes into it (`curl … | sh`). */
  pipesTo: string | undefined;
}

export interface ShellRule {
  name: string;
  /** Why it is refused, for the steering message. */
  reason: string;
  matches(command: SimpleCommand): boolean;
}

/** Splits a command line into words, honouring single and double quotes and backslashes; operators apart. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  const push = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== null) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      push();
    } else if (c === '\n' || c === ';' || c === '&' || c === '|' || c === '(' || c === ')' || c === '`') {
      push();
      let op = c;
      if ((c === '&' || c === '|') && line[i + 1] === c) op += line[++i];
      words.push(op === '\n' || op === '(' || op === ')' || op === '`' ? ';' : op);
    } else {
      word += c;
      inWord = true;
    }
  }
  push();
  return words;
}

/**
 * Wrappers that run the command that follows them, each with its options that take the next word as their
 * value (`sudo -u root`, `xargs -n 1`, `nice -n 5`); `timeout` also takes a duration before the command.
 */
const WRAPPERS: ReadonlyMap<string, ReadonlySet<string>> = new Map(
  Object.entries({
    sudo: ['-u', '-g', '-C', '-D', '-h', '-p', '-r', '-t', '-T', '-U'],
    doas: ['-u', '-C'],
    env: ['-u', '-C', '--unset', '--chdir'],
    command: [],
    exec: ['-a'],
    nohup: [],
    time: ['-f', '-o', '--format', '--output'],
    nice: ['-n', '--adjustment'],
    timeout: ['-s', '-k', '--signal', '--kill-after'],
    xargs: ['-a', '-d', '-E', '-I', '-L', '-n', '-P', '-s', '--arg-file', '--delimiter', '--max-args'],
  }).map(([name, options]) => [name, new Set(options)]),
);
/** Wrappers whose command comes after one operand of their own. */
const WRAPPER_OPERANDS: ReadonlyMap<string, number> = new Map([['timeout', 1]]);
const SHELLS: ReadonlySet<string> = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh']);
/** A shell's options that take the next word as their value (`bash -o pipefail -c …`). */
const SHELL_VALUE_OPTIONS: ReadonlySet<string> = new Set(['-o', '+o', '-O', '+O', '--rcfile', '--init-file']);

/**
 * The script a shell is given to run (`bash -c '…'`, `bash -lc '…'`, `sh -e -c '…'`): the first operand
 * after options when one of its short option clusters holds `c`; undefined when it reads a file or stdin.
 */
function shellScript(args: readonly string[]): string | undefined {
  let command = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--' || arg === '-') return command ? args[i + 1] : undefined;
    if (SHELL_VALUE_OPTIONS.has(arg)) {
      i++;
    } else if (arg.startsWith('--')) {
      // A long option without a value (`--login`, `--norc`).
    } else if ((arg.startsWith('-') || arg.startsWith('+')) && arg.length > 1) {
      if (arg.startsWith('-') && arg.includes('c')) command = true;
      // A cluster ending in `o` takes the next word (`bash -eo pipefail -c …`).
      if (arg.endsWith('o') || arg.endsWith('O')) i++;
    } else {
      return command ? arg : undefined;
    }
  }
  return undefined;
}
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

function baseName(program: string): string {
  const slash = program.lastIndexOf('/');
  return slash >= 0 && slash < program.length - 1 ? program.slice(slash + 1) : program;
}

/** The simple commands of a command line, unwrapped and normalised; nested `sh -c` bodies included. */
export function simpleCommands(line: string, depth = 0): SimpleCommand[] {
  const out: SimpleCommand[] = [];
  let current: string[] = [];
  const words = shellWords(line);
  const segments: Array<{ words: string[]; pipe: boolean }> = [];
  for (const word of words) {
    if (word === ';' || word === '&&' || word === '||' || word === '&' || word === '|') {
      segments.push({ words: current, pipe: word === '|' });
      current = [];
    } else {
      current.push(word);
    }
  }
  segments.push({ words: current, pipe: false });
  const parsed = segments.map((segment) => unwrap(segment.words));
  parsed.forEach((command, i) => {
    if (command === undefined) return;
    if (depth < 4 && (SHELLS.has(command.program) || command.program === 'eval')) {
      // `eval` runs its arguments, joined, as a command line.
      const script = command.program === 'eval' ? command.args.join(' ') : shellScript(command.args);
      if (script !== undefined) {
        out.push(...simpleCommands(script, depth + 1));
        return;
      }
    }
    const next = segments[i]!.pipe ? parsed[i + 1] : undefined;
    out.push({ ...command, pipesTo: next?.program });
  });
  return out;
}

function unwrap(words: string[]): Omit<SimpleCommand, 'pipesTo'> | undefined {
  let i = 0;
  for (;;) {
    const word = words[i];
    if (word === undefined) return undefined;
    const name = baseName(word);
    if (ASSIGNMENT.test(word)) {
      i++;
    } else if (WRAPPERS.has(name)) {
      i++;
      // Options of the wrapper (`sudo -u root`, `env -i`), skipped with the values of those that take one.
      const valued = WRAPPERS.get(name)!;
      while (words[i]?.startsWith('-')) i += valued.has(words[i]!) ? 2 : 1;
      i += WRAPPER_OPERANDS.get(name) ?? 0;
    } else {
      return { program: name, args: words.slice(i + 1) };
    }
  }
}

/** Short flags (`-fd` → f, d) and long flags of an argument list. */
function flags(args: string[]): { short: Set<string>; long: Set<string> } {
  const short = new Set<string>();
  const long = new Set<string>();
  for (const arg of args) {
    if (arg === '--') break;
    if (arg.startsWith('--')) long.add(arg.slice(2).split('=')[0]!);
    else if (arg.startsWith('-') && arg.length > 1) for (const c of arg.slice(1)) short.add(c);
  }
  return { short, long };
}

function operands(args: string[]): string[] {
  return args.filter((arg) => !arg.startsWith('-'));
}

const ROOTS: ReadonlySet<string> = new Set([
  '/',
  '/*',
  '~',
  '~/',
  '~/*',
  '$HOME',
  '${HOME}',
  '$HOME/',
  '.',
  './',
  './*',
  '*',
  '..',
  '$PWD',
  '${PWD}',
]);

function gitSubcommand(command: SimpleCommand): { sub: string; args: string[] } | undefined {
  if (command.program !== 'git') return undefined;
  let i = 0;
  // Global options before the subcommand (`git -C dir push`).
  while (command.args[i]?.startsWith('-')) i += command.args[i] === '-C' || command.args[i] === '-c' ? 2 : 1;
  const sub = command.args[i];
  return sub === undefined ? undefined : { sub, args: command.args.slice(i + 1) };
}

/** The default rules (README, "Agent guardrails"), each a test of one simple command. */
export const DEFAULT_SHELL_RULES: readonly ShellRule[] = [
  {
    name: 'git-push-force',
    reason: 'a force push rewrites the remote branch and can destroy other people’s work',
    matches(command) {
      const git = gitSubcommand(command);
      if (git?.sub !== 'push') return false;
      const f = flags(git.args);
      return (
        f.short.has('f') ||
        f.long.has('force') ||
        f.long.has('force-with-lease') ||
        operands(git.args).some((ref) => ref.startsWith('+'))
      );
    },
  },
  {
    name: 'git-reset-hard',
    reason: 'a hard reset throws away uncommitted work',
    matches: (command) => {
      const git = gitSubcommand(command);
      return git?.sub === 'reset' && flags(git.args).long.has('hard');
    },
  },
  {
    name: 'git-clean-force',
    reason: 'git clean -fd deletes untracked files for good',
    matches: (command) => {
      const git = gitSubcommand(command);
      if (git?.sub !== 'clean') return false;
      const f = flags(git.args);
      return (f.short.has('f') || f.long.has('force')) && (f.short.has('d') || f.short.has('x'));
    },
  },
  {
    name: 'rm-rf-root',
    reason: 'rm -rf of /, the home directory or the project root deletes everything in it',
    matches: (command) => {
      if (command.program !== 'rm') return false;
      const f = flags(command.args);
      const recursive = f.short.has('r') || f.short.has('R') || f.long.has('recursive');
      const force = f.short.has('f') || f.long.has('force');
      return recursive && force && operands(command.args).some((target) => ROOTS.has(target));
    },
  },
  {
    name: 'mkfs',
    reason: 'mkfs formats a file system',
    matches: (command) => command.program === 'mkfs' || command.program.startsWith('mkfs.'),
  },
  {
    name: 'dd-to-device',
    reason: 'dd onto a device overwrites a disk',
    matches: (command) => command.program === 'dd' && command.args.some((arg) => arg.startsWith('of=/dev/')),
  },
  {
    name: 'chmod-777-root',
    reason: 'chmod -R 777 / opens every file of the system to everyone',
    matches: (command) => {
      if (command.program !== 'chmod') return false;
      const f = flags(command.args);
      const ops = operands(command.args);
      return (
        (f.short.has('R') || f.long.has('recursive')) &&
        ops.includes('777') &&
        ops.some((t) => t === '/' || t === '/*')
      );
    },
  },
  {
    name: 'curl-pipe-shell',
    reason: 'piping a download into a shell runs code nobody has read',
    matches: (command) =>
      (command.program === 'curl' || command.program === 'wget') &&
      command.pipesTo !== undefined &&
      SHELLS.has(command.pipesTo),
  },
];

/**
 * A rule from the configuration: a regular expression tested against each normalised simple command,
 * written as `program arg arg…` (quotes gone, wrappers stripped, programs without their path).
 */
export function patternRule(spec: { name: string; pattern: string; reason: string }): ShellRule {
  const pattern = new RegExp(spec.pattern);
  return {
    name: spec.name,
    reason: spec.reason,
    matches: (command) => pattern.test([command.program, ...command.args].join(' ')),
  };
}

/** The first rule a command line breaks, or undefined. */
export function dangerIn(
  line: string,
  rules: readonly ShellRule[] = DEFAULT_SHELL_RULES,
): ShellRule | undefined {
  for (const command of simpleCommands(line)) {
    const rule = rules.find((r) => r.matches(command));
    if (rule !== undefined) return rule;
  }
  return undefined;
}
