/**
 * The loop guard's question of a conversation's newest turns, asked of their bytes (README, "Agent
 * guardrails"; docs/performance.md, "Guards that do not fire"): do the newest two tool calls differ, and do
 * the newest two tool results? When both do, no run of repeats can be there and nothing needs parsing. The
 * turns are read as `WireConversation` reads them parsed (conversation.ts: `role`, `toolCalls`,
 * `toolResults`), per protocol; a call's identity is its name and its arguments' JSON text, as the guard
 * compares them. Anything this reader does not take on (a key written with `\u` escapes, a string that is not
 * valid JSON, a turn that is not an object) answers "cannot tell", and the caller parses as before, so the
 * verdict (and a 400 for a bad string) is the parser's. `tool-turns.test.ts` holds the two equal by fuzzing.
 */
import type { Protocol } from './types.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SLASH = 0x2f;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** Characters a backslash may escape besides `u`. */
const ESCAPABLE = new Uint8Array(256);
for (const c of '"\\/bfnrt') ESCAPABLE[c.charCodeAt(0)] = 1;
/** Bytes inside a string: 0 stands for itself; the others end the tight loop (quote, backslash, control). */
const ORDINARY = 0;
const IN_STRING = new Uint8Array(256);
for (let b = 0; b < 0x20; b++) IN_STRING[b] = 1;
IN_STRING[QUOTE] = 1;
IN_STRING[BACKSLASH] = 1;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

/** Thrown (never seen outside this module) when the bytes are not read here: the caller parses them. */
const UNREAD = Object.freeze({ unread: true });

/** How a string's bytes write its text (any other value: `ESCAPED`). */
const ESCAPED = 0;
/**
 * The one way JSON can write the text: no `\u` escape, no `\/` — `"`, `\` and the control characters that
 * have a short escape can only be written with it, so two such strings' bytes decoded as UTF-8 are equal
 * exactly when their texts are (and their bytes, when they are valid UTF-8: see `compareBytes`).
 */
const CANONICAL = 1;

/**
 * A JSON value in the bytes, [start, end), read in one pass: an object's member names (as [start, end) pairs
 * in `names`) and values (`items`), an array's elements (`items`); for a string, how its bytes write it.
 */
class Node {
  constructor(
    readonly start: number,
    readonly end: number,
    readonly form: number,
    readonly items: Node[] | null,
    readonly names: number[] | null,
  ) {}
}

/** A value's text as a protocol's reader takes it (`jsonText`): a string's own text, any other value's JSON. */
type Text = Node | 'null' | '{}';

const isSpace = (b: number | undefined) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/**
 * Reads values from the bytes, checking strings' contents as `JSON.parse` does (the chat lane checked the
 * rest: src/protocols/json-scan.ts); `next` is where the last value read ended.
 */
class Reader {
  next = 0;
  constructor(readonly bytes: Buffer) {}

  skipSpace(at: number): number {
    const bytes = this.bytes;
    while (isSpace(bytes[at])) at++;
    return at;
  }

  /** The value at `at` (its first byte). */
  value(at: number): Node {
    const b = this.bytes[at];
    if (b === QUOTE) return this.#string(at);
    if (b === OPEN_OBJECT) return this.#object(at);
    if (b === OPEN_ARRAY) return this.#array(at);
    // A number or a literal: up to the next delimiter.
    const bytes = this.bytes;
    let i = at;
    for (
      let c = bytes[i];
      c !== undefined && c !== COMMA && c !== CLOSE_OBJECT && c !== CLOSE_ARRAY;
      c = bytes[++i]
    ) {
      if (isSpace(c)) break;
    }
    this.next = i;
    return new Node(at, i, ESCAPED, null, null);
  }

  #string(at: number): Node {
    const bytes = this.bytes;
    const n = bytes.length;
    let canonical = true;
    let i = at + 1;
    for (;;) {
      // The bytes that are their own text, in a tight loop.
      while (i < n && IN_STRING[bytes[i]!] === ORDINARY) i++;
      const b = bytes[i];
      if (b === QUOTE) break;
      if (b === BACKSLASH) {
        const e = bytes[i + 1]!;
        if (e === 0x75) {
          if (!(HEX[bytes[i + 2]!] && HEX[bytes[i + 3]!] && HEX[bytes[i + 4]!] && HEX[bytes[i + 5]!]))
            throw UNREAD;
          canonical = false;
          i += 6;
        } else if (ESCAPABLE[e]) {
          // `\/` is `/` written another way; `\"`, `\\`, `\n`… are the only ways to write theirs.
          if (e === SLASH) canonical = false;
          i += 2;
        } else throw UNREAD;
        continue;
      }
      // A control character (or the end of the bytes) is not JSON.
      throw UNREAD;
    }
    this.next = i + 1;
    return new Node(at, i + 1, canonical ? CANONICAL : ESCAPED, null, null);
  }

  #object(at: number): Node {
    const bytes = this.bytes;
    const names: number[] = [];
    const items: Node[] = [];
    let i = this.skipSpace(at + 1);
    if (bytes[i] !== CLOSE_OBJECT) {
      for (;;) {
        const name = this.#string(i);
        // A name written with `\u` escapes is not compared here.
        if (name.form === ESCAPED) throw UNREAD;
        names.push(name.start, name.end);
        i = this.skipSpace(this.next);
        if (bytes[i] !== COLON) throw UNREAD;
        items.push(this.value(this.skipSpace(i + 1)));
        i = this.skipSpace(this.next);
        if (bytes[i] !== COMMA) break;
        i = this.skipSpace(i + 1);
      }
      if (bytes[i] !== CLOSE_OBJECT) throw UNREAD;
    }
    this.next = i + 1;
    return new Node(at, i + 1, ESCAPED, items, names);
  }

  #array(at: number): Node {
    const bytes = this.bytes;
    const items: Node[] = [];
    let i = this.skipSpace(at + 1);
    if (bytes[i] !== CLOSE_ARRAY) {
      for (;;) {
        items.push(this.value(i));
        i = this.skipSpace(this.next);
        if (bytes[i] !== COMMA) break;
        i = this.skipSpace(i + 1);
      }
      if (bytes[i] !== CLOSE_ARRAY) throw UNREAD;
    }
    this.next = i + 1;
    return new Node(at, i + 1, ESCAPED, items, null);
  }
}

/** A name or a value as its JSON string's bytes (`"role"`), and as text. */
interface Literal {
  bytes: Buffer;
  text: string;
}

const quoted = (text: string): Literal => ({ bytes: Buffer.from(JSON.stringify(text)), text });

/** Whether `v` is the JSON string `literal`: on its bytes when they are its text, else on its text. */
function isString(bytes: Buffer, v: Node | undefined, literal: Literal): boolean {
  if (v === undefined || bytes[v.start] !== QUOTE) return false;
  if (v.form === ESCAPED) return JSON.parse(bytes.toString('utf8', v.start, v.end)) === literal.text;
  const expected = literal.bytes;
  if (v.end - v.start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (bytes[v.start + i] !== expected[i]) return false;
  return true;
}

const isStringNode = (bytes: Buffer, v: Node | undefined): v is Node =>
  v !== undefined && bytes[v.start] === QUOTE;

/** The object `v` (undefined: not an object), for `member`. */
function objectOf(bytes: Buffer, v: Node | undefined): Node | undefined {
  return v !== undefined && v.names !== null ? v : undefined;
}

/** Member `name` of the object `o`, the last of a repeated name as JSON.parse keeps it. */
function member(bytes: Buffer, o: Node, name: Literal): Node | undefined {
  const names = o.names!;
  const expected = name.bytes;
  const n = expected.length;
  for (let k = names.length - 2; k >= 0; k -= 2) {
    const at = names[k]!;
    if (names[k + 1]! - at !== n) continue;
    let i = 0;
    while (i < n && bytes[at + i] === expected[i]) i++;
    if (i === n) return o.items![k >> 1];
  }
  return undefined;
}

/** The objects among an array's elements (none when `v` is not an array): `listOf(…)` filtered by `isJson`. */
function objectsIn(bytes: Buffer, v: Node | undefined): Node[] {
  if (v === undefined || v.names !== null || v.items === null || bytes[v.start] !== OPEN_ARRAY) return [];
  return v.items.filter((item) => item.names !== null);
}

/** One turn's tool calls (name, arguments' text, …) and tool results, as the protocol's reader gives them. */
interface ToolTurn {
  assistant: boolean;
  calls: Text[];
  results: Text[];
}

type TurnOf = (bytes: Buffer, turn: Node) => ToolTurn;

const K = {
  role: quoted('role'),
  type: quoted('type'),
  name: quoted('name'),
  content: quoted('content'),
  tool_calls: quoted('tool_calls'),
  function: quoted('function'),
  arguments: quoted('arguments'),
  input: quoted('input'),
  output: quoted('output'),
  parts: quoted('parts'),
  functionCall: quoted('functionCall'),
  functionResponse: quoted('functionResponse'),
  args: quoted('args'),
  response: quoted('response'),
};
const V = {
  assistant: quoted('assistant'),
  tool: quoted('tool'),
  model: quoted('model'),
  message: quoted('message'),
  tool_use: quoted('tool_use'),
  tool_result: quoted('tool_result'),
  function_call: quoted('function_call'),
  custom_tool_call: quoted('custom_tool_call'),
  function_call_output: quoted('function_call_output'),
  custom_tool_call_output: quoted('custom_tool_call_output'),
};

/** `jsonText(value)`: a missing value reads as `null`. */
const textOf = (v: Node | undefined): Text => v ?? 'null';

/** Each protocol's `role` (whether `assistant`), `toolCalls` and `toolResults`, as conversation.ts reads them. */
const TURNS: Readonly<Record<Protocol, TurnOf>> = {
  openai(bytes, turn) {
    const role = member(bytes, turn, K.role);
    const calls: Text[] = [];
    for (const call of objectsIn(bytes, member(bytes, turn, K.tool_calls))) {
      const fn = objectOf(bytes, member(bytes, call, K.function));
      const name = fn === undefined ? undefined : member(bytes, fn, K.name);
      if (fn !== undefined && isStringNode(bytes, name))
        calls.push(name, textOf(member(bytes, fn, K.arguments)));
    }
    return {
      assistant: isString(bytes, role, V.assistant),
      calls,
      results: isString(bytes, role, V.tool) ? [textOf(member(bytes, turn, K.content))] : [],
    };
  },
  anthropic(bytes, turn) {
    const calls: Text[] = [];
    const results: Text[] = [];
    for (const block of objectsIn(bytes, member(bytes, turn, K.content))) {
      const type = member(bytes, block, K.type);
      const name = member(bytes, block, K.name);
      if (isString(bytes, type, V.tool_use) && isStringNode(bytes, name))
        calls.push(name, textOf(member(bytes, block, K.input)));
      if (isString(bytes, type, V.tool_result)) results.push(textOf(member(bytes, block, K.content)));
    }
    return { assistant: isString(bytes, member(bytes, turn, K.role), V.assistant), calls, results };
  },
  gemini(bytes, turn) {
    const calls: Text[] = [];
    const results: Text[] = [];
    for (const part of objectsIn(bytes, member(bytes, turn, K.parts))) {
      const call = objectOf(bytes, member(bytes, part, K.functionCall));
      const name = call === undefined ? undefined : member(bytes, call, K.name);
      if (call !== undefined && isStringNode(bytes, name)) {
        const args = member(bytes, call, K.args);
        // `args ?? {}`: a missing or null argument list reads as `{}`.
        calls.push(name, args === undefined || bytes[args.start] === 0x6e ? '{}' : args);
      }
      const response = objectOf(bytes, member(bytes, part, K.functionResponse));
      if (response !== undefined) results.push(textOf(member(bytes, response, K.response)));
    }
    return { assistant: isString(bytes, member(bytes, turn, K.role), V.model), calls, results };
  },
  responses(bytes, turn) {
    const type = member(bytes, turn, K.type);
    const name = member(bytes, turn, K.name);
    const functionCall = isString(bytes, type, V.function_call);
    const customCall = isString(bytes, type, V.custom_tool_call);
    let assistant: boolean;
    if (functionCall || customCall) assistant = true;
    else if (type !== undefined && !isString(bytes, type, V.message)) assistant = false;
    else assistant = isString(bytes, member(bytes, turn, K.role), V.assistant);
    const calls: Text[] = [];
    if (isStringNode(bytes, name)) {
      if (functionCall) calls.push(name, textOf(member(bytes, turn, K.arguments)));
      else if (customCall) calls.push(name, textOf(member(bytes, turn, K.input)));
    }
    const output =
      isString(bytes, type, V.function_call_output) || isString(bytes, type, V.custom_tool_call_output);
    return { assistant, calls, results: output ? [textOf(member(bytes, turn, K.output))] : [] };
  },
};

/** A text as the reader gives it (`jsonText`): a string's text, any other value's JSON text. */
function decode(bytes: Buffer, t: Text): string {
  if (t === 'null' || t === '{}') return t;
  const parsed = JSON.parse(bytes.toString('utf8', t.start, t.end)) as unknown;
  return typeof parsed === 'string' ? parsed : JSON.stringify(parsed ?? null);
}

/**
 * Whether two lists of texts differ as the guard's signatures would (loop-guard.ts: a call's name and
 * arguments joined by `\u0000`, the calls by `\u0001`; results by `\u0001`): text by text when every text is
 * a string written the one way JSON can (no text then holds a separator) and the lists are as long — on
 * the bytes (`compareBytes`), or their UTF-8 text when those cannot tell; else on the joined texts.
 */
function differ(bytes: Buffer, a: Text[], b: Text[], pairs: boolean): boolean {
  let canonical = a.length === b.length;
  for (let i = 0; canonical && i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    // A form other than ESCAPED is only ever a string's.
    canonical = typeof x !== 'string' && typeof y !== 'string' && x.form !== ESCAPED && y.form !== ESCAPED;
  }
  if (!canonical) return joined(bytes, a, pairs) !== joined(bytes, b, pairs);
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as Node;
    const y = b[i] as Node;
    const compared = compareBytes(bytes, x, y);
    if (compared === SAME) continue;
    if (compared === DIFFERENT) return true;
    if (bytes.toString('utf8', x.start, x.end) !== bytes.toString('utf8', y.start, y.end)) return true;
  }
  return false;
}

const SAME = 0;
const DIFFERENT = 1;
const UNSURE = 2;

/**
 * Two strings written the one way JSON can, compared on their bytes: the same bytes are the same text; the
 * first bytes that differ, both ASCII, follow the same text and make it differ there. Bytes past ASCII
 * that differ may still read as the same text (U+FFFD for bytes that are not UTF-8): UNSURE.
 */
function compareBytes(bytes: Buffer, x: Node, y: Node): number {
  const n = Math.min(x.end - x.start, y.end - y.start);
  for (let k = 0; k < n; k++) {
    const p = bytes[x.start + k]!;
    const q = bytes[y.start + k]!;
    if (p !== q) return p < 0x80 && q < 0x80 ? DIFFERENT : UNSURE;
  }
  // Each ends with its closing quote: one cannot be the other's beginning.
  return x.end - x.start === y.end - y.start ? SAME : UNSURE;
}

/** The texts as the guard joins them: calls `name\u0000args` by `\u0001`, results by `\u0001`. */
function joined(bytes: Buffer, texts: Text[], pairs: boolean): string {
  let out = '';
  for (let i = 0; i < texts.length; i++) {
    if (i > 0) out += pairs && i % 2 === 1 ? '\u0000' : '\u0001';
    out += decode(bytes, texts[i]!);
  }
  return out;
}

/**
 * Whether the newest two tool calls differ and the newest two tool results differ, read from the bytes of
 * the turns that start at `starts` (newest first, as `arrayTailStarts` gives them): true only when both pairs are there and differ; false when they do not or when the
 * bytes are not read here.
 */
export function newestToolTurnsDiffer(protocol: Protocol, bytes: Buffer, starts: readonly number[]): boolean {
  const reader = new Reader(bytes);
  const turnOf = TURNS[protocol];
  const calls: Text[][] = [];
  const results: Text[][] = [];
  try {
    // Every turn given is read (its strings checked, as parsing them would), newest first.
    for (const start of starts) {
      const node = reader.value(start);
      if (node.names === null) return false;
      const turn = turnOf(bytes, node);
      if (turn.assistant && turn.calls.length > 0 && calls.length < 2) calls.push(turn.calls);
      if (turn.results.length > 0 && results.length < 2) results.push(turn.results);
    }
    if (calls.length < 2 || results.length < 2) return false;
    return differ(bytes, calls[0]!, calls[1]!, true) && differ(bytes, results[0]!, results[1]!, false);
  } catch (err) {
    if (err === UNREAD || err instanceof SyntaxError) return false;
    throw err;
  }
}
