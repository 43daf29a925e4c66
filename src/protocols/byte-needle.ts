/**
 * A short byte string searched for again and again on the hot path: in a stream's chunks (`"error"`,
 * `"usage"`, a tool call's marker) and in a request's bytes (a command's prefix, a signature's mark, a
 * tool-call marker in the turns). Two searches, because the text decides which is fast
 * (docs/performance.md, "Searching bytes"):
 *
 * - `indexIn`, for any bytes: `Buffer.indexOf` crosses into C++ on every call, which costs more than
 *   searching a few hundred bytes; so a short span is searched for the needle's rarest byte with the
 *   engine's own `Uint8Array.prototype.indexOf` (no boundary crossed) and the rest compared in place. A long
 *   span goes to `Buffer.indexOf`, whose native search wins on a request's prose and code.
 * - `indexInEvents`, for a stream's events — JSON envelopes around a few words: Node's native search starts
 *   from the needle's first byte, and needles that start with a quote stop it at every string of the
 *   envelope (4–12 µs for `"error"` over the bench's 4.6 KB stream of 20 events). A Boyer–Moore–Horspool
 *   search in JavaScript looks at about one byte in every few there (2.4–2.8 µs on the same bytes) — and
 *   loses to the native search on prose, so it is kept for events.
 */

/** Past this many bytes, `indexIn` leaves the search to the native one. */
const NATIVE_FROM = 2048;

/**
 * Bytes ranked from the most to the least common in JSON text (its punctuation, digits, English letters by
 * frequency); a byte not listed is taken as rarer than all of them (an upper-case letter, `_`, `-`).
 */
const COMMON = '" :,{}0123456789etaoinsrhldcumfpgwybvkxjqz';

const u8IndexOf = Uint8Array.prototype.indexOf;
const nativeIndexOf = Buffer.prototype.indexOf;

export class ByteNeedle {
  readonly bytes: Buffer;
  /** The needle as text, for a search of text already decoded. */
  readonly text: string;
  /** The index of the byte the search anchors on, and that byte. */
  readonly #anchorAt: number;
  readonly #anchor: number;
  /** Horspool's table: how far `indexInEvents` may move when the byte under the needle's end is `b`. */
  readonly #shift: Uint8Array;

  constructor(text: string) {
    this.text = text;
    this.bytes = Buffer.from(text);
    const n = this.bytes.length;
    if (n === 0) throw new Error('an empty needle');
    if (n > 255) throw new Error('a needle of more than 255 bytes');
    let anchorAt = 0;
    let rank = -1;
    this.bytes.forEach((byte, at) => {
      const index = COMMON.indexOf(String.fromCharCode(byte));
      const r = index < 0 ? COMMON.length : index;
      if (r > rank) {
        rank = r;
        anchorAt = at;
      }
    });
    this.#anchorAt = anchorAt;
    this.#anchor = this.bytes[anchorAt]!;
    this.#shift = new Uint8Array(256).fill(n);
    for (let i = 0; i < n - 1; i++) this.#shift[this.bytes[i]!] = n - 1 - i;
  }

  /** Where the needle first starts in `bytes[start, end)`, or -1. */
  indexIn(bytes: Uint8Array, start = 0, end = bytes.length): number {
    const needle = this.bytes;
    const n = needle.length;
    if (end - start > NATIVE_FROM) {
      const at = nativeIndexOf.call(bytes, needle, start) as number;
      return at >= 0 && at + n <= end ? at : -1;
    }
    const anchorAt = this.#anchorAt;
    const last = end - n + anchorAt;
    for (
      let at = u8IndexOf.call(bytes, this.#anchor, start + anchorAt);
      at >= 0 && at <= last;
      at = u8IndexOf.call(bytes, this.#anchor, at + 1)
    ) {
      const from = at - anchorAt;
      let i = 0;
      while (i < n && bytes[from + i] === needle[i]) i++;
      if (i === n) return from;
    }
    return -1;
  }

  /** `indexIn` for a stream's events (see the module's comment): where the needle first starts, or -1. */
  indexInEvents(bytes: Uint8Array, start = 0, end = bytes.length): number {
    const needle = this.bytes;
    const shift = this.#shift;
    const n = needle.length;
    const lastByte = needle[n - 1]!;
    const stop = Math.min(end, bytes.length);
    let i = Math.max(0, start) + n - 1;
    while (i < stop) {
      const c = bytes[i]!;
      if (c === lastByte) {
        let k = 1;
        while (k < n && bytes[i - k] === needle[n - 1 - k]) k++;
        if (k === n) return i - n + 1;
      }
      i += shift[c]!;
    }
    return -1;
  }

  /** Whether `bytes[start, end)` holds the needle. */
  in(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    return this.indexIn(bytes, start, end) >= 0;
  }
}

/** Whether `bytes[start, end)` holds any of the needles. */
export function holdsAny(
  needles: readonly ByteNeedle[],
  bytes: Uint8Array,
  start = 0,
  end = bytes.length,
): boolean {
  for (let i = 0; i < needles.length; i++) if (needles[i]!.in(bytes, start, end)) return true;
  return false;
}

/** `holdsAny` over a stream's events (`indexInEvents`). */
export function eventsHoldAny(needles: readonly ByteNeedle[], bytes: Uint8Array): boolean {
  for (let i = 0; i < needles.length; i++) if (needles[i]!.indexInEvents(bytes) >= 0) return true;
  return false;
}
