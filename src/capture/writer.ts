import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { APPEND_NOFOLLOW, PRIVATE_FILE_MODE } from '../observability/private-files.js';
import type { Redactor } from '../redaction/redactor.js';
import { eventText, type EventPiece } from './events.js';
import { CaptureStamps } from './stamps.js';

export type CaptureDropReason = 'queue_full' | 'closed' | 'unserialisable' | 'write_failed';

export interface CaptureDropInfo {
  readonly reason: CaptureDropReason;
  /** Entries dropped by this event (a failed write drops its whole batch). */
  readonly entries: number;
  /** Total entries dropped since the writer was created. */
  readonly totalDropped: number;
  readonly error?: unknown;
}

export interface CaptureWriterOptions {
  readonly path: string;
  /** Rotate before a write would take the file past this size; 0 = never rotate. Default 0. */
  readonly maxBytes?: number;
  /** Rotated files kept (`PATH.1` newest … `PATH.N` oldest); 0 = keep none. Default 5. */
  readonly maxFiles?: number;
  /** Bound of queued, not yet written data in UTF-16 code units (≈ bytes). Default 8 MiB. */
  readonly maxQueueBytes?: number;
  /** Bound of queued, not yet written entries. Default 10 000. */
  readonly maxQueueEntries?: number;
  /** Called for every drop, for metrics and a (rate-limited, by the caller) log line. Must not throw. */
  readonly onDrop?: (info: CaptureDropInfo) => void;
  /**
   * Called whenever entries are settled — written, or dropped for any reason — with the number settled
   * since the writer was created. Must not throw.
   */
  readonly onProgress?: (settled: number) => void;
  /** Injected clock for `timestamp`. */
  readonly now?: () => Date;
}

export const DEFAULT_MAX_QUEUE_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_QUEUE_ENTRIES = 10_000;

/** Lines taken from the queue for one write. */
interface Batch {
  /** The lines, encoded (a view of the writer's scratch buffer: valid until the next batch). */
  data: Buffer;
  entries: number;
}

/** Largest chunk of queued lines handed to one `write` call. */
const MAX_BATCH_BYTES = 256 * 1024;
/** A scratch buffer grown past this (by a very long line) is not kept for the next batch. */
const SCRATCH_KEPT_BYTES = 1024 * 1024;
/** Compact the queue array once this many entries at its head have been consumed. */
const QUEUE_COMPACT_AT = 1024;

/**
 * The wire-capture file (README, Wire capture): JSON Lines, written in the background so that capture never
 * slows or fails client traffic.
 *
 * `write` stamps, serialises and enqueues synchronously and returns; it never blocks or throws. When the
 * queue is over its bound (a slow or full disk), the entry is dropped and counted instead. One background
 * loop writes queued lines in batches, awaiting each write before pulling more (that await is the
 * backpressure), and rotates the file by size: `PATH` → `PATH.1` → … → `PATH.N`, the oldest deleted.
 *
 * Each entry gets `timestamp` (ISO 8601) and `sequence` (1, 2, …, in `write` order). Dropped entries
 * keep their sequence number, so gaps in a capture file show where entries were lost.
 */
export class CaptureWriter {
  readonly path: string;
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private readonly maxQueueBytes: number;
  private readonly maxQueueEntries: number;
  private readonly onDrop: ((info: CaptureDropInfo) => void) | undefined;
  private readonly onProgress: ((settled: number) => void) | undefined;
  private readonly stamps: CaptureStamps;

  private droppedCount = 0;
  private writtenCount = 0;
  private queue: string[] = [];
  private head = 0;
  private queuedChars = 0;
  private file: FileHandle | undefined;
  private fileBytes = 0;
  private scratch: Buffer = Buffer.alloc(0);
  /** The running background loop, if any; flush() waits for it. */
  private pumping: Promise<void> | undefined;
  private closed = false;

  constructor(options: CaptureWriterOptions) {
    this.path = options.path;
    this.maxBytes = options.maxBytes ?? 0;
    this.maxFiles = options.maxFiles ?? 5;
    this.maxQueueBytes = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
    this.maxQueueEntries = options.maxQueueEntries ?? DEFAULT_MAX_QUEUE_ENTRIES;
    this.onDrop = options.onDrop;
    this.onProgress = options.onProgress;
    const now = options.now;
    this.stamps = new CaptureStamps(now ? () => now().getTime() : Date.now);
  }

  /** Entries dropped so far (queue full, unserialisable, failed writes, writes after close). */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Entries waiting to be written. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Stamps, serialises and enqueues one event; the writer's stamps win over same-named fields. */
  write(event: object): void {
    let members: string;
    try {
      // Undefined members vanish when serialised: the stamps spliced in front are the only ones.
      const fields =
        Object.hasOwn(event, 'timestamp') || Object.hasOwn(event, 'sequence')
          ? { ...event, timestamp: undefined, sequence: undefined }
          : event;
      members = JSON.stringify(fields).slice(1, -1);
    } catch (error) {
      this.stamps.skip();
      return this.drop('unserialisable', 1, error);
    }
    this.writeMembers(members);
  }

  /**
   * Enqueues one event given as its JSON members without the braces (`"request_id":…,"direction":…`): the
   * writer splices its stamps in front, so an event built as text is never parsed or copied again. With a
   * `redactor`, the members are redacted first (a {@link CaptureSink} is handed them unredacted).
   */
  writeMembers(members: string, redactor?: Redactor): void {
    try {
      this.writeLine(this.stamps.line(redactor === undefined ? members : redactor.redact(members)));
    } catch {
      this.droppedCount++;
    }
  }

  /** {@link writeMembers} for members given in pieces ({@link CaptureSink}). */
  writeEvent(members: readonly EventPiece[], redactor: Redactor): void {
    try {
      this.writeMembers(eventText(members), redactor);
    } catch {
      this.stamps.skip();
      this.droppedCount++;
    }
  }

  /** Enqueues one whole line as it is (stamped and redacted already, ending in a newline). */
  writeLine(line: string): void {
    try {
      if (this.closed) return this.drop('closed', 1);
      if (this.queued >= this.maxQueueEntries || this.queuedChars + line.length > this.maxQueueBytes) {
        return this.drop('queue_full', 1);
      }
      this.queue.push(line);
      this.queuedChars += line.length;
      // Started on the next turn of the event loop: the caller's request path does no file work, and the
      // entries written meanwhile go out in one batch.
      this.pumping ??= new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => this.pump())
        .catch(() => undefined);
    } catch {
      // Capture must never break traffic; an unexpected failure here is as good as a drop.
      this.droppedCount++;
    }
  }

  /** Resolves when everything queued before the call (and since) is written. */
  async flush(): Promise<void> {
    while (this.pumping !== undefined) await this.pumping;
  }

  /** Flushes, closes the file; later writes are dropped (reason `closed`). */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    const file = this.file;
    this.file = undefined;
    await file?.close().catch(() => undefined);
  }

  private async pump(): Promise<void> {
    try {
      while (this.queued > 0) {
        let file: FileHandle;
        try {
          file = await this.openFile();
        } catch (error) {
          this.dropLines(this.pick(MAX_BATCH_BYTES, Infinity), error);
          continue;
        }
        const room = this.maxBytes > 0 ? this.maxBytes - this.fileBytes : Infinity;
        const batch = this.takeBatch(MAX_BATCH_BYTES, room);
        if (batch === undefined) {
          await this.rotate();
          continue;
        }
        try {
          await file.write(batch.data, 0, batch.data.length, null);
          this.fileBytes += batch.data.length;
          this.writtenCount += batch.entries;
          this.progress();
        } catch (error) {
          this.dropBatch(batch, error);
          await this.closeFile();
        }
        if (this.scratch.length > SCRATCH_KEPT_BYTES) this.scratch = Buffer.alloc(0);
      }
    } finally {
      this.pumping = undefined;
    }
  }

  /**
   * Takes queued lines up to `maxBatch` bytes that fit in `room` bytes of the current file, encoded.
   * Returns undefined when the next line does not fit (rotate first) — unless the file is empty, where any
   * line goes, so that a line larger than `maxBytes` still gets written (alone in its file).
   *
   * Lines are picked by their length in characters (no more bytes than that for ASCII, the usual case) and
   * encoded one after the other into one buffer: no joined copy of the batch, no pass to measure it. Only a
   * batch whose bytes overshoot the room (characters beyond ASCII, near a rotation) is taken again line by
   * line.
   */
  private takeBatch(maxBatch: number, room: number): Batch | undefined {
    const picked = this.pick(maxBatch, room);
    if (picked === undefined) return undefined;
    const data = this.encode(this.head, this.head + picked.count, picked.chars * 3);
    const alone = picked.count === 1 && this.fileBytes === 0;
    if (data.length > room && !alone) return this.takeBatchByBytes(maxBatch, room);
    this.take(picked.count, picked.chars);
    return { data, entries: picked.count };
  }

  /** How many queued lines (and characters) make a batch up to `maxBatch` characters within `room`. */
  private pick(maxBatch: number, room: number): { count: number; chars: number } | undefined {
    let chars = 0;
    let end = this.head;
    while (end < this.queue.length) {
      const length = this.queue[end]!.length;
      const fits = chars + length <= room || (chars === 0 && this.fileBytes === 0);
      if (!fits || (chars > 0 && chars + length > maxBatch)) break;
      chars += length;
      end++;
    }
    return end === this.head ? undefined : { count: end - this.head, chars };
  }

  private takeBatchByBytes(maxBatch: number, room: number): Batch | undefined {
    let bytes = 0;
    let chars = 0;
    let end = this.head;
    for (; end < this.queue.length; end++) {
      const line = this.queue[end]!;
      const lineBytes = Buffer.byteLength(line);
      const fits = bytes + lineBytes <= room || (bytes === 0 && this.fileBytes === 0);
      if (!fits || (bytes > 0 && bytes + lineBytes > maxBatch)) break;
      bytes += lineBytes;
      chars += line.length;
    }
    const count = end - this.head;
    if (count === 0) return undefined;
    const data = this.encode(this.head, end, bytes);
    this.take(count, chars);
    return { data, entries: count };
  }

  /** Queued lines `start` to `end` as UTF-8 in the scratch buffer (`bound`: bytes they take at most). */
  private encode(start: number, end: number, bound: number): Buffer {
    if (this.scratch.length < bound)
      this.scratch = Buffer.allocUnsafeSlow(Math.max(bound, MAX_BATCH_BYTES * 3));
    let bytes = 0;
    for (let i = start; i < end; i++) bytes += this.scratch.write(this.queue[i]!, bytes);
    return this.scratch.subarray(0, bytes);
  }

  /** Drops picked lines without writing them (the file cannot be opened). */
  private dropLines(picked: { count: number; chars: number } | undefined, error: unknown): void {
    if (picked === undefined) return;
    this.take(picked.count, picked.chars);
    this.drop('write_failed', picked.count, error);
  }

  /** Removes `count` lines (`chars` characters) from the head of the queue. */
  private take(count: number, chars: number): void {
    this.head += count;
    this.queuedChars -= chars;
    this.compactQueue();
  }

  private compactQueue(): void {
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head >= QUEUE_COMPACT_AT) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private async openFile(): Promise<FileHandle> {
    if (this.file !== undefined) return this.file;
    // Private, and never through a symbolic link planted at the path (ELOOP: the lines are dropped).
    const file = await fs.open(this.path, APPEND_NOFOLLOW, PRIVATE_FILE_MODE);
    this.fileBytes = (await file.stat()).size;
    this.file = file;
    return file;
  }

  private async closeFile(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    await file?.close().catch(() => undefined);
  }

  /** `PATH.N` deleted, `PATH.i` → `PATH.i+1`, `PATH` → `PATH.1`; the next write opens a fresh `PATH`. */
  private async rotate(): Promise<void> {
    await this.closeFile();
    const rotated = (n: number): string => `${this.path}.${n}`;
    try {
      if (this.maxFiles === 0) {
        await fs.rm(this.path, { force: true });
        return;
      }
      await fs.rm(rotated(this.maxFiles), { force: true });
      for (let n = this.maxFiles - 1; n >= 1; n--) {
        await fs.rename(rotated(n), rotated(n + 1)).catch(ignoreMissing);
      }
      await fs.rename(this.path, rotated(1)).catch(ignoreMissing);
    } catch (error) {
      // Cannot rotate (permissions, disk): drop what is queued rather than grow the file without bound.
      this.dropLines(this.pick(Infinity, Infinity), error);
    }
  }

  private dropBatch(batch: { entries: number } | undefined, error: unknown): void {
    if (batch !== undefined) this.drop('write_failed', batch.entries, error);
  }

  private drop(reason: CaptureDropReason, entries: number, error?: unknown): void {
    this.droppedCount += entries;
    try {
      this.onDrop?.({ reason, entries, totalDropped: this.droppedCount, error });
    } catch {
      // A failing observer must not turn a drop into a failed request.
    }
    this.progress();
  }

  private progress(): void {
    try {
      this.onProgress?.(this.writtenCount + this.droppedCount);
    } catch {
      // As for onDrop.
    }
  }
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}
