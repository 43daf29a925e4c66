import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { Redactor } from '../redaction/redactor.js';
import {
  eventChars,
  eventFramesAscii,
  eventFramesBound,
  legBits,
  STAMP_BYTES,
  STREAM_GAP,
  STREAM_LAST,
  STREAM_OPEN,
  streamEdgeFrameBound,
  streamFrameBound,
  writeEventFrames,
  writeStamp,
  writeStreamEndFrame,
  writeStreamFrame,
  writeStreamStartFrame,
} from './event-frames.js';
import type { CaptureSink, EventPiece, StreamHead, StreamLeg, StreamSink } from './events.js';
import type { CaptureWorkerData, FromCaptureWorker, ToCaptureWorker } from './worker-protocol.js';
import {
  DEFAULT_MAX_QUEUE_BYTES,
  DEFAULT_MAX_QUEUE_ENTRIES,
  type CaptureDropInfo,
  type CaptureDropReason,
  type CaptureWriterOptions,
} from './writer.js';

/** As for CaptureWriter; the bounds count what is recorded here and not yet written by the worker. */
export type WorkerCaptureWriterOptions = Omit<CaptureWriterOptions, 'onProgress'>;

/**
 * Lines wait this long to be sent to the worker together … (each message wakes the worker, which answers
 * with its own: a post of a moved buffer alone takes the event loop ~100 µs on a busy machine, the wake-ups
 * more — docs/performance.md, "The wire capture's cost", eighth session; a capture line lags by this much)
 */
const SEND_DELAY_MS = 100;
/** … unless their buffer (this size, unless one line needs more: ~100 streams' events) is full. */
const BUFFER_BYTES = 1024 * 1024;
/** Buffers the worker has handed back, kept for reuse. */
const SPARE_BUFFERS = 4;

/**
 * The least size of the worker's young generation's semi-spaces, in MB (V8's most for a heap this size).
 * V8 shrinks a young generation to its least (1 MB semi-spaces) at the first collection after an idle
 * spell, and the worker's does not grow back while the proxy holds its own at its cap (the growth factor is
 * one flag for the process: cli/young-generation.ts): handed 1 MiB of frames at once, the worker collected
 * every few milliseconds, copying what it held each time, and promoted so much that full collections
 * followed: 1,167 young and 32 full collections over two 30 s pauses and the 4 s of load after each,
 * against 82 and 3 with this floor (docs/performance.md, "The wire capture's cost", ninth session). 32 MB
 * of young generation, in the worker only: ~15 MB more resident once idle, with capture on.
 */
const WORKER_MIN_SEMI_SPACE_MB = 16;

/** What the stamps add to an event's length, about (for the bound, which counts characters). */
const STAMP_CHARS = 56;
/** What an event adds to the request's shared members, about: its direction and own metadata (ditto). */
const EVENT_CHARS = 60;

/**
 * One stream whose text the worker redacts (see WorkerCaptureWriter.openStream). Its state is apart from
 * the stream itself, for the finalizer that tells the worker about a stream dropped without its end.
 */
interface StreamState {
  readonly id: number;
  /** The worker knows the stream (a frame that opened it was written). */
  opened: boolean;
  /** Text of the stream was dropped: none is sent from then on. */
  gapped: boolean;
  /** Its last text was pushed (or it was given up): nothing more to tell the worker. */
  done: boolean;
  /**
   * Registered with the finalizer: only once the worker knows the stream and its end is still to come — a
   * stream whose text all comes in one push (the usual short answer) never is.
   */
  watched: boolean;
}

/** Lines handed to the worker in one message and not yet settled there. */
interface Batch {
  readonly entries: number;
  readonly chars: number;
}

/**
 * The wire-capture file (README, Wire capture) written by a worker thread: the proxy's event loop only stamps
 * each event and queues its line; redacting the lines, batching, writing and rotating the file happen in the
 * worker (a {@link CaptureWriter} there), on another core. Capture is the heaviest per-request work the proxy
 * can be asked for, and this keeps it out of the path that serves clients.
 *
 * Lines cross to the worker unredacted, some 100 milliseconds' worth at a time, each with the secrets of the
 * redactor they were recorded under (a key rotated between two events applies from the second on). They are
 * encoded straight into a buffer (event-frames.ts) that is moved to the worker, not copied, and comes back
 * to be filled again: the pieces of an event are never joined into one string here, and bodies given as
 * bytes are copied as they are — the worker decodes and JSON-encodes them.
 *
 * The queue is bounded here, by what is recorded and not yet settled (written or dropped) in the worker: a
 * slow or full disk drops and counts entries (reason `queue_full`) and never slows traffic. Stamps are taken
 * when the event is recorded; dropped entries keep their sequence numbers.
 */
export class WorkerCaptureWriter implements CaptureSink {
  readonly path: string;
  private readonly maxQueueBytes: number;
  private readonly maxQueueEntries: number;
  private readonly onDrop: ((info: CaptureDropInfo) => void) | undefined;
  private readonly clock: () => number;
  /** Sequence numbers taken by events dropped since the last frame: the next frame tells the worker. */
  private skipped = 0;
  private nextStreamId = 0;
  /** Tells the worker to forget a stream that was dropped (garbage) before its end: see forgetStream. */
  private readonly unended = new FinalizationRegistry<StreamState>((state) => this.forgetStream(state));
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  /**
   * Resolves once the worker runs (or failed to start: its events are then dropped and counted). Its heap is
   * set up by then, which resets V8's young-generation growth factor for the whole process
   * (cli/young-generation.ts sets it again as the worker comes online).
   */
  readonly online: Promise<void>;

  /** Lines not yet sent: UTF-8 in `buffer` up to `used`. */
  private buffer: Buffer = Buffer.allocUnsafeSlow(BUFFER_BYTES);
  private used = 0;
  private pendingEntries = 0;
  private pendingChars = 0;
  private readonly spares: ArrayBuffer[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly sendLater = (): void => this.send();
  private readonly inFlight: Batch[] = [];
  private inFlightEntries = 0;
  private inFlightChars = 0;
  /** The redactor whose secrets the worker holds. */
  private sentRedactor: Redactor | undefined;
  private droppedCount = 0;
  private nextFlushId = 0;
  private readonly flushes = new Map<number, () => void>();
  private closing: Promise<void> | undefined;
  /** Set when the worker has ended: everything after is dropped. */
  private ended: { reason: CaptureDropReason; error?: unknown } | undefined;

  constructor(options: WorkerCaptureWriterOptions) {
    this.path = options.path;
    this.maxQueueBytes = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
    this.maxQueueEntries = options.maxQueueEntries ?? DEFAULT_MAX_QUEUE_ENTRIES;
    this.onDrop = options.onDrop;
    const now = options.now;
    this.clock = now ? () => now().getTime() : Date.now;
    const workerData: CaptureWorkerData = {
      path: options.path,
      maxBytes: options.maxBytes ?? 0,
      maxFiles: options.maxFiles ?? 5,
    };
    // V8's flags are the process's: set for the worker's heap while it is made (a heap reads the flag when
    // it is set up — the proxy's own was set up long before), and set back once the worker runs. Left alone
    // when the operator set it: their value holds for the worker too.
    const floor = !operatorSetMinSemiSpace(process.execArgv, process.env.NODE_OPTIONS);
    if (floor) setFlagsFromString(`--min-semi-space-size=${WORKER_MIN_SEMI_SPACE_MB}`);
    const restore = (): void => {
      if (floor) setFlagsFromString('--min-semi-space-size=0');
    };
    try {
      this.worker = new Worker(workerEntry(), { workerData });
    } catch (error) {
      restore();
      throw error;
    }
    // Whichever comes first: the worker's heap is set up (or never will be).
    this.online = new Promise<void>((resolve) => {
      for (const event of ['online', 'error', 'exit']) {
        this.worker.once(event, () => {
          restore();
          resolve();
        });
      }
    });
    // The worker never keeps the process alive by itself; flush() and close() hold it while they wait.
    this.worker.unref();
    this.worker.on('message', (message: FromCaptureWorker) => this.receive(message));
    this.exited = new Promise<void>((resolve) => {
      this.worker.once('error', (error) => this.end('write_failed', error));
      this.worker.once('exit', () => {
        this.end(this.closing ? 'closed' : 'write_failed', new Error('capture worker exited'));
        resolve();
      });
    });
  }

  /** Entries dropped so far (queue full, failed writes, writes after close). */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Entries recorded and not yet written. */
  get queued(): number {
    return this.pendingEntries + this.inFlightEntries;
  }

  /**
   * Stamps one event (its time here; its sequence number in the worker, in the order recorded) and queues
   * it for the worker, which redacts it with `redactor` and writes it.
   */
  writeEvent(members: readonly EventPiece[], redactor: Redactor): void {
    try {
      const ms = this.clock();
      if (this.ended !== undefined || this.closing !== undefined) {
        this.skipped++;
        return this.drop(this.ended?.reason ?? 'closed', 1, this.ended?.error);
      }
      const chars = eventChars('', members) + STAMP_CHARS;
      if (!this.fits(1, chars)) {
        this.skipped++;
        return this.drop('queue_full', 1);
      }
      this.use(redactor);
      // Written as ASCII first (most capture text is): the buffer is filled as far as it goes. Text beyond
      // ASCII that does not fit is written again where the frames' bound fits, after the lines before it.
      this.reserve(STAMP_BYTES + eventFramesAscii(chars, members));
      let end = writeEventFrames(this.buffer, this.stamp(ms), '', members, true);
      if (end < 0) {
        this.send();
        this.reserve(STAMP_BYTES + eventFramesBound('', members));
        end = writeEventFrames(this.buffer, this.stamp(ms), '', members);
      }
      this.queue(end, 1, chars);
    } catch {
      // Capture must never break traffic; an unexpected failure here is as good as a drop.
      this.skipped++;
      this.droppedCount++;
    }
  }

  /**
   * A stream's events (CaptureSink.openStream): its start and end cross to the worker as the few fields
   * they differ by, and its text as received, with the chunk events' head once; the worker makes their
   * lines and redacts the text as one stream — the event loop only copies it. When the bound drops some of
   * its text, the rest of the stream's text is dropped too (counted), and the worker forgets what it held
   * back: no part of a secret cut by the gap is written.
   */
  openStream(
    head: StreamHead,
    legs: readonly StreamLeg[],
    metadata: Record<string, unknown>,
    redactor: Redactor,
  ): StreamSink {
    const state: StreamState = {
      id: ++this.nextStreamId,
      opened: false,
      gapped: false,
      done: false,
      watched: false,
    };
    const bits = legBits(legs);
    const count = legs.length;
    const startMetadata = JSON.stringify(metadata);
    this.writeStreamEdge(head, count, startMetadata, redactor, (buffer, at, ms, skipped) =>
      writeStreamStartFrame(buffer, at, ms, skipped, bits, head, startMetadata),
    );
    const stream: StreamSink = {
      push: (text, chunk, last) => {
        this.pushStream(state, stream, head, bits, count, redactor, text, chunk, last);
      },
      end: (leg, endMetadata, chunks, bytes, endRedactor) => {
        const own = isEmpty(endMetadata) ? '' : JSON.stringify(endMetadata);
        this.writeStreamEdge(head, 1, own, endRedactor, (buffer, at, ms, skipped) =>
          writeStreamEndFrame(buffer, at, ms, skipped, leg, chunks, bytes, head, own),
        );
      },
    };
    return stream;
  }

  /**
   * Queues a stream's start or end (`write` writes its frame), `entries` events whose metadata is
   * `metadata` (JSON text): within the bound, or dropped and counted as an event would be.
   */
  private writeStreamEdge(
    head: StreamHead,
    entries: number,
    metadata: string,
    redactor: Redactor,
    write: (buffer: Buffer, at: number, ms: number, skipped: number) => number,
  ): void {
    try {
      const ms = this.clock();
      if (this.ended !== undefined || this.closing !== undefined) {
        this.skipped += entries;
        return this.drop(this.ended?.reason ?? 'closed', entries, this.ended?.error);
      }
      const chars =
        (head.id.length + head.rest.length + metadata.length + STAMP_CHARS + EVENT_CHARS) * entries;
      if (!this.fits(entries, chars)) {
        this.skipped += entries;
        return this.drop('queue_full', entries);
      }
      this.use(redactor);
      this.reserve(streamEdgeFrameBound(head, metadata));
      this.queue(write(this.buffer, this.used, ms, this.skipped), entries, chars);
    } catch {
      // As in writeEvent.
      this.skipped += entries;
      this.droppedCount += entries;
    }
  }

  private pushStream(
    state: StreamState,
    stream: StreamSink,
    head: StreamHead,
    bits: number,
    legs: number,
    redactor: Redactor,
    text: string,
    chunk: number,
    last: boolean,
  ): void {
    if (state.done) return;
    if (last) {
      state.done = true;
      if (state.watched) this.unended.unregister(stream);
    }
    try {
      const ms = this.clock();
      if (this.ended !== undefined || this.closing !== undefined) {
        if (text === '') return;
        this.skipped += legs;
        return this.drop(this.ended?.reason ?? 'closed', legs, this.ended?.error);
      }
      const chars = (text.length + head.id.length + head.rest.length + STAMP_CHARS + EVENT_CHARS) * legs;
      if (!state.gapped && !this.fits(legs, chars)) state.gapped = true;
      if (state.gapped) {
        if (last && state.opened) this.forgetStream(state);
        if (text === '') return;
        this.skipped += legs;
        return this.drop('queue_full', legs);
      }
      const opening = !state.opened;
      if (opening) this.use(redactor);
      const flags = (opening ? STREAM_OPEN : 0) | (last ? STREAM_LAST : 0);
      const sent = opening ? head : undefined;
      const { id } = state;
      this.reserve(streamFrameBound(sent, text, true));
      let end = writeStreamFrame(
        this.buffer,
        this.used,
        id,
        ms,
        this.skipped,
        chunk,
        flags,
        bits,
        sent,
        text,
        true,
      );
      if (end < 0) {
        this.send();
        this.reserve(streamFrameBound(sent, text));
        end = writeStreamFrame(this.buffer, this.used, id, ms, this.skipped, chunk, flags, bits, sent, text);
      }
      state.opened = true;
      if (!last && !state.watched) {
        state.watched = true;
        this.unended.register(stream, state, stream);
      }
      this.queue(end, legs, chars);
    } catch {
      // As in writeEvent; the stream's text stops here.
      this.skipped += legs;
      this.droppedCount += legs;
      state.gapped = true;
    }
  }

  /**
   * Tells the worker to forget a stream it knows whose text stops: its held-back text is dropped. Not
   * counted in the bound (a few bytes, once per stream).
   */
  private forgetStream(state: StreamState): void {
    if (!state.opened || this.ended !== undefined || this.closing !== undefined) return;
    state.opened = false;
    state.done = true;
    try {
      const flags = STREAM_GAP | STREAM_LAST;
      this.reserve(streamFrameBound(undefined, ''));
      this.used = writeStreamFrame(this.buffer, this.used, state.id, 0, 0, 0, flags, 0, undefined, '');
      this.later();
    } catch {
      // Nothing to count: no event is lost by it.
    }
  }

  /** Whether `entries` more events of `chars` characters stay within the bound. */
  private fits(entries: number, chars: number): boolean {
    return (
      this.queued + entries <= this.maxQueueEntries &&
      this.pendingChars + this.inFlightChars + chars <= this.maxQueueBytes
    );
  }

  /** The worker redacts what is written next with `redactor`'s secrets. */
  private use(redactor: Redactor): void {
    if (redactor === this.sentRedactor) return;
    this.send();
    this.post({ type: 'secrets', secrets: [...redactor.secrets, ...redactor.shortSecrets] });
    this.sentRedactor = redactor;
  }

  /** Writes an event's stamp frame where the buffer is filled up to; returns where the event goes on. */
  private stamp(ms: number): number {
    return writeStamp(this.buffer, this.used, ms, this.skipped);
  }

  /**
   * Frames written up to `end`: `entries` events of `chars` characters, in the bound until settled; the
   * sequence numbers skipped before them are told.
   */
  private queue(end: number, entries: number, chars: number): void {
    this.skipped = 0;
    this.used = end;
    this.pendingEntries += entries;
    this.pendingChars += chars;
    this.later();
  }

  private later(): void {
    if (this.timer === undefined) {
      // Each message to the worker has a fixed cost on both threads: the events of 100 milliseconds
      // cross in one. Their stamps were taken as they were recorded.
      this.timer = setTimeout(this.sendLater, SEND_DELAY_MS);
      this.timer.unref();
    }
  }

  /** Resolves when everything recorded before the call is written (or dropped). */
  async flush(): Promise<void> {
    this.send();
    if (this.ended !== undefined) return;
    const id = ++this.nextFlushId;
    const done = new Promise<void>((resolve) => this.flushes.set(id, resolve));
    this.post({ type: 'flush', id });
    await this.held(done);
  }

  /** Flushes, closes the file and ends the worker; later events are dropped (reason `closed`). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.send();
      if (this.ended === undefined) {
        this.post({ type: 'close' });
        await this.held(this.exited);
      }
    })();
    return this.closing;
  }

  /** Makes room in the buffer for `bytes`: sends what it holds if needed, grows it for one large event. */
  private reserve(bytes: number): void {
    if (this.used + bytes <= this.buffer.length) return;
    this.send();
    if (bytes > this.buffer.length) this.buffer = Buffer.allocUnsafeSlow(bytes);
  }

  /** Waits for the worker with the process kept alive meanwhile. */
  private async held(done: Promise<void>): Promise<void> {
    this.worker.ref();
    try {
      await Promise.race([done, this.exited]);
    } finally {
      this.worker.unref();
    }
  }

  private send(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.used === 0 || this.ended !== undefined) return;
    const batch: Batch = { entries: this.pendingEntries, chars: this.pendingChars };
    const buffer = this.buffer.buffer as ArrayBuffer;
    this.post({ type: 'lines', buffer, length: this.used, entries: batch.entries }, [buffer]);
    this.inFlight.push(batch);
    this.inFlightEntries += batch.entries;
    this.inFlightChars += batch.chars;
    const spare = this.spares.pop();
    this.buffer = spare === undefined ? Buffer.allocUnsafeSlow(BUFFER_BYTES) : Buffer.from(spare);
    this.used = 0;
    this.pendingEntries = 0;
    this.pendingChars = 0;
  }

  /** `transfer`: buffers moved to the worker rather than copied. */
  private post(message: ToCaptureWorker, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(message, transfer);
  }

  private receive(message: FromCaptureWorker): void {
    switch (message.type) {
      case 'settled':
        for (let i = 0; i < message.batches; i++) {
          const batch = this.inFlight.shift();
          if (batch === undefined) break;
          this.inFlightEntries -= batch.entries;
          this.inFlightChars -= batch.chars;
        }
        for (const buffer of message.buffers) {
          // An oversized buffer (one long line) is left to the garbage collector.
          if (this.spares.length < SPARE_BUFFERS && buffer.byteLength === BUFFER_BYTES)
            this.spares.push(buffer);
        }
        break;
      case 'drop':
        this.drop(message.reason, message.entries, message.error);
        break;
      case 'flushed':
        this.flushes.get(message.id)?.();
        this.flushes.delete(message.id);
        break;
    }
  }

  /** The worker is gone: whatever it had not settled is lost, and so is everything recorded from now on. */
  private end(reason: CaptureDropReason, error: unknown): void {
    if (this.ended !== undefined) return;
    this.ended = { reason, error };
    const lost = this.inFlightEntries + this.pendingEntries;
    this.inFlight.length = 0;
    this.inFlightEntries = 0;
    this.inFlightChars = 0;
    this.used = 0;
    this.pendingEntries = 0;
    this.pendingChars = 0;
    if (lost > 0) this.drop('write_failed', lost, error);
    for (const resolve of this.flushes.values()) resolve();
    this.flushes.clear();
  }

  private drop(reason: CaptureDropReason, entries: number, error?: unknown): void {
    this.droppedCount += entries;
    try {
      this.onDrop?.({ reason, entries, totalDropped: this.droppedCount, error });
    } catch {
      // A failing observer must not turn a drop into a failed request.
    }
  }
}

/** Whether `object` has no members of its own. */
function isEmpty(object: Record<string, unknown>): boolean {
  for (const _ in object) return false;
  return true;
}

/** V8's flag for the least semi-space size, in either spelling V8 takes (dashes or underscores). */
const MIN_SEMI_SPACE_FLAG = /(?:^|\s)--min[-_]semi[-_]space[-_]size(?:[=\s]|$)/;

/** Whether the operator set the least semi-space size, on node's command line or in NODE_OPTIONS. */
export function operatorSetMinSemiSpace(
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): boolean {
  return MIN_SEMI_SPACE_FLAG.test([...execArgv, nodeOptions ?? ''].join(' '));
}

/**
 * The compiled worker module beside this one. Under the TypeScript sources (the tests, which `npm test`
 * runs after a build) that is the one in `dist/`: a worker thread cannot load TypeScript.
 */
function workerEntry(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts')
    ? new URL('../../dist/capture/capture-worker.js', here)
    : new URL('./capture-worker.js', here);
}
