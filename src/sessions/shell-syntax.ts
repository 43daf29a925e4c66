/**
 * A shell command line as the dangerous-command guard reads it (shell-rules.ts): the simple commands it runs,
 * normalised so that spacing, quoting, wrapping and grouping do not hide what runs. A line is split into
 * simple commands at `;`, `&&`, `||`, `|`, `&`, parentheses and new lines; quotes are removed; the shell's
 * grouping and keywords (`{ … }`, `if … then … fi`, `while … do … done`, `!`) and wrappers (`sudo`,
 * `env VAR=…`, `command`, `exec`, `nohup`, `time`, `nice`, `timeout`, `xargs`) are stripped, and programs
 * lose their paths. The code a command runs is read as commands too: `bash -c '…'` / `sh -lc '…'` (any option
 * cluster with `c`), `su -c '…'`, `eval …`, command and process substitutions (`$(…)`, `` `…` ``, `<(…)`) and
 * a here-document given to a shell. A here-document given to anything else is data, as is a quoted string.
 *
 * Not a shell: what it cannot know (a variable's value, other than a `for` loop's list or an assignment's
 * word on the same line; a function's body called by name; aliases) it does not guess.
 */

/** One simple command: the program and its arguments, normalised. */
export interface SimpleCommand {
  program: string;
  args: string[];
  /**
   * The program its output is run by, when it is code to something: the next command of a pipe (`curl … |
   * sh`), the shell reading a process substitution (`sh <(curl …)`), or `eval` for a command substitution
   * whose output is run (`$(curl …)` as a command, or as a `bash -c` script).
   */
  pipesTo: string | undefined;
}

export const SHELLS: ReadonlySet<string> = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh']);

/** A word of the line with the code of its substitutions (`$(…)`, `` `…` ``, `<(…)`, `>(…)`), which runs. */
interface Word {
  kind: 'word';
  text: string;
  substitutions: string[];
}
interface Operator {
  kind: 'operator';
  text: string;
}
/** A here-document: its body, and the code of its substitutions when its delimiter is unquoted. */
interface HereDocument {
  kind: 'here-document';
  body: string;
  substitutions: string[];
}
type Token = Word | Operator | HereDocument;

/** Characters that end an unquoted word. */
const WORD_ENDS = new Set([' ', '\t', '\n', ';', '&', '|', '(', ')', '<', '>', '`']);

/**
 * How deep code inside code (`bash -c "eval '…'"`, `$(… $(…))`) is read as such; deeper substitutions are
 * read as grouping, their commands beside the others (so a long line cannot run the reader out of stack).
 */
const MAX_DEPTH = 4;

/**
 * The tokens of `line` from `start`: to its end, or — `nesting` substitutions deep — to the `)` that closes
 * the innermost (its index is `end`).
 */
function lex(line: string, start: number, nesting: number): { tokens: Token[]; end: number } {
  const tokens: Token[] = [];
  let word = '';
  let inWord = false;
  let substitutions: string[] = [];
  /** Here-documents whose bodies start after the current line. */
  const pending: Array<{ token: HereDocument; delimiter: string; tabs: boolean; quoted: boolean }> = [];
  let open = 0;
  const push = () => {
    if (inWord) tokens.push({ kind: 'word', text: word, substitutions });
    word = '';
    inWord = false;
    substitutions = [];
  };
  const operator = (text: string) => {
    push();
    tokens.push({ kind: 'operator', text });
  };
  /** A `$(…)`, `<(…)` or `>(…)` at `i`: the index of its `)`. */
  const substitution = (i: number): number => {
    if (nesting >= MAX_DEPTH) {
      // Too deep: the parenthesis goes on as grouping.
      word += line[i];
      inWord = true;
      return i;
    }
    const inner = lex(line, i + 2, nesting + 1);
    substitutions.push(line.slice(i + 2, inner.end));
    word += line.slice(i, inner.end + 1);
    inWord = true;
    return inner.end;
  };
  /** A `` `…` `` at `i`: the index of its closing backquote. */
  const backquoted = (i: number): number => {
    let end = i + 1;
    while (end < line.length && line[end] !== '`') end += line[end] === '\\' ? 2 : 1;
    substitutions.push(line.slice(i + 1, end));
    word += line.slice(i, end + 1);
    inWord = true;
    return end;
  };
  let i = start;
  for (; i < line.length; i++) {
    const c = line[i]!;
    const next = line[i + 1];
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      const close = end < 0 ? line.length : end;
      word += line.slice(i + 1, close);
      inWord = true;
      i = close;
    } else if (c === '"') {
      inWord = true;
      for (i++; i < line.length && line[i] !== '"'; i++) {
        const d = line[i]!;
        if (d === '\\' && i + 1 < line.length) word += line[++i];
        else if (d === '$' && line[i + 1] === '(') i = substitution(i);
        else if (d === '`') i = backquoted(i);
        else word += d;
      }
    } else if (c === '\\' && i + 1 < line.length) {
      // A backslash before a new line joins the lines.
      if (next !== '\n') word += next;
      inWord = inWord || next !== '\n';
      i++;
    } else if (c === '$' && next === '(') {
      i = substitution(i);
    } else if ((c === '<' || c === '>') && next === '(') {
      push();
      i = substitution(i);
    } else if (c === '`') {
      i = backquoted(i);
    } else if (c === '<' && next === '<' && line[i + 2] === '<') {
      // A here-string (`<<< word`): the word is an argument like any other.
      word += '<<<';
      inWord = true;
      i += 2;
    } else if (c === '<' && next === '<') {
      push();
      i += 2;
      const tabs = line[i] === '-';
      if (tabs) i++;
      while (line[i] === ' ' || line[i] === '\t') i++;
      let delimiter = '';
      let quoted = false;
      for (; i < line.length && !WORD_ENDS.has(line[i]!); i++) {
        if (line[i] === "'" || line[i] === '"' || line[i] === '\\') quoted = true;
        else delimiter += line[i];
      }
      i--;
      const token: HereDocument = { kind: 'here-document', body: '', substitutions: [] };
      tokens.push(token);
      pending.push({ token, delimiter, tabs, quoted });
    } else if (c === '\n') {
      operator(';');
      i = hereDocuments(line, i, pending.splice(0), nesting);
    } else if (c === ';' || c === '&' || c === '|') {
      const doubled = (c === '&' || c === '|') && next === c;
      operator(doubled ? c + c : c);
      if (doubled) i++;
    } else if (c === '(') {
      open++;
      operator(';');
    } else if (c === ')') {
      if (nesting > 0 && open === 0) {
        push();
        return { tokens, end: i };
      }
      open--;
      operator(';');
    } else if (c === ' ' || c === '\t') {
      push();
    } else {
      word += c;
      inWord = true;
    }
  }
  push();
  return { tokens, end: i };
}

/**
 * Reads the bodies of the here-documents opened on the line that ends at `newline`, in order, into their
 * tokens: the index of the last body's closing new line (where the line goes on).
 */
function hereDocuments(
  line: string,
  newline: number,
  opened: Array<{ token: HereDocument; delimiter: string; tabs: boolean; quoted: boolean }>,
  nesting: number,
): number {
  let at = newline;
  for (const { token, delimiter, tabs, quoted } of opened) {
    const body: string[] = [];
    while (at < line.length) {
      const from = at + 1;
      const end = line.indexOf('\n', from);
      at = end < 0 ? line.length : end;
      const text = tabs ? line.slice(from, at).replace(/^\t+/, '') : line.slice(from, at);
      if (text === delimiter) break;
      body.push(text);
    }
    token.body = body.join('\n');
    if (!quoted) token.substitutions = substitutionsIn(token.body, nesting);
  }
  return at;
}

/** The code of the substitutions in a text the shell expands (an unquoted here-document's body). */
function substitutionsIn(text: string, nesting: number): string[] {
  const found: string[] = [];
  if (nesting >= MAX_DEPTH) return found;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') {
      i++;
    } else if (text[i] === '$' && text[i + 1] === '(') {
      const inner = lex(text, i + 2, nesting + 1);
      found.push(text.slice(i + 2, inner.end));
      i = inner.end;
    } else if (text[i] === '`') {
      const end = text.indexOf('`', i + 1);
      const close = end < 0 ? text.length : end;
      found.push(text.slice(i + 1, close));
      i = close;
    }
  }
  return found;
}

/** Splits a command line into words, honouring quotes and backslashes; operators apart (parentheses as `;`). */
export function shellWords(line: string): string[] {
  return lex(line, 0, 0).tokens.flatMap((t) => (t.kind === 'here-document' ? [] : [t.text]));
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
/** The shell's reserved words and grouping that may stand before a command (`if rm …`, `{ rm …; }`). */
const KEYWORDS: ReadonlySet<string> = new Set([
  '{',
  '}',
  'if',
  'then',
  'else',
  'elif',
  'fi',
  'do',
  'done',
  'while',
  'until',
  '!',
]);
/** A shell's options that take the next word as their value (`bash -o pipefail -c …`). */
const SHELL_VALUE_OPTIONS: ReadonlySet<string> = new Set(['-o', '+o', '-O', '+O', '--rcfile', '--init-file']);
/** `su`'s options that take the next word as their value (`su -s /bin/sh -c …`). */
const SU_VALUE_OPTIONS: ReadonlySet<string> = new Set([
  '-s',
  '--shell',
  '-g',
  '--group',
  '-G',
  '--supp-group',
  '-w',
  '--whitelist-environment',
]);

/** The code a command is given to run: the script, and the arguments it was read from (`from` to `to`). */
interface Script {
  script: string;
  from: number;
  to: number;
}
const scriptAt = (args: readonly string[], at: number): Script | undefined =>
  at < args.length ? { script: args[at]!, from: at, to: at + 1 } : undefined;

/**
 * The script a shell is given to run (`bash -c '…'`, `bash -lc '…'`, `sh -e -c '…'`): the first operand
 * after options when one of its short option clusters holds `c`; undefined when it reads a file or stdin.
 */
function shellScript(args: readonly string[]): Script | undefined {
  let command = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--' || arg === '-') return command ? scriptAt(args, i + 1) : undefined;
    if (SHELL_VALUE_OPTIONS.has(arg)) {
      i++;
    } else if (arg.startsWith('--')) {
      // A long option without a value (`--login`, `--norc`).
    } else if ((arg.startsWith('-') || arg.startsWith('+')) && arg.length > 1) {
      if (arg.startsWith('-') && arg.includes('c')) command = true;
      // A cluster ending in `o` takes the next word (`bash -eo pipefail -c …`).
      if (arg.endsWith('o') || arg.endsWith('O')) i++;
    } else {
      return command ? scriptAt(args, i) : undefined;
    }
  }
  return undefined;
}

/** The command `su` / `runuser` run as another user: `-c '…'` (alone or ending a cluster, `-lc`), `--command`. */
function suScript(args: readonly string[]): Script | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.startsWith('--command=')) return { script: arg.slice('--command='.length), from: i, to: i + 1 };
    if (arg === '--command' || (/^-[a-zA-Z]+$/.test(arg) && arg.endsWith('c'))) return scriptAt(args, i + 1);
    if (SU_VALUE_OPTIONS.has(arg)) i++;
  }
  return undefined;
}

/** Programs that run code given in their arguments, and where it is. */
const SCRIPTS: ReadonlyMap<string, (args: readonly string[]) => Script | undefined> = new Map([
  ...[...SHELLS].map((shell) => [shell, shellScript] as const),
  ['su', suScript],
  ['runuser', suScript],
  // `eval` runs its arguments, joined, as a command line.
  ['eval', (args) => (args.length > 0 ? { script: args.join(' '), from: 0, to: args.length } : undefined)],
]);
/** Programs that run a file given as an operand as code (`sh <(curl …)`, `source <(…)`). */
const FILE_RUNNERS: ReadonlySet<string> = new Set([...SHELLS, 'source', '.']);

const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=/;

function baseName(program: string): string {
  const slash = program.lastIndexOf('/');
  return slash >= 0 && slash < program.length - 1 ? program.slice(slash + 1) : program;
}

/** One simple command's words, as the line has them, and its here-documents. */
interface Segment {
  words: Word[];
  hereDocuments: HereDocument[];
  /** Whether it pipes into the next one. */
  pipe: boolean;
}

/** The simple commands of a command line, unwrapped and normalised; the code they run included. */
export function simpleCommands(line: string, depth = 0): SimpleCommand[] {
  const segments: Segment[] = [];
  let current: Segment = { words: [], hereDocuments: [], pipe: false };
  for (const token of lex(line, 0, depth).tokens) {
    if (token.kind === 'word') current.words.push(token);
    else if (token.kind === 'here-document') current.hereDocuments.push(token);
    else {
      current.pipe = token.text === '|';
      segments.push(current);
      current = { words: [], hereDocuments: [], pipe: false };
    }
  }
  segments.push(current);

  // Values a `for` loop or an assignment gives a variable on this line (`for d in /; do rm -rf $d; done`).
  const variables = new Map<string, string[]>();
  const parsed = segments.map((segment) => {
    const words = variables.size === 0 ? segment.words : segment.words.flatMap((w) => expand(w, variables));
    bindVariables(words, variables);
    return unwrap(words);
  });

  const out: SimpleCommand[] = [];
  const inner = (code: string, runBy?: string) => {
    if (depth >= MAX_DEPTH) return;
    for (const command of simpleCommands(code, depth + 1))
      out.push(
        runBy !== undefined && command.pipesTo === undefined ? { ...command, pipesTo: runBy } : command,
      );
  };
  parsed.forEach((command, i) => {
    const segment = segments[i]!;
    const next = segment.pipe ? parsed[i + 1] : undefined;
    const script = command === undefined ? undefined : SCRIPTS.get(command.program)?.(command.args);
    const runsFiles = command !== undefined && script === undefined && FILE_RUNNERS.has(command.program);
    // Substitutions run, whatever their command; their output is code when it is the command itself, or
    // the file a shell runs. A script read again below has its own substitutions read there.
    command?.words.forEach((word, w) => {
      if (script !== undefined && w > command.at + script.from && w <= command.at + script.to) return;
      const runBy = w === command.at ? 'eval' : runsFiles && w > command.at ? command.program : undefined;
      for (const code of word.substitutions) inner(code, runBy);
    });
    if (command === undefined) for (const word of segment.words) word.substitutions.forEach((c) => inner(c));
    // A here-document is code to a shell reading it, data to anything else (but for its substitutions).
    const shellReads =
      (runsFiles && command !== undefined && SHELLS.has(command.program)) ||
      (next !== undefined && SHELLS.has(next.program));
    for (const document of segment.hereDocuments) {
      if (shellReads) inner(document.body);
      else document.substitutions.forEach((c) => inner(c));
    }
    if (command === undefined) return;
    if (script !== undefined) {
      if (depth < MAX_DEPTH) out.push(...simpleCommands(script.script, depth + 1));
      return;
    }
    out.push({ program: command.program, args: command.args, pipesTo: next?.program });
  });
  return out;
}

/** A word with a variable the line gave values to (`$d`, `${d}/x`), once per value; else the word. */
function expand(word: Word, variables: ReadonlyMap<string, string[]>): Word[] {
  const match = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/.exec(word.text);
  const values = match === null ? undefined : variables.get(match[1] ?? match[2]!);
  if (values === undefined) return [word];
  const rest = word.text.slice(match![0].length);
  return values.map((value) => ({ ...word, text: value + rest }));
}

/** Remembers what `for NAME in WORDS` and a command of assignments only (`d=/`) give a variable. */
function bindVariables(line: readonly Word[], variables: Map<string, string[]>): void {
  let start = 0;
  while (start < line.length && KEYWORDS.has(line[start]!.text)) start++;
  const words = line.slice(start);
  if (words[0]?.text === 'for' && words[2]?.text === 'in' && words[1] !== undefined) {
    variables.set(
      words[1].text,
      words.slice(3).map((w) => w.text),
    );
    return;
  }
  if (words.length === 0 || !words.every((w) => ASSIGNMENT.test(w.text))) return;
  for (const word of words) {
    const name = ASSIGNMENT.exec(word.text)![1]!;
    variables.set(name, [word.text.slice(name.length + 1)]);
  }
}

/** A simple command's program and arguments, past keywords, assignments and wrappers; `at` is its program's word. */
function unwrap(
  words: readonly Word[],
): { program: string; args: string[]; words: readonly Word[]; at: number } | undefined {
  let i = 0;
  for (;;) {
    const word = words[i]?.text;
    if (word === undefined) return undefined;
    // A program made by a substitution has no name to strip a path from.
    const name = words[i]!.substitutions.length > 0 ? word : baseName(word);
    if (ASSIGNMENT.test(word) || KEYWORDS.has(word)) {
      i++;
    } else if (WRAPPERS.has(name)) {
      i++;
      // Options of the wrapper (`sudo -u root`, `env -i`), skipped with the values of those that take one.
      const valued = WRAPPERS.get(name)!;
      while (words[i]?.text.startsWith('-')) i += valued.has(words[i]!.text) ? 2 : 1;
      i += WRAPPER_OPERANDS.get(name) ?? 0;
    } else {
      return { program: name, args: words.slice(i + 1).map((w) => w.text), words, at: i };
    }
  }
}
