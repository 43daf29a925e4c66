import { ByteNeedle, holdsAny } from '../protocols/byte-needle.js';
import type { ToolJudge } from '../protocols/tool-call-guard.js';
import { shellCommandsInScript } from './script-commands.js';
import { dangerIn, type RuleContext, type ShellRule } from './shell-rules.js';

/**
 * The dangerous-command guard (README, "Agent guardrails"): which tools run shell commands, where each keeps
 * its command, and what the proxy says instead of a condemned call.
 */

type Json = Record<string, unknown>;
type CommandReader = (args: Json) => string | undefined;

function quoted(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const text: (field: string) => CommandReader = (field) => (args) =>
  typeof args[field] === 'string' ? args[field] : undefined;

/** A command given as an argument vector (`["bash", "-lc", "git push -f"]`), as one line. */
const argv: (read: (args: Json) => unknown) => CommandReader = (read) => (args) => {
  const value = read(args);
  if (typeof value === 'string') return value;
  return Array.isArray(value) && value.every((w) => typeof w === 'string')
    ? value.map(quoted).join(' ')
    : undefined;
};

const firstOf: (...readers: CommandReader[]) => CommandReader =
  (...readers) =>
  (args) => {
    for (const read of readers) {
      const line = read(args);
      if (line !== undefined) return line;
    }
    return undefined;
  };

/** Each agent's shell tool and where its command is. */
export const SHELL_TOOLS: ReadonlyMap<string, CommandReader> = new Map<string, CommandReader>([
  ['Bash', text('command')], // Claude Code
  ['shell', argv((a) => a.command)], // Codex
  [
    'exec_command',
    firstOf(
      text('cmd'),
      argv((a) => a.command),
    ),
  ], // Codex (unified exec)
  ['local_shell', argv((a) => (a.action as Json | undefined)?.command ?? a.command)], // Codex (Responses)
  ['shell_command', text('command')], // Codex (a string command)
  ['execute_command', text('command')], // Cline, Roo
  ['run_shell_command', text('command')], // Gemini CLI
  ['bash', text('command')], // opencode
]);

/**
 * Tools that run a script which calls the agent's shell tools (see script-commands.ts): Codex's code cell,
 * a freeform tool whose input is JavaScript, and where each keeps its script.
 */
export const SCRIPT_TOOLS: ReadonlyMap<string, CommandReader> = new Map<string, CommandReader>([
  ['exec', text('command')], // Codex (its default model's code cell)
]);

/** What a tool named in the configuration may keep its command in. */
const CONFIGURED_TOOL: CommandReader = firstOf(
  text('command'),
  text('cmd'),
  text('script'),
  argv((a) => a.command),
);

export interface ShellGuardOptions {
  /** `steer` replaces a condemned call with an explanation; `block` refuses the answer. */
  action: 'steer' | 'block';
  rules: readonly ShellRule[];
  /** More tool names whose calls carry shell commands (YAML `guardrails.shell.tools`). */
  extraTools: readonly string[];
}

/** Marks the proxy's text in place of a call. */
export const SHELL_MARKER = '[proxy: dangerous command]';

export class ShellGuard {
  readonly #tools: Map<string, CommandReader>;
  readonly #options: ShellGuardOptions;
  /** Each watched name as a JSON string's bytes (`"Bash"`), searched for in a request's `tools`. */
  readonly #quotedNames: readonly ByteNeedle[];

  /** The shell tools' names, as a script calls them. */
  readonly #shellNames: ReadonlySet<string>;

  constructor(options: ShellGuardOptions) {
    this.#options = options;
    this.#tools = new Map(SHELL_TOOLS);
    for (const name of options.extraTools) this.#tools.set(name, CONFIGURED_TOOL);
    this.#shellNames = new Set(this.#tools.keys());
    this.#quotedNames = [...this.#tools.keys(), ...SCRIPT_TOOLS.keys()].map(
      (name) => new ByteNeedle(JSON.stringify(name)),
    );
  }

  /** Whether any offered tool runs shell commands: only then is the answer looked at. */
  watches(toolNames: readonly string[]): boolean {
    return toolNames.some((name) => this.#tools.has(name) || SCRIPT_TOOLS.has(name));
  }

  /**
   * The same question asked of the `tools` member's bytes, unparsed: whether a watched name is there as a
   * whole JSON string (`"Bash"`; inside a description it would be `\"Bash\"`). A name that is there but is
   * not a tool's (an enum value, say) only costs the answer a look; a name a client writes with `\u`
   * escapes is not seen (the client can only evade its own guard).
   */
  namedIn(bytes: Buffer, start: number, end: number): boolean {
    return holdsAny(this.#quotedNames, bytes, start, end);
  }

  /**
   * The verdict on one call. `requestRoots`: the project roots the request states (project-root.ts), asked
   * only when a rule needs them; the call's own `workdir` (Codex, opencode) counts as one too.
   */
  judge(name: string, args: string, requestRoots: () => readonly string[] = NO_ROOTS): ReturnType<ToolJudge> {
    const read = this.#tools.get(name);
    const readScript = read === undefined ? SCRIPT_TOOLS.get(name) : undefined;
    if (read === undefined && readScript === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(args);
    } catch {
      return undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
    const given = freeformAsCommand(parsed as Json);
    const context = rootsContext(given, requestRoots);
    const lines =
      read !== undefined ? lineOf(read(given)) : scriptLines(readScript!(given), this.#shellNames);
    let line: string | undefined;
    let rule: ShellRule | undefined;
    for (const candidate of lines) {
      rule = dangerIn(candidate, this.#options.rules, context);
      if (rule !== undefined) {
        line = candidate;
        break;
      }
    }
    if (rule === undefined || line === undefined) return undefined;
    const shown = line.length > 200 ? `${line.slice(0, 200)}…` : line;
    if (this.#options.action === 'block') {
      return {
        kind: 'refuse',
        message: `Refused by the proxy's guard: \`${shown}\` (${rule.name}): ${rule.reason}.`,
      };
    }
    return {
      kind: 'replace',
      text:
        `${SHELL_MARKER} I was about to run \`${shown}\`, but the proxy stopped it (${rule.name}): ${rule.reason}. ` +
        'I will not run it. If it is really needed, the user can run it themselves.',
    };
  }
}

const NO_ROOTS = (): readonly string[] => [];

/** The call's working directory (an absolute `workdir`), then the request's roots, read once when asked. */
function rootsContext(args: Json, requestRoots: () => readonly string[]): RuleContext {
  let roots: readonly string[] | undefined;
  return {
    projectRoots: () =>
      (roots ??= [
        ...(typeof args.workdir === 'string' && args.workdir.startsWith('/') ? [args.workdir] : []),
        ...requestRoots(),
      ]),
  };
}

/**
 * A freeform (`custom`) tool's call reaches a translated backend as a function with one string argument,
 * `input` (src/protocols/responses/codec.ts); read there, its input is the command, as a Responses backend's
 * `custom_tool_call` gives it (src/protocols/tool-call-guard.ts).
 */
function freeformAsCommand(args: Json): Json {
  return typeof args.input === 'string' && args.command === undefined && Object.keys(args).length === 1
    ? { command: args.input }
    : args;
}

function lineOf(line: string | undefined): readonly string[] {
  return line === undefined ? [] : [line];
}

function scriptLines(script: string | undefined, shellNames: ReadonlySet<string>): readonly string[] {
  return script === undefined ? [] : (shellCommandsInScript(script, shellNames) ?? []);
}
