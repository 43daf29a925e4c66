import type { CaptureDropReason } from './writer.js';

/** What the capture worker is started with. */
export interface CaptureWorkerData {
  readonly path: string;
  readonly maxBytes: number;
  readonly maxFiles: number;
}

/** Messages to the capture worker, handled in the order sent. */
export type ToCaptureWorker =
  /**
   * `entries` stamped events, not yet redacted, framed (event-frames.ts) in the first `length` bytes of
   * `buffer` (moved, not copied, to the worker, which moves it back once read, with a `settled`).
   */
  | {
      readonly type: 'lines';
      readonly buffer: ArrayBuffer;
      readonly length: number;
      readonly entries: number;
    }
  /** The configured secrets (short ones too) of the redactor for every line sent after this message. */
  | { readonly type: 'secrets'; readonly secrets: readonly string[] }
  /** Answered by `flushed` once every line sent before it is written (or dropped). */
  | { readonly type: 'flush'; readonly id: number }
  /** Flushes, closes the file and ends the worker. */
  | { readonly type: 'close' };

/** Messages from the capture worker. */
export type FromCaptureWorker =
  /**
   * The oldest `batches` batches of lines are settled: written or dropped. `buffers`: batches' buffers read
   * already (their lines may not be written yet), for the proxy to fill again.
   */
  | { readonly type: 'settled'; readonly batches: number; readonly buffers: readonly ArrayBuffer[] }
  | {
      readonly type: 'drop';
      readonly reason: CaptureDropReason;
      readonly entries: number;
      readonly error?: { readonly message: string; readonly code?: string };
    }
  | { readonly type: 'flushed'; readonly id: number };
