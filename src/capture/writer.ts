import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { APPEND_NOFOLLOW, PRIVATE_FILE_MODE } from '../observability/private-files.js';
import type { Redactor } from '../redaction/redactor.js';
import { eventText, type EventPiece } from './events.js';
import { LINE_CHUNK_BYTES, LineQueue, lineChars, type QueuedLines } from './line-queue.js';
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
  /** Bound of queued, not yet written data in bytes (UTF-8). Default 8 MiB. */
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

/** Largest chunk of queued lines handed to one `write` call (a line longer goes alone). */
const MAX_BATCH_BYTES = LINE_CHUNK_BYTES;

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
  /** The lines waiting, encoded as they came (see LineQueue). */
  private readonly lines = new LineQueue();
  private file: FileHandle | undefined;
  private fileBytes = 0;
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
    return this.lines.count;
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

  /**
   * Enqueues one whole line as it is (stamped and redacted already, ending in a newline), or in parts to be
   * written one after the other (see LineQueue.push).
   */
  writeLine(line: string | readonly string[]): void {
    try {
      if (this.closed) return this.drop('closed', 1);
      // The line's characters: its bytes, or fewer (beyond ASCII) — the bound is checked before encoding.
      if (this.queued >= this.maxQueueEntries || this.lines.bytes + lineChars(line) > this.maxQueueBytes) {
        return this.drop('queue_full', 1);
      }
      this.lines.push(line);
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
          this.dropLines(this.lines.peek(MAX_BATCH_BYTES, Infinity), error);
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
          this.lines.shift(batch.count);
          this.fileBytes += batch.data.length;
          this.writtenCount += batch.count;
          this.progress();
        } catch (error) {
          this.dropLines(batch, error);
          await this.closeFile();
        }
      }
    } finally {
      this.pumping = undefined;
    }
  }

  /**
   * The first queued lines, up to `maxBatch` bytes that fit in `room` bytes of the current file. Undefined
   * when the next line does not fit (rotate first) — unless the file is empty, where any line goes, so that
   * a line larger than `maxBytes` still gets written (alone in its file). Shifted once written.
   */
  private takeBatch(maxBatch: number, room: number): QueuedLines | undefined {
    const firstMax = this.fileBytes === 0 ? Infinity : room;
    return this.lines.peek(Math.min(maxBatch, room), firstMax);
  }

  /** Drops lines without writing them (the file cannot be opened, or the write failed). */
  private dropLines(lines: QueuedLines | undefined, error: unknown): void {
    if (lines === undefined) return;
    this.lines.shift(lines.count);
    this.drop('write_failed', lines.count, error);
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
      const count = this.lines.clear();
      if (count > 0) this.drop('write_failed', count, error);
    }
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
