import { ProxyError } from '../proxy-error.js';
import type { CancelSignal } from './cancel.js';
import { waitInQueue, type Waiter as QueuedCall } from './waiting.js';

/** Connections to one backend when its YAML says nothing (`backends.<name>.max_connections`). */
export const DEFAULT_MAX_CONNECTIONS = 4096;

/**
 * The connections kept for quick calls (non-streamed answers, model lists), which long streams may never
 * take: an eighth of the limit, at least one when the limit allows two or more.
 */
export function quickReserve(max: number): number {
  return max < 2 ? 0 : Math.max(1, Math.floor(max / 8));
}

/** A call waiting for a connection. */
interface Waiter extends QueuedCall {
  readonly stream: boolean;
}

/** The answer to a call that found no connection free within the timeout (README, "Connections to backends"). */
export function connectionWaitTimeout(backendName: string): ProxyError {
  return new ProxyError(504, `Backend '${backendName}' had no free connection in time`, {
    code: 'upstream_timeout',
  });
}

/**
 * Admission to one backend's connections. A call in flight holds one connection (no pipelining), so
 * counting the calls admitted keeps them within `max` and the pool never queues one out of sight: a call
 * that finds none free waits here, where the wait counts against the timeout (a 504 once it is over) and a
 * client that goes away leaves the queue. Streams may hold at most `max` minus a reserve (`quickReserve`),
 * so that a quick call is never stuck behind long streams; when a connection comes free, quick calls that
 * wait go first.
 *
 * The hot path (a connection free) is a comparison and two counters; the queue is only for the slow path.
 */
export class ConnectionGate {
  readonly streamMax: number;
  private active = 0;
  private streams = 0;
  /** Insertion-ordered: first come, first served; a call that gives up is removed in O(1). */
  private readonly quickWaiting = new Set<Waiter>();
  private readonly streamWaiting = new Set<Waiter>();

  constructor(
    readonly max: number,
    private readonly timeoutMs: number,
    private readonly backendName: string,
  ) {
    this.streamMax = max - quickReserve(max);
  }

  /** Calls holding a connection (for tests and metrics). */
  get inFlight(): number {
    return this.active;
  }

  /** Calls waiting for one. */
  get waiting(): number {
    return this.quickWaiting.size + this.streamWaiting.size;
  }

  /** Takes a connection when one is free for this kind of call and nobody of its kind waits before it. */
  tryEnter(stream: boolean): boolean {
    if (stream) {
      if (this.streamWaiting.size > 0 || !this.streamRoom()) return false;
      this.streams++;
    } else {
      if (this.quickWaiting.size > 0 || this.active >= this.max) return false;
    }
    this.active++;
    return true;
  }

  /**
   * Waits for a connection (after `tryEnter` said no): resolves once the call holds one; rejects with a 504
   * after the timeout, or with `gone()` when the client leaves first.
   */
  wait(stream: boolean, signal: CancelSignal, gone: () => Error): Promise<void> {
    const queue = stream ? this.streamWaiting : this.quickWaiting;
    return waitInQueue(queue, { stream }, signal, gone, {
      ms: this.timeoutMs,
      error: () => connectionWaitTimeout(this.backendName),
    });
  }

  /** A call gave its connection back: the next waiting call (quick ones first) takes it. */
  leave(stream: boolean): void {
    this.active--;
    if (stream) this.streams--;
    while (this.active < this.max) {
      const next =
        firstOf(this.quickWaiting) ?? (this.streamRoom() ? firstOf(this.streamWaiting) : undefined);
      if (next === undefined) return;
      this.active++;
      if (next.stream) this.streams++;
      next.admit();
    }
  }

  private streamRoom(): boolean {
    return this.active < this.max && this.streams < this.streamMax;
  }
}

function firstOf(set: Set<Waiter>): Waiter | undefined {
  for (const waiter of set) return waiter;
  return undefined;
}
