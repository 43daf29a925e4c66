/** Where batches go: a pino destination (sonic-boom) or anything with the same two calls. */
export interface BatchTarget {
  write(text: string): unknown;
  flushSync?(): void;
}

export interface LineBatcherOptions {
  /** A batch this large is handed over at once. */
  maxBytes: number;
  /** Longest a line waits for company before it is handed over alone. */
  maxDelayMs: number;
}

/** Batchers with lines not yet handed over, written out synchronously if the process exits. */
const live = new Set<LineBatcher>();
let exitHookInstalled = false;

function flushAllOnExit(): void {
  for (const batcher of live) {
    try {
      batcher.flushSync();
    } catch {
      // A destination that cannot take the lines now (not open yet, closed) is beyond saving at exit.
    }
  }
}

/**
 * Log lines gathered and handed to the destination in batches. The asynchronous destination writes each
 * hand-over from the thread pool: one line at a time, that is a write and a worker wake-up per request
 * under load. Batched, it is one per `maxBytes` of lines (docs/performance.md). A quiet proxy's line waits
 * at most `maxDelayMs`; at exit, `process.exit()` included, nothing waits.
 */
export class LineBatcher {
  private pending = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly handOverLater = (): void => {
    this.timer = undefined;
    this.flush();
  };

  constructor(
    private readonly target: BatchTarget,
    private readonly options: LineBatcherOptions,
  ) {
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', flushAllOnExit);
    }
  }

  write(line: string): boolean {
    // String concatenation makes a rope; it is flattened once, when the batch is written.
    this.pending += line;
    if (this.pending.length >= this.options.maxBytes) this.flush();
    else if (this.timer === undefined) {
      live.add(this);
      this.timer = setTimeout(this.handOverLater, this.options.maxDelayMs);
    }
    return true;
  }

  /** Hands the pending lines to the destination (which writes them asynchronously). */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    live.delete(this);
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = '';
    this.target.write(batch);
  }

  /** Hands over the pending lines and has the destination write everything before returning. */
  flushSync(): void {
    this.flush();
    this.target.flushSync?.();
  }
}
