import type { CancelSignal } from './cancel.js';
import { waitInQueue, type Waiter } from './waiting.js';

/** Streams started per turn of the event loop by default (docs/performance.md, "Quick calls among opening streams"). */
export const DEFAULT_STREAMS_PER_TURN = 32;

/**
 * Streams started per turn while the ones held back for accepts are being started: short turns, so that a quick
 * call read meanwhile takes its few steps (its backend's connection, its answer) between them.
 */
export const STREAMS_PER_TURN_AFTER_ACCEPTS = 8;

/**
 * Streams held back for accepts at most: with more waiting, they start at the full share per turn again (and
 * new connections wait in the kernel's accept queue, as they did before).
 */
export const MAX_HELD_FOR_ACCEPTS = 4096;

/**
 * How long streams are held back for accepts at most: past it, they start `STREAMS_PER_TURN_AFTER_ACCEPTS` a
 * turn even in turns that accept. Without a bound, clients opening connections faster than the proxy accepts
 * them (a flood of new connections, refused or not) would hold every stream, a keep-alive client's too, until
 * its timeout.
 */
export const MAX_HOLD_FOR_ACCEPTS_MS = 2000;

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
 * Accepts set the pace while connections keep arriving: Node's event loop (libuv 1.45 and later) accepts one
 * connection per turn, so in a burst of new connections every stream started in a turn delays the next
 * accept, and a quick call's connection waits in the kernel's accept queue behind all the streams' ones. The
 * server tells the pacer of each accepted connection (`connectionAccepted`); a turn that follows one starts no
 * stream, so while connections queue up the turns stay short and accept them (and read and answer the quick
 * calls among them) faster than they arrive; the streams wait here instead, in arrival order, and start as
 * soon as a turn passes without an accept, `STREAMS_PER_TURN_AFTER_ACCEPTS` a turn until those held are started. Keep-alive traffic accepts nothing and
 * keeps the full share; past `MAX_HELD_FOR_ACCEPTS` streams waiting, they take it back too, and a hold that has
 * lasted `MAX_HOLD_FOR_ACCEPTS_MS` gives way to the slower share even while connections keep arriving.
 *
 * The hot path (no stream waiting, room in this turn) is two comparisons and a counter; the turn ends at the
 * next check phase (`setImmediate`), scheduled once per turn in which a stream started or a connection was
 * accepted.
 */
export class StreamPacer {
  private startedThisTurn = 0;
  /** How many streams may start in this turn: `perTurn`, or fewer while connections are being accepted. */
  private turnShare: number;
  private acceptedThisTurn = false;
  /** Streams were held back for accepts, and some of them still wait. */
  private heldForAccepts = false;
  /** When the current hold for accepts began (`now()`), or undefined when no stream is held. */
  private holdingSince: number | undefined;
  private turnEnd: NodeJS.Immediate | undefined;
  /** Insertion-ordered: first come, first served; a call that gives up is removed in O(1). */
  private readonly waiting = new Set<Waiter>();

  constructor(
    readonly perTurn: number = DEFAULT_STREAMS_PER_TURN,
    /** Milliseconds, for the hold's bound (injectable for tests). */
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.turnShare = perTurn;
  }

  /** Streams waiting for a later turn (for tests). */
  get queued(): number {
    return this.waiting.size;
  }

  /** Starts a stream now when this turn has room and none waits before it. */
  tryStart(): boolean {
    if (this.waiting.size > 0 || this.startedThisTurn >= this.turnShare) return false;
    this.started();
    return true;
  }

  /** Waits for a later turn (after `tryStart` said no); rejects with `gone()` when the client leaves first. */
  wait(signal: CancelSignal, gone: () => Error): Promise<void> {
    const waited = waitInQueue(this.waiting, {}, signal, gone);
    this.scheduleTurnEnd();
    return waited;
  }

  /** The server accepted a connection in this turn: the next turns keep room for the accepts that follow. */
  connectionAccepted(): void {
    this.acceptedThisTurn = true;
    this.scheduleTurnEnd();
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
    const accepted = this.acceptedThisTurn;
    this.acceptedThisTurn = false;
    if (this.waiting.size === 0) {
      this.heldForAccepts = false;
      this.holdingSince = undefined;
    }
    const holdable = this.waiting.size < MAX_HELD_FOR_ACCEPTS;
    if (accepted && holdable && !this.heldTooLong()) {
      // Connections are arriving: this turn is the accepts' (and their quick calls'). The turn after is
      // looked at too: the streams start again once a turn passes without an accept.
      this.turnShare = 0;
      if (this.waiting.size > 0) {
        this.heldForAccepts = true;
        this.holdingSince ??= this.now();
      }
      this.scheduleTurnEnd();
    } else if (this.heldForAccepts && holdable) {
      // Held streams start a few a turn: after a turn without an accept, or once the hold has lasted too long.
      this.turnShare = Math.min(this.perTurn, STREAMS_PER_TURN_AFTER_ACCEPTS);
    } else {
      this.turnShare = this.perTurn;
    }
    for (const waiter of this.waiting) {
      if (this.startedThisTurn >= this.turnShare) break;
      this.started();
      waiter.admit();
    }
    // Calls still waiting: the next check phase goes on with them (a poll phase runs in between). None: the
    // hold is over, and the next one is timed from its own start.
    if (this.waiting.size > 0) this.scheduleTurnEnd();
    else this.holdingSince = undefined;
  };

  private heldTooLong(): boolean {
    return this.holdingSince !== undefined && this.now() - this.holdingSince >= MAX_HOLD_FOR_ACCEPTS_MS;
  }
}
