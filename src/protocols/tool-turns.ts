/**
 * The loop guard's question of a conversation's newest turns, asked of their bytes (README, "Agent
 * guardrails"; docs/performance.md, "Guards that do not fire"): do the newest two tool calls differ, and do
 * the newest two tool results? When both do, no run of repeats can be there and nothing needs parsing. The
 * turns are read as `WireConversation` reads them parsed (conversation.ts: `role`, `toolCalls`,
 * `toolResults`), per protocol; a call's identity is its name and its arguments' JSON text, as the guard
 * compares them. The guard tells results apart by their tool's name too, and does not count empty ones:
 * two results whose texts differ are different to it whatever their tools, so the texts alone decide here. Anything this reader does not take on (a key written with `\u` escapes, a string that is not
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

/** A value's text that is not in the bytes: `jsonText` of a missing value, and Gemini's missing `args`. */
const NULL_TEXT = -1;
const EMPTY_OBJECT_TEXT = -2;

const isSpace = (b: number | undefined) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/** A name or a value as its JSON string's bytes (`"role"`), and as text. */
interface Literal {
  bytes: Buffer;
  text: string;
}

const quoted = (text: string): Literal => ({ bytes: Buffer.from(JSON.stringify(text)), text });

/**
 * Reads values from the bytes, checking strings' contents as `JSON.parse` does (the chat lane checked the
 * rest: src/protocols/json-scan.ts), without building anything: a value is skipped to its end, and an
 * object's wanted members are found by `members`, which writes where each value is into a scratch array.
 * So an agent's request costs no allocation here (docs/performance.md, "Guards that do not fire").
 */
class Reader {
  /** How the last string read writes its text (`skipString`). */
  form = ESCAPED;
  bytes: Buffer = Buffer.alloc(0);

  skipSpace(at: number): number {
    const bytes = this.bytes;
    while (isSpace(bytes[at])) at++;
    return at;
  }

  /** The end of the value at `at` (its first byte), every string in it checked. */
  skip(at: number): number {
    const bytes = this.bytes;
    const b = bytes[at];
    if (b === QUOTE) return this.skipString(at);
    if (b === OPEN_OBJECT) return this.members(at, NO_NAMES, NO_SLOTS);
    if (b === OPEN_ARRAY) {
      let i = this.skipSpace(at + 1);
      if (bytes[i] !== CLOSE_ARRAY) {
        for (;;) {
          i = this.skipSpace(this.skip(i));
          if (bytes[i] !== COMMA) break;
          i = this.skipSpace(i + 1);
        }
        if (bytes[i] !== CLOSE_ARRAY) throw UNREAD;
      }
      return i + 1;
    }
    // A number or a literal: up to the next delimiter.
    let i = at;
    for (
      let c = bytes[i];
      c !== undefined && c !== COMMA && c !== CLOSE_OBJECT && c !== CLOSE_ARRAY;
      c = bytes[++i]
    ) {
      if (isSpace(c)) break;
    }
    return i;
  }

  /** The end of the string at `at`; `form` says how it writes its text. */
  skipString(at: number): number {
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
    this.form = canonical ? CANONICAL : ESCAPED;
    return i + 1;
  }

  /**
   * Reads the object at `at` to its end (returned), every member checked; for each of `names`, the last
   * member of that name (as JSON.parse keeps the last) goes into `slots` as its value's start, end and form
   * (a string's; ESCAPED for any other value), or a start of -1 when there is none.
   */
  members(at: number, names: readonly Literal[], slots: Int32Array): number {
    const bytes = this.bytes;
    slots.fill(-1);
    let i = this.skipSpace(at + 1);
    if (bytes[i] !== CLOSE_OBJECT) {
      for (;;) {
        const nameEnd = this.skipString(i);
        // A name written with `\u` escapes is not compared here.
        if (this.form === ESCAPED) throw UNREAD;
        const wanted = nameIndex(bytes, i, nameEnd, names);
        i = this.skipSpace(nameEnd);
        if (bytes[i] !== COLON) throw UNREAD;
        const valueStart = this.skipSpace(i + 1);
        const valueEnd = this.skip(valueStart);
        if (wanted >= 0) {
          slots[3 * wanted] = valueStart;
          slots[3 * wanted + 1] = valueEnd;
          slots[3 * wanted + 2] = bytes[valueStart] === QUOTE ? this.form : ESCAPED;
        }
        i = this.skipSpace(valueEnd);
        if (bytes[i] !== COMMA) break;
        i = this.skipSpace(i + 1);
      }
      if (bytes[i] !== CLOSE_OBJECT) throw UNREAD;
    }
    return i + 1;
  }

  /** Where the value of the member whose name `memberName` read starts. */
  valueAt = 0;
  /** Where the object whose members were walked ended (after `firstMember` or `nextMember` gave -1). */
  closed = 0;

  /** The first member's name in the object at `at`; -1 for an empty one. */
  firstMember(at: number): number {
    const i = this.skipSpace(at + 1);
    if (this.bytes[i] !== CLOSE_OBJECT) return i;
    this.closed = i + 1;
    return -1;
  }

  /** Reads the member name at `at` and its colon: which of `names` it is (-1: none); see `valueAt`. */
  memberName(at: number, names: readonly Literal[]): number {
    const nameEnd = this.skipString(at);
    // A name written with `\u` escapes is not compared here.
    if (this.form === ESCAPED) throw UNREAD;
    const wanted = nameIndex(this.bytes, at, nameEnd, names);
    const i = this.skipSpace(nameEnd);
    if (this.bytes[i] !== COLON) throw UNREAD;
    this.valueAt = this.skipSpace(i + 1);
    return wanted;
  }

  /** After a member's value that ended at `end`: the next member's name, or -1 (see `closed`). */
  nextMember(end: number): number {
    const i = this.skipSpace(end);
    if (this.bytes[i] === COMMA) return this.skipSpace(i + 1);
    if (this.bytes[i] !== CLOSE_OBJECT) throw UNREAD;
    this.closed = i + 1;
    return -1;
  }

  /** Reads the array at `at` to its end (returned): each object in it by `read`, anything else skipped. */
  objects(at: number, read: ElementReader, calls: Texts, results: Texts): number {
    const bytes = this.bytes;
    let i = this.skipSpace(at + 1);
    if (bytes[i] !== CLOSE_ARRAY) {
      for (;;) {
        const end = bytes[i] === OPEN_OBJECT ? read(this, i, calls, results) : this.skip(i);
        i = this.skipSpace(end);
        if (bytes[i] !== COMMA) break;
        i = this.skipSpace(i + 1);
      }
      if (bytes[i] !== CLOSE_ARRAY) throw UNREAD;
    }
    return i + 1;
  }
}

const NO_NAMES: readonly Literal[] = [];
const NO_SLOTS = new Int32Array(0);

/** Which of `names` the name at [start, end) is (-1: none). */
function nameIndex(bytes: Buffer, start: number, end: number, names: readonly Literal[]): number {
  const n = end - start;
  for (let k = 0; k < names.length; k++) {
    const expected = names[k]!.bytes;
    if (expected.length !== n) continue;
    let i = 0;
    while (i < n && bytes[start + i] === expected[i]) i++;
    if (i === n) return k;
  }
  return -1;
}

/** Whether the value in `slots` at `k` is the JSON string `literal`: on its bytes when they are its text. */
function isString(bytes: Buffer, slots: Int32Array, k: number, literal: Literal): boolean {
  const start = slots[3 * k]!;
  if (start < 0 || bytes[start] !== QUOTE) return false;
  const end = slots[3 * k + 1]!;
  if (slots[3 * k + 2] === ESCAPED) return JSON.parse(bytes.toString('utf8', start, end)) === literal.text;
  const expected = literal.bytes;
  if (end - start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (bytes[start + i] !== expected[i]) return false;
  return true;
}

/** Whether the value in `slots` at `k` is a string. */
const isStringAt = (bytes: Buffer, slots: Int32Array, k: number): boolean =>
  slots[3 * k]! >= 0 && bytes[slots[3 * k]!] === QUOTE;

/** Whether the value in `slots` at `k` is an object. */
const isObjectAt = (bytes: Buffer, slots: Int32Array, k: number): boolean =>
  slots[3 * k]! >= 0 && bytes[slots[3 * k]!] === OPEN_OBJECT;

/**
 * A list of texts as a protocol's reader takes them (`jsonText`): three numbers each, the value's start, end
 * and form (a string's own text, any other value's JSON), or a start of NULL_TEXT (`null`) or
 * EMPTY_OBJECT_TEXT (`{}`).
 */
class Texts {
  /** How many numbers are in use (three per text); set lower to drop texts, nothing is freed. */
  length = 0;
  a = new Int32Array(24);

  push(start: number, end: number, form: number): void {
    if (this.length + 3 > this.a.length) {
      const grown = new Int32Array(this.a.length * 2);
      grown.set(this.a);
      this.a = grown;
    }
    const a = this.a;
    a[this.length] = start;
    a[this.length + 1] = end;
    a[this.length + 2] = form;
    this.length += 3;
  }
}

/** Appends the text of the value in `slots` at `k` (`jsonText`: a missing value reads as `null`). */
function pushText(texts: Texts, slots: Int32Array, k: number): void {
  texts.push(slots[3 * k]!, slots[3 * k + 1]!, slots[3 * k + 2]!);
}

/**
 * One turn's tool calls (name, arguments' text, … into `calls`) and tool results (into `results`), as the
 * protocol's reader gives them; answers whether the turn is the assistant's.
 */
type TurnOf = (r: Reader, turn: number, calls: Texts, results: Texts) => boolean;

const OPENAI_TURN = ['role', 'tool_calls', 'content'].map(quoted);
const OPENAI_CALL = ['function'].map(quoted);
const OPENAI_FUNCTION = ['name', 'arguments'].map(quoted);
const ANTHROPIC_TURN = ['role', 'content'].map(quoted);
const ANTHROPIC_BLOCK = ['type', 'name', 'input', 'content'].map(quoted);
const GEMINI_TURN = ['role', 'parts'].map(quoted);
const GEMINI_PART = ['functionCall', 'functionResponse'].map(quoted);
const GEMINI_CALL = ['name', 'args'].map(quoted);
const GEMINI_RESPONSE = ['response'].map(quoted);
const RESPONSES_ITEM = ['type', 'name', 'role', 'arguments', 'input', 'output'].map(quoted);

/** Where the members read go: one scratch array per level (the reader is synchronous: one read at a time). */
const S_TURN = new Int32Array(3 * 6);
const S_ITEM = new Int32Array(3 * 4);
const S_INNER = new Int32Array(3 * 2);

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

/** Reads one object of a list (a tool call, a content block, a part) to its end (returned). */
type ElementReader = (r: Reader, at: number, calls: Texts, results: Texts) => number;

/**
 * Reads the turn at `at`, each member once: the values of `names` go into S_TURN, except the list at
 * `listIndex`, whose objects `read` takes as they come — the lists are emptied at each member of that name
 * first, as JSON.parse keeps the last of a repeated name.
 */
function readTurn(
  r: Reader,
  at: number,
  names: readonly Literal[],
  listIndex: number,
  read: ElementReader,
  calls: Texts,
  results: Texts,
): void {
  const bytes = r.bytes;
  S_TURN.fill(-1);
  for (let i = r.firstMember(at); i >= 0;) {
    const k = r.memberName(i, names);
    const v = r.valueAt;
    let end: number;
    if (k === listIndex) {
      calls.length = 0;
      results.length = 0;
      end = bytes[v] === OPEN_ARRAY ? r.objects(v, read, calls, results) : r.skip(v);
    } else {
      end = r.skip(v);
      if (k >= 0) {
        S_TURN[3 * k] = v;
        S_TURN[3 * k + 1] = end;
        S_TURN[3 * k + 2] = bytes[v] === QUOTE ? r.form : ESCAPED;
      }
    }
    i = r.nextMember(end);
  }
}

/** An OpenAI tool call: its `function`'s name and arguments (the last `function`, as JSON.parse keeps). */
const openaiCall: ElementReader = (r, at, calls) => {
  const bytes = r.bytes;
  const mark = calls.length;
  for (let i = r.firstMember(at); i >= 0;) {
    const k = r.memberName(i, OPENAI_CALL);
    const v = r.valueAt;
    let end: number;
    if (k === 0 && bytes[v] === OPEN_OBJECT) {
      calls.length = mark;
      end = r.members(v, OPENAI_FUNCTION, S_INNER);
      if (isStringAt(bytes, S_INNER, 0)) {
        pushText(calls, S_INNER, 0);
        pushText(calls, S_INNER, 1);
      }
    } else {
      if (k === 0) calls.length = mark;
      end = r.skip(v);
    }
    i = r.nextMember(end);
  }
  return r.closed;
};

/** An Anthropic content block: a `tool_use`'s name and input, a `tool_result`'s content. */
const anthropicBlock: ElementReader = (r, at, calls, results) => {
  const bytes = r.bytes;
  const end = r.members(at, ANTHROPIC_BLOCK, S_ITEM);
  if (isString(bytes, S_ITEM, 0, V.tool_use) && isStringAt(bytes, S_ITEM, 1)) {
    pushText(calls, S_ITEM, 1);
    pushText(calls, S_ITEM, 2);
  }
  if (isString(bytes, S_ITEM, 0, V.tool_result)) pushText(results, S_ITEM, 3);
  return end;
};

/** A Gemini part: a `functionCall`'s name and args, a `functionResponse`'s response. */
const geminiPart: ElementReader = (r, at, calls, results) => {
  const bytes = r.bytes;
  const end = r.members(at, GEMINI_PART, S_ITEM);
  // Read before S_INNER is reused: where the functionResponse is.
  const response = isObjectAt(bytes, S_ITEM, 1) ? S_ITEM[3]! : -1;
  if (isObjectAt(bytes, S_ITEM, 0)) {
    r.members(S_ITEM[0]!, GEMINI_CALL, S_INNER);
    if (isStringAt(bytes, S_INNER, 0)) {
      pushText(calls, S_INNER, 0);
      const args = S_INNER[3]!;
      // `args ?? {}`: a missing or null argument list reads as `{}`.
      if (args < 0 || bytes[args] === 0x6e) calls.push(EMPTY_OBJECT_TEXT, 0, ESCAPED);
      else pushText(calls, S_INNER, 1);
    }
  }
  if (response >= 0) {
    r.members(response, GEMINI_RESPONSE, S_INNER);
    pushText(results, S_INNER, 0);
  }
  return end;
};

/** Each protocol's `role` (whether `assistant`), `toolCalls` and `toolResults`, as conversation.ts reads them. */
const TURNS: Readonly<Record<Protocol, TurnOf>> = {
  openai(r, at, calls, results) {
    // role 0, tool_calls 1, content 2
    readTurn(r, at, OPENAI_TURN, 1, openaiCall, calls, results);
    if (isString(r.bytes, S_TURN, 0, V.tool)) pushText(results, S_TURN, 2);
    return isString(r.bytes, S_TURN, 0, V.assistant);
  },
  anthropic(r, at, calls, results) {
    // role 0, content 1
    readTurn(r, at, ANTHROPIC_TURN, 1, anthropicBlock, calls, results);
    return isString(r.bytes, S_TURN, 0, V.assistant);
  },
  gemini(r, at, calls, results) {
    // role 0, parts 1
    readTurn(r, at, GEMINI_TURN, 1, geminiPart, calls, results);
    return isString(r.bytes, S_TURN, 0, V.model);
  },
  responses(r, at, calls, results) {
    const bytes = r.bytes;
    r.members(at, RESPONSES_ITEM, S_TURN);
    // type 0, name 1, role 2, arguments 3, input 4, output 5
    const functionCall = isString(bytes, S_TURN, 0, V.function_call);
    const customCall = isString(bytes, S_TURN, 0, V.custom_tool_call);
    let assistant: boolean;
    if (functionCall || customCall) assistant = true;
    else if (S_TURN[0]! >= 0 && !isString(bytes, S_TURN, 0, V.message)) assistant = false;
    else assistant = isString(bytes, S_TURN, 2, V.assistant);
    if (isStringAt(bytes, S_TURN, 1)) {
      if (functionCall) {
        pushText(calls, S_TURN, 1);
        pushText(calls, S_TURN, 3);
      } else if (customCall) {
        pushText(calls, S_TURN, 1);
        pushText(calls, S_TURN, 4);
      }
    }
    if (
      isString(bytes, S_TURN, 0, V.function_call_output) ||
      isString(bytes, S_TURN, 0, V.custom_tool_call_output)
    )
      pushText(results, S_TURN, 5);
    return assistant;
  },
};

/** A text as the reader gives it (`jsonText`): a string's text, any other value's JSON text. */
function decode(bytes: Buffer, texts: Texts, i: number): string {
  const start = texts.a[i]!;
  if (start === NULL_TEXT) return 'null';
  if (start === EMPTY_OBJECT_TEXT) return '{}';
  const parsed = JSON.parse(bytes.toString('utf8', start, texts.a[i + 1])) as unknown;
  return typeof parsed === 'string' ? parsed : JSON.stringify(parsed ?? null);
}

/**
 * Whether two lists of texts differ as the guard's signatures would (loop-guard.ts: a call's name and
 * arguments joined by `\u0000`, the calls by `\u0001`; results by `\u0001`): text by text when every text is
 * a string written the one way JSON can (no text then holds a separator) and the lists are as long — on
 * the bytes (`compareBytes`), or their UTF-8 text when those cannot tell; else on the joined texts.
 */
function differ(bytes: Buffer, at: Texts, bt: Texts, pairs: boolean): boolean {
  const n = at.length;
  if (n !== bt.length) return joined(bytes, at, pairs) !== joined(bytes, bt, pairs);
  const a = at.a;
  const b = bt.a;
  let canonical = true;
  // A form other than ESCAPED is only ever a string's (in the bytes).
  for (let i = 0; canonical && i < n; i += 3)
    canonical = a[i]! >= 0 && b[i]! >= 0 && a[i + 2] !== ESCAPED && b[i + 2] !== ESCAPED;
  if (!canonical) return joined(bytes, at, pairs) !== joined(bytes, bt, pairs);
  for (let i = 0; i < n; i += 3) {
    const x = a[i]!;
    const xEnd = a[i + 1]!;
    const y = b[i]!;
    const yEnd = b[i + 1]!;
    const compared = compareBytes(bytes, x, xEnd, y, yEnd);
    if (compared === SAME) continue;
    if (compared === DIFFERENT) return true;
    if (bytes.toString('utf8', x, xEnd) !== bytes.toString('utf8', y, yEnd)) return true;
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
function compareBytes(bytes: Buffer, x: number, xEnd: number, y: number, yEnd: number): number {
  const n = Math.min(xEnd - x, yEnd - y);
  for (let k = 0; k < n; k++) {
    const p = bytes[x + k]!;
    const q = bytes[y + k]!;
    if (p !== q) return p < 0x80 && q < 0x80 ? DIFFERENT : UNSURE;
  }
  // Each ends with its closing quote: one cannot be the other's beginning.
  return xEnd - x === yEnd - y ? SAME : UNSURE;
}

/** The texts as the guard joins them: calls `name\u0000args` by `\u0001`, results by `\u0001`. */
function joined(bytes: Buffer, texts: Texts, pairs: boolean): string {
  let out = '';
  for (let i = 0; i < texts.length; i += 3) {
    const index = i / 3;
    if (index > 0) out += pairs && index % 2 === 1 ? '\u0000' : '\u0001';
    out += decode(bytes, texts, i);
  }
  return out;
}

/** The reader and its lists, kept from one request to the next (nothing here is ever asynchronous). */
const READER = new Reader();
/** The newest two turns' calls and results, and a third list for a turn that is not kept. */
const CALLS = [new Texts(), new Texts(), new Texts()];
const RESULTS = [new Texts(), new Texts(), new Texts()];

/**
 * Whether the newest two tool calls differ and the newest two tool results differ, read from the bytes of
 * the turns that start at `starts` (newest first, as `arrayTailStarts` gives them): true only when both pairs are there and differ; false when they do not or when the
 * bytes are not read here.
 */
export function newestToolTurnsDiffer(protocol: Protocol, bytes: Buffer, starts: readonly number[]): boolean {
  const reader = READER;
  reader.bytes = bytes;
  const turnOf = TURNS[protocol];
  let calls = 0;
  let results = 0;
  try {
    // Every turn given is read (its strings checked, as parsing them would), newest first.
    for (const start of starts) {
      if (bytes[start] !== OPEN_OBJECT) return false;
      const turnCalls = CALLS[calls]!;
      const turnResults = RESULTS[results]!;
      turnCalls.length = 0;
      turnResults.length = 0;
      const assistant = turnOf(reader, start, turnCalls, turnResults);
      if (assistant && turnCalls.length > 0 && calls < 2) calls++;
      if (turnResults.length > 0 && results < 2) results++;
    }
    if (calls < 2 || results < 2) return false;
    return differ(bytes, CALLS[0]!, CALLS[1]!, true) && differ(bytes, RESULTS[0]!, RESULTS[1]!, false);
  } catch (err) {
    if (err === UNREAD || err instanceof SyntaxError) return false;
    throw err;
  } finally {
    // The body is not kept past the request.
    reader.bytes = EMPTY;
  }
}

const EMPTY = Buffer.alloc(0);
