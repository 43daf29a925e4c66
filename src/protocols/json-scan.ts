import { MAX_JSON_DEPTH } from './json-depth.js';

/**
 * JSON checked on its bytes, without decoding or parsing it: the chat lane's checks of a request body
 * (docs/architecture.md, "The chat lane") in one pass, and where the top-level members are, so that the
 * pipeline reads the few fields it needs (model, stream) without parsing the rest — a coding agent's body is
 * hundreds of kilobytes of prompt the proxy forwards as it came (docs/performance.md, "Large bodies").
 *
 * The verdicts are the ones the chat lane gave when it decoded and parsed every body (`secure-json-parse`,
 * then the depth cap), in the same order, and `json-scan.test.ts` holds them equal, by fuzzing too:
 * - `invalid`: not JSON as `JSON.parse` reads the UTF-8 decoded bytes, or an object key `__proto__` (however
 *   escaped), which secure-json-parse refuses;
 * - `undecided`: arrays and objects nested deeper than MAX_JSON_DEPTH: too deep, or invalid further on —
 *   the caller parses the text to tell (the scan stops there, so its recursion stays bounded);
 * - `ok`: with the top-level value's kind and, for an object, its members' value ranges (the last of a
 *   repeated name, as JSON.parse keeps the last).
 *
 * One difference, on purpose: the contents of string VALUES are not looked at (keys are, every one), unless
 * `checkStrings` asks. The structure, every key and the depth are the full parser's verdict; a raw control
 * character or a bad escape inside a string value is found by the parser that reads that member (a 400
 * `invalid_json` all the same) or, on a body passed through untouched, by the provider's — the proxy never
 * acts on a value it has not parsed. Bytes that are not valid UTF-8 inside a string are accepted, as
 * decoding them gave U+FFFD; outside strings every byte is ASCII or the JSON is invalid, whatever the
 * decoding. A leading byte order mark is skipped, as secure-json-parse skips it.
 */
export type JsonScan =
  | { readonly verdict: 'invalid' | 'undecided' }
  | {
      readonly verdict: 'ok';
      /** Whether the top-level value is an object (else an array, a string, a number, a literal). */
      readonly isObject: boolean;
      /** Top-level members of an object: name → [start, end) of the value's bytes. */
      readonly members: ReadonlyMap<string, readonly [number, number]>;
    };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/**
 * The native byte search, called as a function: `bytes.indexOf` is looked up on Buffer.prototype, which
 * the engine keeps as a dictionary, so an optimized scan paid an inline-cache call for the lookup on every
 * quote (~75 instructions each, 5 % of a 32 KB request's own work under callgrind).
 */
const indexOf = Buffer.prototype.indexOf;

/** JSON whitespace. */
const SPACE = new Uint8Array(256);
for (const b of [0x20, 0x09, 0x0a, 0x0d]) SPACE[b] = 1;
/** JSON whitespace within one line: a line feed ends the line (`jsonLineEnd`). */
const LINE_SPACE = SPACE.slice();
LINE_SPACE[0x0a] = 0;
/** Characters a backslash may escape besides `u`. */
const ESCAPABLE = new Uint8Array(256);
for (const c of '"\\/bfnrt') ESCAPABLE[c.charCodeAt(0)] = 1;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;

const PROTO = '__proto__';

// Thrown (never seen outside this module) to end a scan: no stack trace is captured for them.
const INVALID = Object.freeze({ verdict: 'invalid' as const });
const UNDECIDED = Object.freeze({ verdict: 'undecided' as const });

/** One pass over `bytes`; see JsonScan. `checkStrings`: look at string values' contents too (the tests' yardstick). */
export function scanJson(bytes: Uint8Array, checkStrings = false): JsonScan {
  try {
    return new Scanner(bytes, checkStrings).run();
  } catch (err) {
    if (err === INVALID || err === UNDECIDED) return err as JsonScan;
    throw err;
  }
}

/**
 * Whether `bytes` (or `bytes[start, end)`) are one JSON value, as `JSON.parse` reads their UTF-8 text —
 * checked on the bytes, nothing decoded or built (a stream's events passed through,
 * src/pipeline/event-filter.ts). An object key `__proto__` counts as invalid, as in `scanJson`; nesting past
 * the depth cap is left to `JSON.parse`. `end` must be the end of `bytes` or fall on a line break (as an
 * event's data line ends): nothing past it is read.
 *
 * Strings' contents are checked too (an event is small, and JSON.parse's verdict is the one promised). One
 * flat loop with the position in a local and the open containers on a small stack, not the recursive
 * `Scanner`, whose calls kept the position in the object: it is run on every event of every stream passed
 * through (docs/performance.md, "A stream's chunks and events").
 */
export function isJsonValue(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
  const after = valueEnd(bytes, start, end, SPACE);
  return after === UNDECIDED_END ? parses(bytes, start, end) : after === end;
}

/**
 * Where the line that holds one JSON value from `start` on ends — the index of its line feed — when the value
 * is JSON as `isJsonValue` reads it and only whitespace follows it on the line; -1 otherwise (not JSON, more
 * than one line, no line feed, nesting past the depth cap: `isJsonValue` over the line gives the verdict).
 * One pass over the line, which needs no search for its end first: a line feed is no whitespace here, and
 * no value or string may hold one, so the scan stops at the first (an event's data line: event-filter.ts).
 */
export function jsonLineEnd(bytes: Uint8Array, start: number): number {
  errorMarked = false;
  toolMarked = false;
  const after = valueEnd(bytes, start, bytes.length, LINE_SPACE);
  return after >= 0 && bytes[after] === LF ? after : -1;
}

/**
 * Whether the value the last `jsonLineEnd` found may hold the bytes `"error"` (the mark of a backend's
 * error event: src/redaction/upstream-errors.ts). In JSON text those bytes can only be a string that is
 * `error`, or the end of one whose last characters are an escaped quote and `error` (a quote there is a
 * string's opening or closing one, or an escaped one; after a closing quote no `e` may follow): every
 * string's end is looked at for them as it is scanned, so a line that holds neither is known free of
 * the mark without a search of its bytes. A member `"error": null` is no mark (the guard passes it too).
 */
export function lineMayHoldErrorMark(): boolean {
  return errorMarked;
}

/** Set by `stringEnd` when a string is `error` or ends in `\"error` (`lineMayHoldErrorMark`). */
let errorMarked = false;
const ERROR_WORD = [0x65, 0x72, 0x72, 0x6f, 0x72];

/**
 * Whether the value the last `jsonLineEnd` found may hold a tool call's marker: any of `TOOL_MARK_WORDS` as
 * a JSON string's bytes (`"tool_calls"`: what the dangerous-command guard's stream tap searches for,
 * src/pipeline/tool-call-tap.ts). By the reasoning of `lineMayHoldErrorMark`, such bytes can only be a
 * string that is the word, or one that ends in an escaped quote and the word. The scan keeps no more than
 * one table lookup per string for it: a string with an escape, or as long as a word and ending in that
 * word's last byte, may be one (false only when no string can be).
 */
export function lineMayHoldToolMark(): boolean {
  return toolMarked;
}

/** Set by `stringEnd` for a string that may be one of TOOL_MARK_WORDS or end in `\"` and one. */
let toolMarked = false;
/**
 * Every protocol's tool-call markers, without their quotes (tool-call-tap.ts `CALL_MARKERS`; a test holds
 * the two lists equal).
 */
export const TOOL_MARK_WORDS: readonly string[] = [
  'tool_calls',
  'tool_use',
  'functionCall',
  'function_call',
  'custom_tool_call',
  'local_shell_call',
  'shell_call',
];
/** One past the longest word's length: a longer string without an escape is none of them. */
const TOOL_WORD_BOUND = Math.max(...TOOL_MARK_WORDS.map((word) => word.length)) + 1;
/** 1 at `length << 8 | last byte` of each word. */
const TOOL_WORD_END = new Uint8Array(TOOL_WORD_BOUND << 8);
for (const word of TOOL_MARK_WORDS) TOOL_WORD_END[(word.length << 8) | word.charCodeAt(word.length - 1)] = 1;

/** `error` at `i`. */
function isErrorWord(b: Uint8Array, i: number): boolean {
  for (let k = 0; k < ERROR_WORD.length; k++) if (b[i + k] !== ERROR_WORD[k]) return false;
  return true;
}

const LF = 0x0a;
/** Set by `valueEnd` for nesting past the depth cap: the full parser's verdict. */
const UNDECIDED_END = -2;

/**
 * The end of the JSON value at `start` and the whitespace after it (`space`: the bytes taken for it), or -1
 * when the bytes are not one (`UNDECIDED_END` past the depth cap). Nothing at or past `end` is taken as part
 * of the value.
 */
function valueEnd(bytes: Uint8Array, start: number, end: number, space: Uint8Array): number {
  const b = bytes;
  let i = start;
  let depth = 0;
  while (i < end && space[b[i]!] === 1) i++;
  for (;;) {
    // A value at `i`.
    if (i >= end) return -1;
    const c = b[i]!;
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      // Deeper than the cap: the verdict (too deep, or invalid further on) is the full parser's to give.
      if (++depth > MAX_JSON_DEPTH) return UNDECIDED_END;
      i++;
      while (i < end && space[b[i]!] === 1) i++;
      if (c === 0x7b) {
        OPEN[depth] = 0x7d;
        if (b[i] === 0x7d && i < end) {
          i++;
          depth--;
        } else {
          i = member(b, i, end, space);
          if (i < 0) return -1;
          continue;
        }
      } else {
        OPEN[depth] = 0x5d;
        if (b[i] === 0x5d && i < end) {
          i++;
          depth--;
        } else continue;
      }
    } else if (c === QUOTE) {
      i = stringEnd(b, i, end);
      if (i < 0) return -1;
    } else if (c === 0x74 /* t */) {
      if (i + 4 > end || b[i + 1] !== 0x72 || b[i + 2] !== 0x75 || b[i + 3] !== 0x65) return -1;
      i += 4;
    } else if (c === 0x66 /* f */) {
      if (i + 5 > end || b[i + 1] !== 0x61 || b[i + 2] !== 0x6c || b[i + 3] !== 0x73 || b[i + 4] !== 0x65)
        return -1;
      i += 5;
    } else if (c === 0x6e /* n */) {
      if (i + 4 > end || b[i + 1] !== 0x75 || b[i + 2] !== 0x6c || b[i + 3] !== 0x6c) return -1;
      i += 4;
    } else {
      i = numberEnd(b, i, end);
      if (i < 0) return -1;
    }
    // After a value: containers closed, until a comma leads to the next value (a member's, in an object).
    for (;;) {
      while (i < end && space[b[i]!] === 1) i++;
      if (depth === 0) return i;
      if (i >= end) return -1;
      const next = b[i]!;
      if (next === 0x2c /* , */) {
        i++;
        while (i < end && space[b[i]!] === 1) i++;
        if (OPEN[depth] === 0x7d) {
          i = member(b, i, end, space);
          if (i < 0) return -1;
        }
        break;
      }
      if (next !== OPEN[depth]) return -1;
      i++;
      depth--;
    }
  }
}

/** The closing byte of each open container by depth (`isJsonValue`: a check runs to its end synchronously). */
const OPEN = new Uint8Array(MAX_JSON_DEPTH + 1);

/** Set by `stringEnd`: the string held an escape. */
let stringEscaped = false;

/**
 * The end (after its closing quote) of the string whose opening quote is at `i`, its contents checked as
 * `JSON.parse` checks them (no control character, only the escapes JSON has); -1 when it is not one.
 */
function stringEnd(b: Uint8Array, i: number, end: number): number {
  let k = i + 1;
  stringEscaped = false;
  while (k < end) {
    const c = b[k]!;
    if (c === QUOTE) {
      const length = k - i - 1;
      if (
        length === ERROR_WORD.length
          ? isErrorWord(b, i + 1)
          : stringEscaped && length > ERROR_WORD.length + 1 && b[k - 6] === QUOTE && isErrorWord(b, k - 5)
      )
        errorMarked = true;
      if (stringEscaped || (length < TOOL_WORD_BOUND && TOOL_WORD_END[(length << 8) | b[k - 1]!] === 1))
        toolMarked = true;
      return k + 1;
    }
    if (c < 0x20) return -1;
    if (c !== BACKSLASH) {
      k++;
      continue;
    }
    stringEscaped = true;
    if (k + 1 >= end) return -1;
    const e = b[k + 1]!;
    if (ESCAPABLE[e] === 1) k += 2;
    else if (e === 0x75 /* u */) {
      if (k + 6 > end) return -1;
      if (HEX[b[k + 2]!] !== 1 || HEX[b[k + 3]!] !== 1 || HEX[b[k + 4]!] !== 1 || HEX[b[k + 5]!] !== 1)
        return -1;
      k += 6;
    } else return -1;
  }
  return -1;
}

const PROTO_BYTES = Buffer.from(PROTO);

/**
 * An object member's name at `i` and its colon: where its value starts, or -1 (not a name, or `__proto__`,
 * which secure-json-parse refuses). A name is decoded only when it may be `__proto__`: 9 bytes, or escaped.
 */
function member(b: Uint8Array, i: number, end: number, space: Uint8Array): number {
  if (i >= end || b[i] !== QUOTE) return -1;
  const marked = errorMarked;
  const after = stringEnd(b, i, end);
  if (after < 0) return -1;
  if (stringEscaped) {
    const name = JSON.parse(Buffer.from(b.buffer, b.byteOffset + i, after - i).toString('utf8')) as string;
    if (name === PROTO) return -1;
  } else if (after - i === PROTO.length + 2) {
    let same = true;
    for (let k = 0; k < PROTO.length && same; k++) same = b[i + 1 + k] === PROTO_BYTES[k];
    if (same) return -1;
  }
  let k = after;
  while (k < end && space[b[k]!] === 1) k++;
  if (k >= end || b[k] !== 0x3a /* : */) return -1;
  k++;
  while (k < end && space[b[k]!] === 1) k++;
  // The name `error` with the value `null` says there is no error, and the error-event guard reads it so
  // (`noErrorAfter`, src/redaction/upstream-errors.ts): not a mark. A Responses stream's first and last
  // events carry it, and would otherwise send every stream's bytes to the guard's search. The value is
  // checked to be `null` by the scan that goes on from `k`.
  if (!marked && errorMarked && after - i === ERROR_WORD.length + 2 && isNullAt(b, k, end))
    errorMarked = false;
  return k;
}

/** `null` at `i` (its four bytes; the scan checks what follows). */
function isNullAt(b: Uint8Array, i: number, end: number): boolean {
  return i + 4 <= end && b[i] === 0x6e && b[i + 1] === 0x75 && b[i + 2] === 0x6c && b[i + 3] === 0x6c;
}

/** The end of the number at `i`, -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?; -1 when it is not one. */
function numberEnd(b: Uint8Array, i: number, end: number): number {
  let k = i;
  if (b[k] === 0x2d) k++;
  if (k >= end) return -1;
  if (b[k] === 0x30) k++;
  else if (isDigit(b[k]!)) while (k < end && isDigit(b[k]!)) k++;
  else return -1;
  if (k < end && b[k] === 0x2e /* . */) {
    k++;
    if (k >= end || !isDigit(b[k]!)) return -1;
    while (k < end && isDigit(b[k]!)) k++;
  }
  if (k < end && (b[k] === 0x65 || b[k] === 0x45) /* e E */) {
    k++;
    if (k < end && (b[k] === 0x2b || b[k] === 0x2d)) k++;
    if (k >= end || !isDigit(b[k]!)) return -1;
    while (k < end && isDigit(b[k]!)) k++;
  }
  return k;
}

/** `JSON.parse`'s verdict on the range's UTF-8 text. */
function parses(b: Uint8Array, start: number, end: number): boolean {
  try {
    JSON.parse(Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

class Scanner {
  private i = 0;
  private depth = 0;
  /** Whether the last string read held an escape or a non-ASCII byte (its text then needs decoding). */
  private escaped = false;
  /** Where whitespace ends being skipped: the end of the value's range. */
  private end: number;

  constructor(
    private readonly b: Uint8Array,
    private readonly checkStrings: boolean,
  ) {
    this.end = b.length;
  }

  run(): JsonScan {
    const b = this.b;
    // A byte order mark, which secure-json-parse (Fastify's parser) removes before parsing.
    if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) this.i = 3;
    this.skipSpace();
    const first = b[this.i];
    const members = new Map<string, readonly [number, number]>();
    if (first === 0x7b /* { */) this.object(members);
    else this.value();
    this.skipSpace();
    if (this.i !== b.length) throw INVALID;
    return { verdict: 'ok', isObject: first === 0x7b, members };
  }

  private skipSpace(): void {
    const b = this.b;
    const end = this.end;
    let i = this.i;
    while (i < end && SPACE[b[i]!] === 1) i++;
    this.i = i;
  }

  private value(): void {
    const b = this.b;
    const c = b[this.i];
    if (c === QUOTE) {
      if (this.checkStrings) this.string();
      else this.skipString();
    } else if (c === 0x7b) this.object(null);
    else if (c === 0x5b /* [ */) this.array();
    else if (c === 0x74 /* t */) this.literal('true');
    else if (c === 0x66 /* f */) this.literal('false');
    else if (c === 0x6e /* n */) this.literal('null');
    else if (c === 0x2d /* - */ || (c !== undefined && isDigit(c))) this.number();
    else throw INVALID;
  }

  /** Deeper than the cap: the verdict (too deep, or invalid further on) is the full parser's to give. */
  private enter(): void {
    if (++this.depth > MAX_JSON_DEPTH) throw UNDECIDED;
  }

  /** An object; at the top level (`members` given) its members' value ranges are noted. */
  private object(members: Map<string, readonly [number, number]> | null): void {
    const b = this.b;
    this.enter();
    this.i++;
    this.skipSpace();
    if (b[this.i] === 0x7d /* } */) {
      this.i++;
      this.depth--;
      return;
    }
    for (;;) {
      if (b[this.i] !== QUOTE) throw INVALID;
      const keyStart = this.i;
      this.string();
      const keyEnd = this.i;
      // A key is decoded only when it may be `__proto__` (9 bytes, or an escape), or is a top-level name.
      if (members !== null || (this.escaped ? true : keyEnd - keyStart === PROTO.length + 2)) {
        const key = this.keyText(keyStart, keyEnd);
        if (key === PROTO) throw INVALID;
        this.skipColon();
        const start = this.i;
        this.value();
        members?.set(key, [start, this.i]);
      } else {
        this.skipColon();
        this.value();
      }
      this.skipSpace();
      const c = b[this.i];
      if (c === 0x2c /* , */) {
        this.i++;
        this.skipSpace();
        continue;
      }
      if (c === 0x7d) {
        this.i++;
        this.depth--;
        return;
      }
      throw INVALID;
    }
  }

  private skipColon(): void {
    this.skipSpace();
    if (this.b[this.i] !== 0x3a /* : */) throw INVALID;
    this.i++;
    this.skipSpace();
  }

  private keyText(start: number, end: number): string {
    const b = this.b;
    if (!this.escaped)
      return Buffer.from(b.buffer, b.byteOffset + start + 1, end - start - 2).toString('latin1');
    return JSON.parse(Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('utf8')) as string;
  }

  private array(): void {
    const b = this.b;
    this.enter();
    this.i++;
    this.skipSpace();
    if (b[this.i] === 0x5d /* ] */) {
      this.i++;
      this.depth--;
      return;
    }
    for (;;) {
      this.value();
      this.skipSpace();
      const c = b[this.i];
      if (c === 0x2c) {
        this.i++;
        this.skipSpace();
        continue;
      }
      if (c === 0x5d) {
        this.i++;
        this.depth--;
        return;
      }
      throw INVALID;
    }
  }

  /**
   * A string value from its opening quote; `i` ends after the closing one. Its contents are not looked at:
   * the scan hops from quote to quote (a native byte search) and tells an escaped quote by the backslashes
   * before it. A coding agent's body is mostly string bytes, and looking at each of them in JavaScript cost
   * several times what a bare pass-through spends on the whole request (docs/performance.md, "Large
   * bodies"). What only a string's contents can make invalid (a raw control character, a bad escape) is
   * found by the parser that reads the member — or, passed through untouched, by the provider's.
   */
  private skipString(): void {
    const b = this.b;
    let quote = this.i;
    for (;;) {
      quote = indexOf.call(b, QUOTE, quote + 1) as number;
      if (quote < 0) throw INVALID;
      let before = quote - 1;
      while (b[before] === BACKSLASH) before--;
      // An even run of backslashes escapes itself: the quote ends the string.
      if (((quote - 1 - before) & 1) === 0) break;
    }
    this.i = quote + 1;
  }

  /**
   * A string from its opening quote; `i` ends after the closing one, and `escaped` tells whether it held an
   * escape or a non-ASCII byte. Its bytes are looked at one by one in a loop of plain comparisons — a
   * coding agent's body is mostly string bytes, and a table lookup per byte cost this scan most of its time
   * (docs/performance.md, "Large bodies").
   */
  private string(): void {
    const b = this.b;
    const n = b.length;
    let i = this.i + 1;
    let escaped = false;
    let high = 0;
    for (;;) {
      let c = 0;
      // Bytes a string holds as they are: anything but a control character, a quote or a backslash.
      while (i < n) {
        c = b[i]!;
        if (c < 0x20 || c === QUOTE || c === BACKSLASH) break;
        high |= c;
        i++;
      }
      if (i >= n) throw INVALID;
      if (c === QUOTE) break;
      if (c !== BACKSLASH) throw INVALID; // a control character
      escaped = true;
      const e = b[i + 1];
      if (e === undefined) throw INVALID;
      if (ESCAPABLE[e] === 1) {
        i += 2;
      } else if (e === 0x75 /* u */) {
        if (i + 5 >= n) throw INVALID;
        for (let k = i + 2; k < i + 6; k++) if (HEX[b[k]!] !== 1) throw INVALID;
        i += 6;
      } else {
        throw INVALID;
      }
    }
    this.escaped = escaped || high >= 0x80;
    this.i = i + 1;
  }

  private literal(word: string): void {
    const b = this.b;
    for (let k = 0; k < word.length; k++) if (b[this.i + k] !== word.charCodeAt(k)) throw INVALID;
    this.i += word.length;
  }

  /** -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
  private number(): void {
    const b = this.b;
    let i = this.i;
    if (b[i] === 0x2d) i++;
    if (b[i] === 0x30) i++;
    else if (b[i] !== undefined && isDigit(b[i]!)) while (b[i] !== undefined && isDigit(b[i]!)) i++;
    else throw INVALID;
    if (b[i] === 0x2e /* . */) {
      i++;
      if (b[i] === undefined || !isDigit(b[i]!)) throw INVALID;
      while (b[i] !== undefined && isDigit(b[i]!)) i++;
    }
    if (b[i] === 0x65 || b[i] === 0x45 /* e E */) {
      i++;
      if (b[i] === 0x2b || b[i] === 0x2d) i++;
      if (b[i] === undefined || !isDigit(b[i]!)) throw INVALID;
      while (b[i] !== undefined && isDigit(b[i]!)) i++;
    }
    this.i = i;
  }
}
