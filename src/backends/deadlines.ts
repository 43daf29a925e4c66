import { UNDICI_BODY_TIMEOUT, UNDICI_HEADERS_TIMEOUT } from './undici-lean.js';

/** A backend call watched for silence. */
export interface WatchedCall {
  /** Called on every sweep: the call ends itself if it showed no life for `timeoutMs` up to `now`. */
  checkDeadline(now: number, timeoutMs: number): void;
  /** Links of the list of calls in flight, kept by UpstreamDeadlines (`undefined`: not in it). */
  deadlinePrev: WatchedCall | null | undefined;
  deadlineNext: WatchedCall | null;
}

/**
 * The upstream timeouts of dispatched backend calls — no answer head, or no body bytes, for `timeoutMs` —
 * checked by one sweep over the calls in flight rather than by a timer per call. undici's own per-request
 * timers are objects kept in a list swept every half second, so under load each request's timers outlive
 * two young-generation collections and are promoted to the old generation, which only a full collection
 * frees: a steadily loaded proxy's RSS climbed (docs/performance.md).
 *
 * A call expires between `timeoutMs` and `timeoutMs` plus two sweeps; a sweep comes every quarter of the
 * timeout, at most every second. The calls in flight are a list linked through the calls themselves: adding
 * and removing one allocates nothing (a Set's table, rebuilt as calls come and go, grew the old generation
 * about as much as undici's timers).
 */
export class UpstreamDeadlines {
  private head: WatchedCall | null = null;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private timeoutMs: number) {}

  get timeout(): number {
    return this.timeoutMs;
  }

  configure(timeoutMs: number): void {
    this.timeoutMs = timeoutMs;
    this.stop();
    if (this.count > 0) this.start();
  }

  watch(call: WatchedCall): void {
    if (call.deadlinePrev !== undefined) return;
    call.deadlinePrev = null;
    call.deadlineNext = this.head;
    if (this.head !== null) this.head.deadlinePrev = call;
    this.head = call;
    this.count++;
    if (this.timer === undefined) this.start();
  }

  unwatch(call: WatchedCall): void {
    const prev = call.deadlinePrev;
    if (prev === undefined) return;
    const next = call.deadlineNext;
    if (prev === null) this.head = next;
    else prev.deadlineNext = next;
    if (next !== null) next.deadlinePrev = prev;
    call.deadlinePrev = undefined;
    call.deadlineNext = null;
    this.count--;
  }

  /** Calls in flight (for tests). */
  get watched(): number {
    return this.count;
  }

  private start(): void {
    this.timer = setInterval(() => this.sweep(), Math.min(1000, Math.max(10, this.timeoutMs / 4)));
    this.timer.unref();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private sweep(): void {
    if (this.count === 0) return this.stop();
    const now = Date.now();
    for (let call = this.head; call !== null;) {
      const next = call.deadlineNext;
      call.checkDeadline(now, this.timeoutMs);
      call = next;
    }
  }
}

/** The error a silent call ends with: undici's codes, so callers map it as they map undici's own. */
export function silenceError(headersArrived: boolean): Error {
  return headersArrived
    ? Object.assign(new Error('Body timeout'), { code: UNDICI_BODY_TIMEOUT })
    : Object.assign(new Error('Headers timeout'), { code: UNDICI_HEADERS_TIMEOUT });
}
