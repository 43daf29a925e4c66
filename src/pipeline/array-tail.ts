/**
 * The newest elements of a JSON array read from its bytes, without parsing the rest: the loop guard needs a
 * conversation's last turns, and a coding agent's conversation is hundreds of kilobytes it otherwise
 * forwards unparsed (docs/performance.md, "Large bodies"). The bytes are JSON already checked by the chat
 * lane (src/protocols/json-scan.ts). The array is read backwards from its end, so the cost is that of the
 * elements asked for, not of the whole array: a quote met outside a string closes one, and its opening quote
 * is the previous quote not escaped (not preceded by an odd run of backslashes — outside strings JSON has no
 * backslash), found by a short loop and, past it, the native `lastIndexOf`.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/** Bytes searched by a plain loop before the native search takes over (a call costs more than a short loop). */
const NEAR = 64;

/** The last quote before `at` (-1: none): short strings by a loop, long ones by the native `lastIndexOf`. */
function quoteBefore(bytes: Uint8Array, at: number): number {
  const stop = Math.max(0, at - NEAR);
  for (let i = at - 1; i >= stop; i--) if (bytes[i] === QUOTE) return i;
  return stop === 0 ? -1 : (Buffer.prototype.lastIndexOf.call(bytes, QUOTE, stop - 1) as number);
}

/** Whether the quote at `at` is escaped: preceded by an odd run of backslashes. */
function escaped(bytes: Uint8Array, at: number): boolean {
  let slashes = 0;
  while (bytes[at - 1 - slashes] === BACKSLASH) slashes++;
  return slashes % 2 === 1;
}

/** Where an array's last elements start, newest first, and whether they are all of its elements. */
export interface TailStarts {
  starts: number[];
  all: boolean;
}

/**
 * Where the last `count` top-level elements of the array in `bytes[start, end)` start, newest first, and
 * whether they are all of them; null when the bytes are not an array.
 */
export function arrayTailStarts(
  bytes: Uint8Array,
  start: number,
  end: number,
  count: number,
): TailStarts | null {
  let first = start;
  while (first < end && bytes[first]! <= 0x20) first++;
  if (bytes[first] !== OPEN_ARRAY) return null;
  let i = end - 1;
  while (i > first && bytes[i]! <= 0x20) i--;
  if (i <= first || bytes[i] !== CLOSE_ARRAY) return null;
  const starts: number[] = [];
  /** The last byte of an element seen (not whitespace, not a comma) since the last boundary. */
  let earliest = -1;
  let depth = 0;
  for (i--; i > first; i--) {
    const b = bytes[i]!;
    if (b <= 0x20) continue;
    if (b === QUOTE) {
      let open = i;
      do {
        open = quoteBefore(bytes, open);
        if (open <= first) return null;
      } while (escaped(bytes, open));
      i = open;
      if (depth === 0) earliest = open;
      continue;
    }
    if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) {
      if (depth === 0) earliest = i;
      depth++;
    } else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
      if (depth === 0) return null;
      if (--depth === 0) earliest = i;
    } else if (depth === 0) {
      if (b !== COMMA) {
        earliest = i;
        continue;
      }
      if (earliest < 0) return null;
      starts.push(earliest);
      earliest = -1;
      if (starts.length === count) return { starts, all: false };
    }
  }
  if (depth !== 0) return null;
  if (earliest >= 0) starts.push(earliest);
  return { starts, all: true };
}

/**
 * The last `count` elements of the array in `bytes[start, end)`, parsed, and whether they are all of them;
 * null when the bytes are not an array. `found`: their starts, when `arrayTailStarts` gave them already.
 */
export function arrayTail(
  bytes: Uint8Array,
  start: number,
  end: number,
  count: number,
  found: TailStarts | null = arrayTailStarts(bytes, start, end, count),
): { elements: unknown[]; all: boolean } | null {
  if (found === null) return null;
  if (found.all) {
    const all = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('utf8'));
    return Array.isArray(all) ? { elements: all, all: true } : null;
  }
  const from = found.starts[found.starts.length - 1]!;
  const text = `[${Buffer.from(bytes.buffer, bytes.byteOffset + from, end - from).toString('utf8')}`;
  const elements = JSON.parse(text) as unknown;
  return Array.isArray(elements) ? { elements, all: false } : null;
}
