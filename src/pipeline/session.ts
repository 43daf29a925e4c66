import { CONVERSATIONS, type WireConversation } from '../protocols/conversation.js';
import { ByteNeedle } from '../protocols/byte-needle.js';
import type { Protocol } from '../protocols/types.js';
import { applyCommand, modelsNamed } from '../sessions/apply.js';
import {
  parseCommands,
  type Command,
  type ReasoningLevel,
  type SessionSettings,
} from '../sessions/commands.js';
import { confirmation, invalidReply, type ChainOf } from '../sessions/replies.js';
import { sessionIdOf, sessionKey } from '../sessions/session-id.js';
import { isEmpty, type SessionStore } from '../sessions/store.js';
import type { Redact } from '../redaction/excerpt.js';
import type { ChatExchange } from './exchange.js';

type Json = Record<string, unknown>;

export interface SessionStepOptions {
  store: SessionStore;
  /** The command prefix (`--command-prefix`, `!/` by default). */
  prefix: string;
  /** Throws an error naming what is wrong when a model name cannot be routed. */
  checkModel(model: string): void;
  /**
   * Throws an error naming why a key may not use a model, a route or an `a|b` chain (its allow-list, README
   * "Teams"), judged as the requests that name it will be. Absent: every key may use every model.
   */
  checkAllowed?: ((model: string, keyName: string | null) => void) | undefined;
  /**
   * The configured routes (README, "Routes and failover"): what `!/route(name)` may name, and a route's chain
   * for the replies. Absent: no routes.
   */
  routes?: { names(): string[]; chain(name: string): readonly string[] | undefined } | undefined;
  /** Scrubs secrets from the command text a reply quotes (the current redactor's). */
  redact: Redact;
}

/** What the session step decided for one request. */
export type SessionOutcome =
  /**
   * The message held only commands: the proxy answers it, nothing goes to a backend. `withoutCommands`: the
   * body as a later turn's history holds it, its command text removed (for a protocol whose history the
   * proxy keeps: the Responses API's stored responses).
   */
  | { kind: 'reply'; text: string; withoutCommands: () => Json }
  /**
   * Forward: `body` when the step changed it (else the client's), `model` when the session picks one,
   * `reasoning` when it sets one — applied where the backend's protocol is known (src/pipeline/prepare.ts),
   * through the one reasoning table, so that every backend gets it whatever the client's protocol.
   */
  | {
      kind: 'forward';
      body: Json | undefined;
      model: string | undefined;
      reasoning: ReasoningLevel | undefined;
    };

interface Found {
  /** Index of the turn, and its text that starts with the prefix. */
  turn: number;
  at: ReturnType<WireConversation['texts']>[number];
  parsed: NonNullable<ReturnType<typeof parseCommands>>;
}

/**
 * The session step (README, "Sessions" and "In-chat commands"): reads commands in the user's newest
 * message, keeps the session's settings, strips command text from the history the backend sees, and applies
 * the settings to the request (model, temperature; reasoning is handed on, see `SessionOutcome`). Costs a
 * search of the body's bytes per spelling of the prefix (`jsonForms`: two for `!/`) when no session has
 * settings and no message carries the prefix.
 */
export class SessionStep {
  readonly #store: SessionStore;
  readonly #prefix: string;
  /** The prefix as JSON may write it inside a string (see `jsonForms`), as text and as bytes. */
  readonly #prefixTexts: readonly string[];
  readonly #prefixBytes: readonly (Buffer | ByteNeedle)[];
  readonly #checkModel: (model: string) => void;
  readonly #checkAllowed: (model: string, keyName: string | null) => void;
  readonly #routes: SessionStepOptions['routes'];
  readonly #chainOf: ChainOf;
  readonly #redact: Redact;

  constructor(options: SessionStepOptions) {
    this.#store = options.store;
    this.#prefix = options.prefix;
    this.#prefixTexts = jsonForms(options.prefix);
    // Searched as needles (no call into C++ per search of a short body), but for a prefix too long for one.
    this.#prefixBytes = this.#prefixTexts.map((form) =>
      Buffer.byteLength(form) <= MAX_NEEDLE_BYTES ? new ByteNeedle(form) : Buffer.from(form),
    );
    this.#checkModel = options.checkModel;
    this.#checkAllowed = options.checkAllowed ?? (() => undefined);
    this.#routes = options.routes;
    this.#chainOf = (name) => options.routes?.chain(name);
    this.#redact = options.redact;
  }

  /** Whether the step has anything to look at for this request (synchronous: the hot path's only cost). */
  applies(ex: ChatExchange): boolean {
    return this.#store.any || this.#mentionsPrefix(ex);
  }

  #mentionsPrefix(ex: ChatExchange): boolean {
    const bytes = ex.rawBytes;
    if (bytes !== undefined) {
      for (const form of this.#prefixBytes) if (mayStartString(bytes, form)) return true;
      return false;
    }
    const text = ex.rawBody;
    return text === undefined || this.#prefixTexts.some((form) => text.includes(form));
  }

  async run(ex: ChatExchange, from: Protocol, body: Json): Promise<SessionOutcome> {
    const key = sessionKey(ex.authKeyName, sessionIdOf(ex.headers, body));
    const conversation = CONVERSATIONS[from];
    let settings = (await this.#store.get(key)) ?? {};
    let out: Json | undefined;
    // The turns (the bulk of an agent's body) are read only when a command may be among them.
    const turns = this.#mentionsPrefix(ex) ? conversation.turns(body) : undefined;
    if (turns !== undefined) {
      const found = this.#commandsIn(conversation, turns);
      const newestUser = newestUserTurn(conversation, turns);
      const newest = found.find((f) => f.turn === newestUser);
      if (newest !== undefined) {
        const withoutCommands = () => conversation.withTurns(body, stripCommands(conversation, turns, found));
        const reply = (text: string): SessionOutcome => ({ kind: 'reply', text, withoutCommands });
        if (!newest.parsed.ok) return reply(invalidReply(newest.parsed.error, this.#prefix));
        const applied = this.#apply(settings, newest.parsed.commands, ex.authKeyName);
        if (typeof applied === 'string') return reply(invalidReply(applied, this.#prefix));
        settings = applied.settings;
        await this.#store.set(key, settings);
        if (commandOnly(conversation, turns, newest)) return reply(applied.lines.join('\n\n'));
      }
      if (found.length > 0) out = conversation.withTurns(body, stripCommands(conversation, turns, found));
    }
    if (isEmpty(settings)) return { kind: 'forward', body: out, model: undefined, reasoning: undefined };
    const model = settings.oneoff ?? settings.model;
    if (settings.oneoff !== undefined) {
      const { oneoff: _used, ...rest } = settings;
      await this.#store.set(key, rest);
    }
    let next = out ?? body;
    if (settings.temperature !== undefined) next = conversation.withTemperature(next, settings.temperature);
    return { kind: 'forward', body: next === body ? undefined : next, model, reasoning: settings.reasoning };
  }

  /** Every user turn's first text that starts with the prefix, with what it says. */
  #commandsIn(conversation: WireConversation, turns: readonly unknown[]): Found[] {
    const found: Found[] = [];
    turns.forEach((turn, index) => {
      if (conversation.role(turn) !== 'user') return;
      for (const at of conversation.texts(turn)) {
        const parsed = parseCommands(at.text, this.#prefix, this.#redact);
        if (parsed !== undefined) {
          found.push({ turn: index, at, parsed });
          return;
        }
      }
    });
    return found;
  }

  /**
   * The settings after the commands, with a line for each; or the first error, nothing applied. A model a
   * command names must be one the key (`keyName`) may use: stored, it would refuse every later request.
   */
  #apply(
    settings: SessionSettings,
    commands: Command[],
    keyName: string | null,
  ): { settings: SessionSettings; lines: string[] } | string {
    for (const command of commands) {
      if (command.name === 'route' && this.#chainOf(command.route) === undefined) {
        return `${this.#prefix}route: '${command.route}' is not a configured route (${this.#routeList()})`;
      }
      for (const model of modelsNamed(command)) {
        // A route's name is checked by its chain's attempts, not as a model of the default backend.
        const routed = this.#chainOf(model) !== undefined;
        // A chain written inline (`a|b`): each of its elements, and at least one.
        const elements = routed
          ? []
          : model.includes('|')
            ? model
                .split('|')
                .map((element) => element.trim())
                .filter((element) => element.length > 0)
            : [model];
        if (!routed && elements.length === 0)
          return `${this.#prefix}${command.name}: '${model}' names no model`;
        try {
          for (const element of elements) this.#checkModel(element);
          this.#checkAllowed(model, keyName);
        } catch (err) {
          return `${this.#prefix}${command.name}: ${(err as Error).message}`;
        }
      }
    }
    let next = settings;
    const lines: string[] = [];
    for (const command of commands) {
      next = applyCommand(next, command);
      lines.push(confirmation(command, this.#prefix, next, this.#chainOf));
    }
    return { settings: next, lines };
  }

  #routeList(): string {
    const names = this.#routes?.names() ?? [];
    return names.length === 0
      ? 'no routes are configured: they are the `routes:` section of the YAML configuration'
      : `configured routes: ${names.join(', ')}`;
  }
}

/** The longest prefix spelling searched as a `ByteNeedle`. */
const MAX_NEEDLE_BYTES = 255;

/** At most this many spellings of the prefix are searched for (a prefix with many `/` keeps the first ones). */
const MAX_FORMS = 8;

/**
 * The ways a JSON encoder writes `prefix` inside a string: `"` and `\` escaped, and each `/` raw or as `\/`
 * (valid JSON that PHP's, some Java encoders and hand-written clients produce; `!\/help` is `!/help`). A
 * prefix character written as a `\u` escape is not looked for.
 */
export function jsonForms(prefix: string): string[] {
  let forms = [''];
  for (const char of prefix) {
    const plain = JSON.stringify(char).slice(1, -1);
    const spellings = char === '/' ? [plain, '\\/'] : [plain];
    forms = forms.flatMap((form) => spellings.map((spelling) => form + spelling)).slice(0, MAX_FORMS);
  }
  return forms;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** JSON escapes of white space (`\n`, `\t`, `\r`, `\f`); `\u` is taken as white space too. */
const SPACE_ESCAPES: ReadonlySet<number> = new Set([0x6e, 0x74, 0x72, 0x66]);

/** Whether the byte at `at` follows an odd run of backslashes (is escaped). */
function escaped(bytes: Buffer, at: number): boolean {
  let slashes = 0;
  while (bytes[at - 1 - slashes] === BACKSLASH) slashes++;
  return slashes % 2 === 1;
}

function isHex(b: number | undefined): boolean {
  return (
    b !== undefined && ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66))
  );
}

/**
 * Whether the JSON `bytes` may hold a string that starts with `prefix` after white space — what a command
 * message is (`parseCommands`): some occurrence of the prefix is preceded, back to an opening quote, only by
 * bytes that may be white space (a space, a control byte, any byte of a multi-byte character, an escape
 * `\n` `\t` `\r` `\f` or `\uXXXX`). Never false for a body that holds a command; false for the
 * prefix inside a text (`if (!/x/.test(s))` in an agent's source code), so such a body costs no parse.
 */
export function mayStartString(bytes: Buffer, prefix: Buffer | ByteNeedle): boolean {
  const needle = prefix instanceof ByteNeedle ? prefix : null;
  for (
    let at = needle === null ? bytes.indexOf(prefix as Buffer) : needle.indexIn(bytes);
    at >= 0;
    at = needle === null ? bytes.indexOf(prefix as Buffer, at + 1) : needle.indexIn(bytes, at + 1)
  ) {
    let i = at - 1;
    for (;;) {
      const b = bytes[i];
      if (b === undefined) break;
      if (b === QUOTE) {
        if (!escaped(bytes, i)) return true;
        break;
      }
      if (b <= 0x20 || b >= 0x80) {
        i--;
        continue;
      }
      if (SPACE_ESCAPES.has(b) && bytes[i - 1] === BACKSLASH && !escaped(bytes, i - 1)) {
        i -= 2;
        continue;
      }
      if (
        isHex(b) &&
        isHex(bytes[i - 1]) &&
        isHex(bytes[i - 2]) &&
        isHex(bytes[i - 3]) &&
        bytes[i - 4] === 0x75 &&
        bytes[i - 5] === BACKSLASH &&
        !escaped(bytes, i - 5)
      ) {
        i -= 6;
        continue;
      }
      break;
    }
  }
  return false;
}

/**
 * The index of the user's newest message: the last turn when it is the user's, or the last user turn
 * followed only by turns of neither role (Claude Code 2.1 sends its environment as a `system` message after
 * the user's); -1 when an assistant turn ends the conversation.
 */
function newestUserTurn(conversation: WireConversation, turns: readonly unknown[]): number {
  for (let i = turns.length - 1; i >= 0; i--) {
    const role = conversation.role(turns[i]);
    if (role === 'user') return i;
    if (role === 'assistant') return -1;
  }
  return -1;
}

/** The text after a turn's commands, in their own text (a bad command's is none). */
function restOf(f: Found): string {
  return f.parsed.ok ? f.parsed.rest : '';
}

/**
 * Whether a turn holds nothing but its commands for the model: no text after them, in their own text or in
 * a part after it (README, "In-chat commands": text after the commands goes on). Parts before the commands
 * (an agent's reminders, a tool's result) are not the user's words to the model.
 */
function commandOnly(conversation: WireConversation, turns: readonly unknown[], f: Found): boolean {
  return restOf(f).trim() === '' && !conversation.holdsMoreAfter(turns[f.turn], f.at);
}

/**
 * The history without command text: a command-only user turn goes, with the proxy's answer to it (the
 * assistant turn after it); a turn with text after its commands keeps that text (its commands' own part
 * left out when nothing follows them in it).
 */
function stripCommands(conversation: WireConversation, turns: readonly unknown[], found: Found[]): unknown[] {
  const byTurn = new Map(found.map((f) => [f.turn, f]));
  const out: unknown[] = [];
  for (let i = 0; i < turns.length; i++) {
    const f = byTurn.get(i);
    if (f === undefined) {
      out.push(turns[i]);
      continue;
    }
    const rest = restOf(f);
    if (!commandOnly(conversation, turns, f)) {
      out.push(
        rest.trim() === ''
          ? conversation.withoutText(turns[i], f.at)
          : conversation.withText(turns[i], f.at, rest),
      );
    } else if (i + 1 < turns.length && conversation.role(turns[i + 1]) === 'assistant') {
      i++;
    }
  }
  return out;
}
