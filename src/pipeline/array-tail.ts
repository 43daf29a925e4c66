/**
 * The newest elements of a JSON array read from its bytes, without parsing the rest: the loop guard needs a
 * conversation's last turns, and a coding agent's conversation is hundreds of kilobytes it otherwise
 * forwards unparsed (docs/performance.md, "Large bodies"). The bytes are JSON already checked by the chat
 * lane (src/protocols/json-scan.ts); strings are skipped with the native `indexOf`.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/** Where each top-level element of the array in `bytes[start, end)` starts; null when it is not an array. */
function elementStarts(bytes: Uint8Array, start: number, end: number): number[] | null {
  let i = start;
  while (i < end && bytes[i] !== OPEN_ARRAY) {
    if (bytes[i]! > 0x20) return null;
    i++;
  }
  if (i === end) return null;
  const starts: number[] = [];
  let depth = 0;
  let expecting = true;
  for (i++; i < end; i++) {
    const b = bytes[i]!;
    if (b <= 0x20) continue;
    if (expecting && depth === 0 && b !== CLOSE_ARRAY) {
      starts.push(i);
      expecting = false;
    }
    if (b === QUOTE) {
      // The closing quote: the next one not escaped (preceded by an even run of backslashes).
      let close = i;
      for (;;) {
        close = Buffer.prototype.indexOf.call(bytes, QUOTE, close + 1) as number;
        if (close < 0 || close >= end) return null;
        let slashes = 0;
        while (bytes[close - 1 - slashes] === BACKSLASH) slashes++;
        if (slashes % 2 === 0) break;
      }
      i = close;
    } else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
      depth++;
    } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) {
      if (depth === 0) return starts;
      depth--;
    } else if (b === COMMA && depth === 0) {
      expecting = true;
    }
  }
  return null;
}

/**
 * The last `count` elements of the array in `bytes[start, end)`, parsed, and whether they are all of them;
 * null when the bytes are not an array.
 */
export function arrayTail(
  bytes: Uint8Array,
  start: number,
  end: number,
  count: number,
): { elements: unknown[]; all: boolean } | null {
  const starts = elementStarts(bytes, start, end);
  if (starts === null) return null;
  const from = Math.max(0, starts.length - count);
  if (from === 0) {
    const all = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('utf8'));
    return Array.isArray(all) ? { elements: all, all: true } : null;
  }
  const text = `[${Buffer.from(bytes.buffer, bytes.byteOffset + starts[from]!, end - starts[from]!).toString('utf8')}`;
  const elements = JSON.parse(text) as unknown;
  return Array.isArray(elements) ? { elements, all: false } : null;
}
