/**
 * A short byte string searched for again and again on the hot path: in a stream's chunks (`"error"`,
 * `"usage"`, a tool call's marker) and in a request's bytes (a command's prefix, a signature's mark, a
 * tool-call marker in the turns). Two searches, because the text decides which is fast
 * (docs/performance.md, "Searching bytes"):
 *
 * - `indexIn`, for any bytes: a short span is searched for the needle's rarest byte with `Buffer.indexOf`
 *   given a number (a `memchr` behind one of V8's fast calls: 12–25 ns up to 1 KB), and the rest compared
 *   in place. Not the engine's own `Uint8Array.prototype.indexOf`, which walks the elements one by one in
 *   C++ (~100 ns over 128 bytes, ~1.1 µs over the bench's 310-byte body). Given a needle as bytes,
 *   `Buffer.indexOf` takes the slow way into C++ (~370 ns a call): a long span goes there, whose native
 *   search wins on a request's prose and code — given the needle from its rarest byte on: that search stops
 *   at each occurrence of its needle's first byte (a `memchr`), and a quote or a lower-case letter there is
 *   met every few bytes of a prompt (`"tool_call` over the bench's 32 KB body: 35–60 µs whole, 0.4–2 µs
 *   from its `_`).
 * - `indexInEvents`, for a stream's events — JSON envelopes around a few words: Node's native search starts
 *   from the needle's first byte, and needles that start with a quote stop it at every string of the
 *   envelope (4–12 µs for `"error"` over the bench's 4.6 KB stream of 20 events). A Boyer–Moore–Horspool
 *   search in JavaScript looks at about one byte in every few there (2.4–2.8 µs on the same bytes) — and
 *   loses to the native search on prose, so it is kept for events.
 */

/**
 * Past this many bytes, `indexIn` leaves the search to the native search of the needle's tail: on a long
 * prompt the anchor byte alone may be met often enough that one search per meeting costs more.
 */
const NATIVE_FROM = 512;

/**
 * Bytes ranked from the most to the least common in JSON text (its punctuation, digits, English letters by
 * frequency, then the punctuation of code and prose, then upper-case letters by frequency); a byte not
 * listed is taken as rarer than all of them.
 */
const COMMON = '" :,{}0123456789etaoinsrhldcumfpgwybvkxjqz\\.-_/()[]\'=;<>*TSAICEMNPRLODBHFWGUVYKJQXZ';
/**
 * Candidates the native search may find for the needle's tail whose start is not the needle's: past this
 * many in one search, the whole needle is searched for (a tail common in that text costs no more than that).
 */
const TAIL_MISSES = 8;

const nativeIndexOf = Buffer.prototype.indexOf;

export class ByteNeedle {
  readonly bytes: Buffer;
  /** The needle as text, for a search of text already decoded. */
  readonly text: string;
  /** The index of the byte the search anchors on, and that byte. */
  readonly #anchorAt: number;
  readonly #anchor: number;
  /** The needle from its anchor on: what the native search looks for. */
  readonly #tail: Buffer;
  /** Horspool's table: how far `indexInEvents` may move when the byte under the needle's end is `b`. */
  readonly #shift: Uint8Array;

  constructor(text: string) {
    this.text = text;
    this.bytes = Buffer.from(text);
    const n = this.bytes.length;
    if (n === 0) throw new Error('an empty needle');
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
    this.#tail = this.bytes.subarray(anchorAt);
    // Shifts past 255 are cut to 255 (a shorter shift is always safe), for needles of any length.
    this.#shift = new Uint8Array(256).fill(Math.min(n, 255));
    for (let i = 0; i < n - 1; i++) this.#shift[this.bytes[i]!] = Math.min(n - 1 - i, 255);
  }

  /** Where the needle first starts in `bytes[start, end)`, or -1. */
  indexIn(bytes: Uint8Array, start = 0, end = bytes.length): number {
    const needle = this.bytes;
    const n = needle.length;
    const anchorAt = this.#anchorAt;
    if (end - start > NATIVE_FROM) {
      const tail = this.#tail;
      let misses = 0;
      for (
        let at = nativeIndexOf.call(bytes, tail, start + anchorAt) as number;
        at >= 0;
        at = nativeIndexOf.call(bytes, tail, at + 1) as number
      ) {
        const from = at - anchorAt;
        if (from + n > end) return -1;
        let i = 0;
        while (i < anchorAt && bytes[from + i] === needle[i]) i++;
        if (i === anchorAt) return from;
        if (++misses === TAIL_MISSES) {
          const whole = nativeIndexOf.call(bytes, needle, from + 1) as number;
          return whole >= 0 && whole + n <= end ? whole : -1;
        }
      }
      return -1;
    }
    const last = end - n + anchorAt;
    for (
      let at = nativeIndexOf.call(bytes, this.#anchor, start + anchorAt) as number;
      at >= 0 && at <= last;
      at = nativeIndexOf.call(bytes, this.#anchor, at + 1) as number
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
