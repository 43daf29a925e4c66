/**
 * A short byte string searched for again and again in small buffers — a stream's chunks, a request's
 * `tools` member — on the hot path (docs/performance.md, "Guards that do not fire"). `Buffer.indexOf` crosses
 * into C++ on every call, which costs more than searching a few hundred bytes; here the search finds the
 * needle's rarest byte with the engine's own `Uint8Array.prototype.indexOf` (no boundary crossed) and
 * compares the rest in place. A long span still goes to `Buffer.indexOf`, whose native search wins there.
 */

/** Past this many bytes, the native substring search is the faster one. */
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

  constructor(text: string) {
    this.text = text;
    this.bytes = Buffer.from(text);
    if (this.bytes.length === 0) throw new Error('an empty needle');
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
