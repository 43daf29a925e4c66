import { posix } from 'node:path';
import { SHELLS, simpleCommands, type SimpleCommand } from './shell-syntax.js';

/**
 * The dangerous-command guard's rules (README, "Agent guardrails"): what a shell command in a tool call must
 * not do, each a test of one simple command as shell-syntax.ts reads it (normalised, unwrapped, the code it
 * runs included), so that spacing, quoting, wrapping and grouping do not hide a match. Paths are compared
 * normalised (`//`, `/.`, `$HOME/` and `~/` are `/` and `~`).
 */

export interface ShellRule {
  name: string;
  /** Why it is refused, for the steering message. */
  reason: string;
  matches(command: SimpleCommand, context: RuleContext): boolean;
}

/** What a rule may know of the request beyond the command. */
export interface RuleContext {
  /**
   * The project's root directories as absolute paths (the tool call's own working directory, the one the
   * agent states in its prompt: project-root.ts), read when first asked.
   */
  projectRoots(): readonly string[];
}

export const NO_CONTEXT: RuleContext = { projectRoots: () => [] };

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

const HOME = /^\$(?:HOME|\{HOME\})(?=\/|$)/;
const PWD = /^\$(?:PWD|\{PWD\})(?=\/|$)/;

/**
 * A path as the rules compare it: `$HOME` / `${HOME}` written `~` and `$PWD` / `${PWD}` written `.`, then
 * repeated slashes, `.` and `..` resolved, a trailing slash dropped (`//`, `/.`, `/tmp/..` are `/`; `~/` is
 * `~`; `./*` is `*`). An empty word is no path.
 */
export function normalisedPath(word: string): string | undefined {
  if (word === '') return undefined;
  const path = posix.normalize(word.replace(HOME, '~').replace(PWD, '.'));
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** What `rm -rf` must not be given, normalised: the root, the home directory, the project root, its parent. */
const ROOTS: ReadonlySet<string> = new Set(['/', '/*', '~', '~/*', '.', '*', '..']);
const SYSTEM_ROOTS: ReadonlySet<string> = new Set(['/', '/*']);
/** What runs code fed to it: a shell, or the programs that run a substitution's output or a file. */
const CODE_RUNNERS: ReadonlySet<string> = new Set([...SHELLS, 'eval', 'source', '.']);

/** Whether deleting `path` deletes the project at `root` (both absolute, normalised or not). */
function holdsProject(path: string, root: string): boolean {
  const project = normalisedPath(root);
  if (project === undefined) return false;
  return path === project || project.startsWith(path === '/' ? '/' : `${path}/`);
}

const isOneOf = (roots: ReadonlySet<string>) => (word: string) => {
  const path = normalisedPath(word);
  return path !== undefined && roots.has(path);
};

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
    matches: (command, context) => {
      if (command.program !== 'rm') return false;
      const f = flags(command.args);
      const recursive = f.short.has('r') || f.short.has('R') || f.long.has('recursive');
      const force = f.short.has('f') || f.long.has('force');
      if (!recursive || !force) return false;
      const ops = operands(command.args);
      if (ops.some(isOneOf(ROOTS))) return true;
      // An absolute path: the project root, what holds it, or everything in it (`/repo/*`).
      const absolute = ops.map(normalisedPath).filter((p): p is string => p?.startsWith('/') === true);
      return (
        absolute.length > 0 &&
        context
          .projectRoots()
          .some((root) =>
            absolute.some((p) => holdsProject(p.endsWith('/*') ? p.slice(0, -2) || '/' : p, root)),
          )
      );
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
    matches: (command) =>
      command.program === 'dd' &&
      command.args.some((arg) => arg.startsWith('of=') && normalisedPath(arg.slice(3))?.startsWith('/dev/')),
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
        ops.some(isOneOf(SYSTEM_ROOTS))
      );
    },
  },
  {
    name: 'curl-pipe-shell',
    reason: 'piping a download into a shell runs code nobody has read',
    matches: (command) =>
      (command.program === 'curl' || command.program === 'wget') &&
      command.pipesTo !== undefined &&
      CODE_RUNNERS.has(command.pipesTo),
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
  context: RuleContext = NO_CONTEXT,
): ShellRule | undefined {
  for (const command of simpleCommands(line)) {
    const rule = rules.find((r) => r.matches(command, context));
    if (rule !== undefined) return rule;
  }
  return undefined;
}
