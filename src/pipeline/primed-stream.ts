import { iterate } from '../backends/dispatch-answers.js';
import type { StreamControl, StreamSink, UpstreamResponse } from '../backends/types.js';
import type { ErrorInfo } from '../protocols/error-envelopes.js';
import type { Clock, Timer } from '../routing/clock.js';
import type { StreamOpening } from './stream-opening.js';

/** An upstream answer whose event stream is taken by one sink (a `direct` call's). */
export type TakeableResponse = UpstreamResponse & Pick<Required<UpstreamResponse>, 'take'>;

/**
 * How a primed stream began: its answer's first content came, it ended before any, it failed before any,
 * or the backend said it failed (an error event) before any.
 */
export type Start =
  | { readonly kind: 'first' }
  | { readonly kind: 'ended' }
  | { readonly kind: 'failed'; err: Error }
  | { readonly kind: 'refused'; error: ErrorInfo };

/**
 * The stall watchdog looks this many times per `stallMs`, and ends the stream after as many quiet looks in a
 * row: silence is caught between `stallMs` and a quarter more, not up to twice it.
 */
const LOOKS_PER_STALL = 4;

/** What is held, at most, before the backend is paused until the relay takes the stream. */
const HOLD_BYTES = 64 * 1024;

/**
 * A same-protocol stream of a failover attempt (src/pipeline/attempts.ts), taken up to its answer's first
 * content (what its `opening` says; without one, its first bytes) — the commit point — and then handed on as the backend's own answer, so that the relay takes it `direct`
 * (streamToClient) as it takes a stream without failover. Until the hand-over what comes is held (the
 * backend paused once HOLD_BYTES are). After it, the only per-chunk cost is a flag: the stall watchdog is one timer that, four
 * times per `stallMs`, looks whether the backend sent anything meanwhile (silence while the client is slow
 * to take what it was sent does not count), and ends the stream with `stallError` after a `stallMs` of
 * looks that found nothing.
 */
export class PrimedStream implements StreamSink, UpstreamResponse {
  readonly status: number;
  readonly contentType: string | undefined;
  /** Resolves once the stream's start is known. */
  readonly started: Promise<Start>;
  private settle!: (start: Start) => void;
  private readonly control: StreamControl;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private sawFirst = false;
  private ended = false;
  private failure: Error | null = null;
  private sink: StreamSink | null = null;
  /** Bytes came since the watchdog last looked. */
  private lively = false;
  /** The sink said it is full and has not resumed since. */
  private pausedByClient = false;
  private stalled = false;
  /** The watchdog's looks in a row that found the backend silent. */
  private quietLooks = 0;
  private watchdog: Timer | null = null;

  constructor(
    private readonly upstream: TakeableResponse,
    private readonly clock: Clock,
    private readonly stallMs: number,
    private readonly stallError: () => Error,
    /** Reads the opening for the answer's first content; without it, the first bytes commit. */
    private readonly opening?: StreamOpening,
  ) {
    this.status = upstream.status;
    this.contentType = upstream.contentType;
    this.started = new Promise((resolve) => (this.settle = resolve));
    this.control = upstream.take(this);
  }

  /** Decoded only when read, as the backend's own answer's. */
  get headers(): UpstreamResponse['headers'] {
    return this.upstream.headers;
  }

  get body(): AsyncIterable<Uint8Array> {
    return iterate(this);
  }

  // --- the sink the backend's stream writes to -------------------------------------------------------------

  write(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
    this.lively = true;
    const sink = this.sink;
    if (sink !== null) {
      if (sink.write(chunk)) return true;
      this.pausedByClient = true;
      return false;
    }
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (!this.sawFirst) {
      const opening = this.opening?.see(chunk);
      if (opening === undefined || opening.kind === 'content') {
        this.sawFirst = true;
        this.settle({ kind: 'first' });
      } else if (opening.kind === 'error') {
        this.sawFirst = true;
        this.settle({ kind: 'refused', error: opening.error });
      }
    }
    // Not paused for the little that comes before the relay takes the stream (a few microtasks later, when
    // nothing fails): pausing the backend and resuming it costs more than holding it. Paused past HOLD_BYTES.
    return this.heldBytes < HOLD_BYTES;
  }

  end(): void {
    this.stopWatching();
    if (this.sink !== null) this.sink.end();
    else {
      this.ended = true;
      if (this.sawFirst) return;
      this.sawFirst = true;
      // An answer its end completes (a finish never terminated) commits; the relay finalises it.
      const opening = this.opening?.end();
      if (opening?.kind === 'content') this.settle({ kind: 'first' });
      else if (opening?.kind === 'error') this.settle({ kind: 'refused', error: opening.error });
      else this.settle({ kind: 'ended' });
    }
  }

  fail(err: Error): void {
    this.stopWatching();
    const failure = this.stalled ? this.stallError() : err;
    if (this.sink !== null) this.sink.fail(failure);
    else {
      this.failure = failure;
      if (!this.sawFirst) this.settle({ kind: 'failed', err: failure });
    }
  }

  // --- the answer the relay takes ----------------------------------------------------------------------------

  take(sink: StreamSink): StreamControl {
    if (this.sink !== null) throw new Error('the stream was already taken');
    this.sink = sink;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const chunk of held) if (!sink.write(chunk)) this.pausedByClient = true;
    const control: StreamControl = {
      resume: () => {
        this.pausedByClient = false;
        this.control.resume();
      },
    };
    if (this.failure !== null) sink.fail(this.failure);
    else if (this.ended) sink.end();
    else {
      this.watchdog = this.clock.timer(this.stallMs / LOOKS_PER_STALL, () => this.look());
      if (!this.pausedByClient) this.control.resume();
    }
    return control;
  }

  dispose(): void {
    this.stopWatching();
    this.upstream.dispose();
  }

  private look(): void {
    if (this.lively || this.pausedByClient) {
      this.lively = false;
      this.quietLooks = 0;
      this.watchdog?.refresh();
      return;
    }
    if (++this.quietLooks < LOOKS_PER_STALL) {
      this.watchdog?.refresh();
      return;
    }
    this.stalled = true;
    this.watchdog = null;
    this.upstream.dispose();
  }

  private stopWatching(): void {
    this.watchdog?.cancel();
    this.watchdog = null;
  }
}
