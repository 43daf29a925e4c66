/**
 * In-chat commands (README, "In-chat commands"): a user message that starts with the command prefix (`!/`
 * by default) carries commands — `!/help`, `!/set(model=…)`, `!/set(temperature=…)`, `!/set(reasoning=…)`,
 * `!/unset(…)`, `!/oneoff(backend:model)`, `!/route(name)`, `!/session` — several in a row, then optional
 * text that goes on to the model. This module only reads them; what they do is `session-step.ts`'s.
 */
import type { ReasoningSetting } from '../protocols/reasoning.js';
import { redactedExcerpt, type Redact } from '../redaction/excerpt.js';

/** The levels `!/set(reasoning=…)` takes: rows of the one reasoning table, or off. */
export type ReasoningLevel = ReasoningSetting;

/** A session's settings, as the commands set them. */
export interface SessionSettings {
  model?: string | undefined;
  temperature?: number | undefined;
  reasoning?: ReasoningLevel | undefined;
  /** A model for the next request only. */
  oneoff?: string | undefined;
}

export type SettingName = 'model' | 'temperature' | 'reasoning';

export type Command =
  | { name: 'help' }
  | { name: 'session' }
  | { name: 'set'; values: Pick<SessionSettings, SettingName> }
  | { name: 'unset'; settings: SettingName[] }
  | { name: 'oneoff'; model: string }
  | { name: 'route'; route: string };

export type ParsedCommands = { ok: true; commands: Command[]; rest: string } | { ok: false; error: string };

/** The valid forms, for `!/help` and for the reply to a command that is not one of them. */
export function commandForms(prefix: string): string[] {
  return [
    `${prefix}help — this list`,
    `${prefix}set(model=backend:model) — use this model for the rest of the session`,
    `${prefix}set(temperature=0.2) — sampling temperature, 0 to 2`,
    `${prefix}set(reasoning=low|medium|high|off) — reasoning effort`,
    `${prefix}unset(model) — back to what the client asks for (also temperature, reasoning)`,
    `${prefix}oneoff(backend:model) — this model for the next request only`,
    `${prefix}route(name) — use a configured route for the rest of the session`,
    `${prefix}session — show this session's settings`,
  ];
}

const NAME = /^[a-z]+/;
const SETTING_NAMES: ReadonlySet<string> = new Set(['model', 'temperature', 'reasoning']);
const REASONING_LEVELS: ReadonlySet<string> = new Set(['off', 'low', 'medium', 'high']);
/** A model or route name: printable, no spaces, no parentheses, bounded. */
const MODEL_NAME = /^[^\s()]{1,200}$/;

type ArgParser = (args: string | undefined) => Command | string;

function noArgs(command: Command): ArgParser {
  return (args) => (args === undefined || args.trim() === '' ? command : 'takes no arguments');
}

function modelArg(build: (model: string) => Command): ArgParser {
  return (args) => {
    const model = args?.trim() ?? '';
    return MODEL_NAME.test(model) ? build(model) : 'needs a model name, e.g. openai:gpt-4o';
  };
}

function parseSet(args: string | undefined): Command | string {
  if (args === undefined || args.trim() === '') return 'needs name=value, e.g. temperature=0.2';
  const values: Pick<SessionSettings, SettingName> = {};
  for (const pair of args.split(',')) {
    const eq = pair.indexOf('=');
    const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
    const value = eq < 0 ? '' : pair.slice(eq + 1).trim();
    if (!SETTING_NAMES.has(name)) return `cannot set '${name}' (model, temperature or reasoning)`;
    if (name === 'model') {
      if (!MODEL_NAME.test(value)) return 'model needs a name, e.g. model=openai:gpt-4o';
      values.model = value;
    } else if (name === 'temperature') {
      const t = Number(value);
      if (value === '' || !Number.isFinite(t) || t < 0 || t > 2) return 'temperature is a number from 0 to 2';
      values.temperature = t;
    } else {
      if (!REASONING_LEVELS.has(value)) return 'reasoning is one of off, low, medium, high';
      values.reasoning = value as ReasoningLevel;
    }
  }
  return { name: 'set', values };
}

function parseUnset(args: string | undefined): Command | string {
  const names = (args ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) return 'needs a setting name: model, temperature or reasoning';
  for (const name of names) {
    if (!SETTING_NAMES.has(name)) return `cannot unset '${name}' (model, temperature or reasoning)`;
  }
  return { name: 'unset', settings: names as SettingName[] };
}

/** Each command name and how its arguments are read. */
const PARSERS: ReadonlyMap<string, ArgParser> = new Map<string, ArgParser>([
  ['help', noArgs({ name: 'help' })],
  ['session', noArgs({ name: 'session' })],
  ['set', parseSet],
  ['unset', parseUnset],
  ['oneoff', modelArg((model) => ({ name: 'oneoff', model }))],
  ['route', modelArg((route) => ({ name: 'route', route }))],
]);

/** Longest command text read; anything longer is not a command message. */
const MAX_COMMAND_TEXT = 4096;

/**
 * Reads the commands at the start of `text` (after leading white space). Undefined when the text does not
 * start with the prefix (an ordinary message); an error naming the first bad command otherwise, quoting it
 * redacted by `redact` (a client may paste a key there).
 */
export function parseCommands(text: string, prefix: string, redact: Redact): ParsedCommands | undefined {
  let pos = 0;
  while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  if (!text.startsWith(prefix, pos)) return undefined;
  const commands: Command[] = [];
  while (text.startsWith(prefix, pos)) {
    if (pos > MAX_COMMAND_TEXT) return { ok: false, error: 'too many commands in one message' };
    const start = pos;
    pos += prefix.length;
    const name = NAME.exec(text.slice(pos, pos + 32))?.[0] ?? '';
    pos += name.length;
    let args: string | undefined;
    if (text[pos] === '(') {
      const close = text.indexOf(')', pos + 1);
      if (close < 0 || close - pos > 512) {
        return { ok: false, error: `'${excerpt(text, start, redact)}' is missing its closing ')'` };
      }
      args = text.slice(pos + 1, close);
      pos = close + 1;
    }
    const parser = PARSERS.get(name);
    if (parser === undefined) {
      return { ok: false, error: `'${excerpt(text, start, redact)}' is not a command` };
    }
    const parsed = parser(args);
    if (typeof parsed === 'string') return { ok: false, error: `${prefix}${name} ${parsed}` };
    commands.push(parsed);
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  }
  return { ok: true, commands, rest: text.slice(pos) };
}

/** The longest part of a bad command a reply quotes. */
const MAX_QUOTED_COMMAND = 40;

function excerpt(text: string, start: number, redact: Redact): string {
  const end = text.slice(start).search(/\s/);
  const word = end < 0 ? text.slice(start) : text.slice(start, start + end);
  return redactedExcerpt(word, MAX_QUOTED_COMMAND, redact);
}
