import type { CancelSignal } from './cancel.js';
import { waitInQueue, type Waiter } from './waiting.js';

/** Streams started per turn of the event loop by default (docs/performance.md, "Quick calls among opening streams"). */
export const DEFAULT_STREAMS_PER_TURN = 32;

/**
 * Paces the start of streamed backend calls: at most `perTurn` start in one turn of the event loop, the
 * rest wait (first come, first served) for the next turns. Quick calls are never paced.
 *
 * Why: starting a stream is the costly part of it (a new connection to the backend, its request, the answer's
 * head), and thousands of streams opened within seconds would have the proxy start them all in the turn
 * their requests arrive in. A turn then lasts as long as all that work, and a quick call that arrives
 * meanwhile waits through several such turns (its accept, its request, its backend's answer each wait for
 * the next one). Paced, each turn starts a bounded batch, so turns stay short and the quick call is served
 * in a few of them; the streams start as fast as the proxy gets through them anyway, in arrival order.
 *
 * The hot path (no stream waiting, room in this turn) is two comparisons and a counter; the turn ends at the
 * next check phase (`setImmediate`), scheduled once per turn in which a stream started.
 */
export class StreamPacer {
  private startedThisTurn = 0;
  private turnEnd: NodeJS.Immediate | undefined;
  /** Insertion-ordered: first come, first served; a call that gives up is removed in O(1). */
  private readonly waiting = new Set<Waiter>();

  constructor(readonly perTurn: number = DEFAULT_STREAMS_PER_TURN) {}

  /** Streams waiting for a later turn (for tests). */
  get queued(): number {
    return this.waiting.size;
  }

  /** Starts a stream now when this turn has room and none waits before it. */
  tryStart(): boolean {
    if (this.waiting.size > 0 || this.startedThisTurn >= this.perTurn) return false;
    this.started();
    return true;
  }

  /** Waits for a later turn (after `tryStart` said no); rejects with `gone()` when the client leaves first. */
  wait(signal: CancelSignal, gone: () => Error): Promise<void> {
    const waited = waitInQueue(this.waiting, {}, signal, gone);
    this.scheduleTurnEnd();
    return waited;
  }

  private started(): void {
    this.startedThisTurn++;
    this.scheduleTurnEnd();
  }

  private scheduleTurnEnd(): void {
    if (this.turnEnd === undefined) this.turnEnd = setImmediate(this.nextTurn);
  }

  /** The check phase: a new turn begins; the calls waiting longest start, up to the turn's share. */
  private readonly nextTurn = (): void => {
    this.turnEnd = undefined;
    this.startedThisTurn = 0;
    for (const waiter of this.waiting) {
      if (this.startedThisTurn >= this.perTurn) break;
      this.started();
      waiter.admit();
    }
    // Calls still waiting: the next check phase goes on with them (a poll phase runs in between).
    if (this.waiting.size > 0) this.scheduleTurnEnd();
  };
}
