/**
 * The shell commands a code cell hands to its nested shell tools (README, "Agent guardrails"). Codex's
 * default model runs no shell tool of its own: it writes JavaScript for its `exec` tool, and that script
 * calls the agent's tools as `await tools.exec_command({ cmd: "…" })`. The guard cannot run the script to
 * see which command it builds, so it reads what a script can only spell out: when the script calls a shell
 * tool at all, each of its string literals is a command the script may run (a literal joined to the next
 * with `+` is one, and a run of literals in a list, `["git", "push", "-f"]`, is read as one argument vector
 * too). A command built at run time from values the script computes is not seen; one spelled in the
 * script, in a variable or in place, is.
 */

/** `tools.name(` or `tools["name"](`: the script calls a nested tool. */
const NESTED_CALL =
  /\btools\s*(?:\?\.\s*|\.\s*)([A-Za-z_$][\w$]*)\s*(?:\?\.\s*)?\(|\btools\s*\[\s*(['"`])([\w$-]+)\2\s*\]\s*\(/g;

/** The command lines of `script` when it calls one of `shellTools`; undefined when it calls none. */
export function shellCommandsInScript(script: string, shellTools: ReadonlySet<string>): string[] | undefined {
  if (!callsShellTool(script, shellTools)) return undefined;
  const literals = stringLiterals(script);
  const lines: string[] = [];
  for (let i = 0; i < literals.length; i++) {
    // `"git push " + "--force"`: one command.
    let text = literals[i]!.text;
    let end = literals[i]!.end;
    while (i + 1 < literals.length && /^\s*\+\s*$/.test(script.slice(end, literals[i + 1]!.start))) {
      i++;
      text += literals[i]!.text;
      end = literals[i]!.end;
    }
    lines.push(text);
  }
  lines.push(...argumentVectors(script, literals));
  return lines;
}

function callsShellTool(script: string, shellTools: ReadonlySet<string>): boolean {
  for (const match of script.matchAll(NESTED_CALL)) {
    if (shellTools.has(match[1] ?? match[3]!)) return true;
  }
  return false;
}

interface Literal {
  readonly text: string;
  /** Where the literal starts (its opening quote) and ends (after its closing quote). */
  readonly start: number;
  readonly end: number;
}

/** `[ "git", 'push', "-f" ]`: literals separated by commas alone, after a `[`, as one quoted line. */
function argumentVectors(script: string, literals: readonly Literal[]): string[] {
  const vectors: string[] = [];
  for (let i = 0; i < literals.length; i++) {
    if (!/\[\s*$/.test(script.slice(Math.max(0, literals[i]!.start - 64), literals[i]!.start))) continue;
    const words = [literals[i]!.text];
    while (
      i + 1 < literals.length &&
      /^\s*,\s*$/.test(script.slice(literals[i]!.end, literals[i + 1]!.start))
    ) {
      i++;
      words.push(literals[i]!.text);
    }
    if (words.length > 1) vectors.push(words.map(shellQuoted).join(' '));
  }
  return vectors;
}

function shellQuoted(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** What a template literal's `${…}` stands for: a word the rules do not know, so `rm -rf ${dir}` is no `rm -rf /`. */
const PLACEHOLDER = '_';

/**
 * The string literals of a script — `'…'`, `"…"` and template literals (each `${…}` a placeholder word) —
 * decoded, in order, skipping comments. A regular expression literal holding a quote can throw the reading
 * off until the next quote; that only adds or loses literals, never stops the reading.
 */
function stringLiterals(script: string): Literal[] {
  const found: Literal[] = [];
  let i = 0;
  const n = script.length;
  while (i < n) {
    const c = script[i]!;
    if (c === '/' && script[i + 1] === '/') {
      const eol = script.indexOf('\n', i);
      i = eol < 0 ? n : eol + 1;
    } else if (c === '/' && script[i + 1] === '*') {
      const close = script.indexOf('*/', i + 2);
      i = close < 0 ? n : close + 2;
    } else if (c === '"' || c === "'" || c === '`') {
      const start = i;
      const read = readLiteral(script, i + 1, c);
      i = read.end;
      found.push({ text: read.text, start, end: i });
    } else {
      i++;
    }
  }
  return found;
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  n: '\n',
  t: '\t',
  r: '\r',
  b: '\b',
  f: '\f',
  v: '\v',
  0: '\0',
};

/** One literal's text from after its opening quote; `end` is after its closing quote (or the script's end). */
function readLiteral(script: string, from: number, quote: string): { text: string; end: number } {
  let text = '';
  let i = from;
  const n = script.length;
  while (i < n) {
    const c = script[i]!;
    if (c === quote) return { text, end: i + 1 };
    if (c === '\\' && i + 1 < n) {
      const escaped = readEscape(script, i + 1);
      text += escaped.text;
      i = escaped.end;
    } else if (quote === '`' && c === '$' && script[i + 1] === '{') {
      text += PLACEHOLDER;
      i = skipExpression(script, i + 2);
    } else if (c === '\n' && quote !== '`') {
      // An unterminated quote ends at its line, as the parser would refuse it there.
      return { text, end: i };
    } else {
      text += c;
      i++;
    }
  }
  return { text, end: n };
}

function readEscape(script: string, at: number): { text: string; end: number } {
  const c = script[at]!;
  if (c === 'x') {
    const hex = /^[0-9a-fA-F]{2}/.exec(script.slice(at + 1, at + 3));
    if (hex) return { text: String.fromCharCode(parseInt(hex[0], 16)), end: at + 3 };
  } else if (c === 'u') {
    const braced = /^\{([0-9a-fA-F]{1,6})\}/.exec(script.slice(at + 1, at + 9));
    if (braced) {
      const code = parseInt(braced[1]!, 16);
      if (code <= 0x10ffff) return { text: String.fromCodePoint(code), end: at + 1 + braced[0].length };
    }
    const hex = /^[0-9a-fA-F]{4}/.exec(script.slice(at + 1, at + 5));
    if (hex) return { text: String.fromCharCode(parseInt(hex[0], 16)), end: at + 5 };
  } else if (c === '\n') {
    return { text: '', end: at + 1 };
  }
  return { text: SIMPLE_ESCAPES[c] ?? c, end: at + 1 };
}

/** After a template's `${`: where its expression's closing `}` ends (strings inside it skipped whole). */
function skipExpression(script: string, from: number): number {
  let depth = 1;
  let i = from;
  const n = script.length;
  while (i < n) {
    const c = script[i]!;
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i + 1;
    else if (c === '"' || c === "'" || c === '`') {
      i = readLiteral(script, i + 1, c).end;
      continue;
    }
    i++;
  }
  return n;
}
