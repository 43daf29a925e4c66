/** Bytes of one chunk of the queue: also the most one batch holds (lines longer get a chunk of their own). */
export const LINE_CHUNK_BYTES = 256 * 1024;
/** Emptied chunks kept for the lines to come. */
const SPARE_CHUNKS = 2;

/** Lines stored in one buffer, read from `start` on. */
interface Chunk {
  readonly buffer: Buffer;
  /** Where the unread lines start. */
  start: number;
  /** Where the lines end (the next line is written here). */
  fill: number;
  /** Each line's bytes, in order; the unread ones from `first` on. */
  lengths: number[];
  first: number;
}

/** The first lines of the queue as one view: `count` lines, `data` their bytes. */
export interface QueuedLines {
  readonly data: Buffer;
  readonly count: number;
}

/**
 * The capture file's lines waiting to be written, as UTF-8 (CaptureWriter). A line is encoded as it is
 * queued, into buffers outside the JavaScript heap: its string dies young. Queued as strings, the lines of a
 * batch outlived the young generation's collections while they waited for the disk, and each collection
 * copied them — in the capture worker, ~1 MB a collection (docs/performance.md, "The wire capture's
 * cost", ninth session).
 *
 * Lines are stored whole in one buffer each (never split), so the first lines of the queue are one
 * contiguous view, handed to a file write as they are.
 */
export class LineQueue {
  private readonly chunks: Chunk[] = [];
  private readonly spares: Buffer[] = [];
  private lineCount = 0;
  private byteCount = 0;

  /** Lines queued. */
  get count(): number {
    return this.lineCount;
  }

  /** Bytes queued. */
  get bytes(): number {
    return this.byteCount;
  }

  /**
   * Encodes `line` at the end of the queue; returns its bytes. A line given in parts (the capture worker's
   * stream lines: the text's JSON between the event's other members) is written part after part — never
   * joined into one string first, which would copy the text once more.
   */
  push(line: string | readonly string[]): number {
    const chars = lineChars(line);
    let tail = this.chunks.at(-1);
    let bytes = -1;
    if (tail !== undefined && tail.buffer.length - tail.fill >= chars) {
      bytes = writeWhole(tail.buffer, tail.fill, line);
    }
    if (bytes < 0) {
      tail = this.chunk(byteLengthOf(line));
      bytes = writeWhole(tail.buffer, tail.fill, line);
    }
    tail!.fill += bytes;
    tail!.lengths.push(bytes);
    this.lineCount++;
    this.byteCount += bytes;
    return bytes;
  }

  /**
   * The first lines, as many as fit in `maxBytes` (all from one buffer); the first one alone when it is
   * longer than `maxBytes` but fits in `firstMax`. Undefined when the first line does not fit, or none is
   * queued. The view is valid until those lines are shifted.
   */
  peek(maxBytes: number, firstMax: number): QueuedLines | undefined {
    const head = this.chunks[0];
    if (head === undefined || head.first === head.lengths.length) return undefined;
    const { lengths } = head;
    let bytes = lengths[head.first]!;
    if (bytes > firstMax) return undefined;
    let end = head.first + 1;
    while (end < lengths.length && bytes + lengths[end]! <= maxBytes) bytes += lengths[end++]!;
    return { data: head.buffer.subarray(head.start, head.start + bytes), count: end - head.first };
  }

  /** Removes the first `count` lines (written or dropped). */
  shift(count: number): void {
    while (count > 0) {
      const head = this.chunks[0];
      if (head === undefined) return;
      const taken = Math.min(count, head.lengths.length - head.first);
      for (let i = 0; i < taken; i++) {
        const bytes = head.lengths[head.first++]!;
        head.start += bytes;
        this.byteCount -= bytes;
      }
      this.lineCount -= taken;
      count -= taken;
      if (head.first < head.lengths.length) return;
      // Read to its end: the last buffer is filled again from its start, another one kept or let go.
      if (this.chunks.length === 1) {
        head.start = 0;
        head.fill = 0;
        head.lengths = [];
        head.first = 0;
        return;
      }
      this.chunks.shift();
      this.release(head.buffer);
    }
  }

  /** Removes every line; returns how many there were. */
  clear(): number {
    const count = this.lineCount;
    this.shift(count);
    return count;
  }

  /** A buffer no longer in the queue: kept for the lines to come (up to SPARE_CHUNKS), or let go. */
  private release(buffer: Buffer): void {
    if (this.spares.length < SPARE_CHUNKS && buffer.length === LINE_CHUNK_BYTES) this.spares.push(buffer);
  }

  /** A new buffer at the end of the queue, for a line of `bytes`. */
  private chunk(bytes: number): Chunk {
    // A last buffer read to its end goes: no buffer without lines may stay at the head (see peek).
    const tail = this.chunks.at(-1);
    if (tail !== undefined && tail.first === tail.lengths.length) {
      this.chunks.pop();
      this.release(tail.buffer);
    }
    const buffer =
      bytes <= LINE_CHUNK_BYTES
        ? (this.spares.pop() ?? Buffer.allocUnsafeSlow(LINE_CHUNK_BYTES))
        : Buffer.allocUnsafeSlow(bytes);
    const chunk: Chunk = { buffer, start: 0, fill: 0, lengths: [], first: 0 };
    this.chunks.push(chunk);
    return chunk;
  }
}

/** The UTF-16 units of a line, whole or in parts (the bound a line is checked against before encoding). */
export function lineChars(line: string | readonly string[]): number {
  if (typeof line === 'string') return line.length;
  let chars = 0;
  for (const part of line) chars += part.length;
  return chars;
}

/** The UTF-8 bytes of a line, whole or in parts. */
function byteLengthOf(line: string | readonly string[]): number {
  if (typeof line === 'string') return Buffer.byteLength(line);
  let bytes = 0;
  for (const part of line) bytes += Buffer.byteLength(part);
  return bytes;
}

/**
 * Writes `line` (its parts one after the other) into `buffer` at `at`; returns the bytes written, or -1 when
 * it did not all fit. buffer.write stops short, silently, only before a character that does not fit (up to
 * 4 bytes): a write that ends further from the end than that wrote its whole text.
 */
function writeWhole(buffer: Buffer, at: number, line: string | readonly string[]): number {
  if (typeof line === 'string') return writeFits(buffer, at, line);
  let end = at;
  for (const part of line) {
    const bytes = writeFits(buffer, end, part);
    if (bytes < 0) return -1;
    end += bytes;
  }
  return end - at;
}

/** `text` written into `buffer` at `at`: its bytes, or -1 when it did not all fit (see writeWhole). */
function writeFits(buffer: Buffer, at: number, text: string): number {
  const room = buffer.length - at;
  const bytes = buffer.write(text, at);
  return bytes > room - 4 && bytes !== Buffer.byteLength(text) ? -1 : bytes;
}
