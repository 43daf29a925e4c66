/**
 * A fixed byte string found in buffers by a Boyer–Moore–Horspool search written in JavaScript.
 *
 * Why not `Buffer.indexOf`: Node's native search starts from the needle's first byte (a `memchr`), and the
 * needles the proxy looks for in a stream's bytes start with a quote (`"error"`, `"usage"`), the most
 * common byte in JSON — so it stops at every string and costs 1.5–2.5 ns a byte: a 4.6 KB stream of 20
 * events took 11.6 µs for `"error"` alone. Horspool looks at about one byte in every few (it skips by the
 * needle's length on a byte the needle does not end in) and took 2.4 µs on the same bytes, whatever they
 * hold (docs/performance.md, "Where a streamed request's time went"). For a needle whose first byte is
 * rare in the text searched (`__lip1_`), the native search stays the faster one: use this where the text
 * is JSON structure.
 */
export class BytePattern {
  readonly bytes: Buffer;
  /** How far the search may move when the byte under the needle's last position is `b`. */
  private readonly shift: Uint8Array;
  private readonly last: number;

  constructor(text: string) {
    const bytes = Buffer.from(text);
    if (bytes.length === 0 || bytes.length > 255) throw new RangeError('a pattern is 1 to 255 bytes');
    this.bytes = bytes;
    const m = bytes.length;
    this.shift = new Uint8Array(256).fill(m);
    for (let i = 0; i < m - 1; i++) this.shift[bytes[i]!] = m - 1 - i;
    this.last = bytes[m - 1]!;
  }

  get length(): number {
    return this.bytes.length;
  }

  /** Where the pattern first starts in `hay[from, to)`, or -1. */
  indexIn(hay: Uint8Array, from = 0, to = hay.length): number {
    const pattern = this.bytes;
    const shift = this.shift;
    const last = this.last;
    const m = pattern.length;
    const end = Math.min(to, hay.length);
    let i = Math.max(0, from) + m - 1;
    while (i < end) {
      const c = hay[i]!;
      if (c === last) {
        let k = 1;
        while (k < m && hay[i - k] === pattern[m - 1 - k]) k++;
        if (k === m) return i - m + 1;
      }
      i += shift[c]!;
    }
    return -1;
  }

  /** Whether the pattern is anywhere in `hay`. */
  isIn(hay: Uint8Array): boolean {
    return this.indexIn(hay) !== -1;
  }
}
