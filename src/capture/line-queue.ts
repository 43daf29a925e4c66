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

  /** Encodes `line` at the end of the queue; returns its bytes. */
  push(line: string): number {
    let tail = this.chunks.at(-1);
    let bytes = -1;
    if (tail !== undefined && tail.buffer.length - tail.fill >= line.length) {
      const room = tail.buffer.length - tail.fill;
      bytes = tail.buffer.write(line, tail.fill);
      // buffer.write stops short, silently, only before a character that does not fit (up to 4 bytes):
      // a write that ends further from the end than that wrote the whole line.
      if (bytes > room - 4 && bytes !== Buffer.byteLength(line)) bytes = -1;
    }
    if (bytes < 0) {
      tail = this.chunk(Buffer.byteLength(line));
      bytes = tail.buffer.write(line, tail.fill);
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
