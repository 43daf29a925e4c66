/**
 * Time as the attempts see it: injectable, so that tests run the whole failover policy on a fast profile
 * (every duration scaled down) and unit tests on a manual clock, without sleeping for real.
 */
export interface Timer {
  /** Starts the wait again from now (a stall watchdog, re-armed per chunk). */
  refresh(): void;
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Resolves after `ms`, or at once (false) when `cancelled` says so. */
  sleep(ms: number): Promise<void>;
  /** Calls `fire` once after `ms` unless cancelled. */
  timer(ms: number, fire: () => void): Timer;
}

/** The real clock (performance.now and Node's timers); timers do not keep the process alive. */
export const systemClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) =>
    ms <= 0
      ? Promise.resolve()
      : new Promise((resolve) => {
          setTimeout(resolve, ms).unref();
        }),
  timer(ms, fire) {
    const handle = setTimeout(fire, ms);
    handle.unref();
    return {
      refresh: () => void handle.refresh(),
      cancel: () => clearTimeout(handle),
    };
  },
};

/** A clock moved by hand, for unit tests: `advance` fires what falls due, in order. */
export class ManualClock implements Clock {
  private at = 0;
  private readonly pending: Array<{ due: number; fire: () => void; live: boolean; ms: number }> = [];

  now(): number {
    return this.at;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.timer(ms, resolve));
  }

  timer(ms: number, fire: () => void): Timer {
    const entry = { due: this.at + ms, fire, live: true, ms };
    this.pending.push(entry);
    return {
      // As Node's timers: a refresh re-arms a timer that has fired, too.
      refresh: () => {
        entry.due = this.at + entry.ms;
        entry.live = true;
        if (!this.pending.includes(entry)) this.pending.push(entry);
      },
      cancel: () => void (entry.live = false),
    };
  }

  /** Moves time on by `ms`, firing every timer that falls due (earliest first). */
  advance(ms: number): void {
    const until = this.at + ms;
    for (;;) {
      const next = this.pending.filter((e) => e.live && e.due <= until).sort((a, b) => a.due - b.due)[0];
      if (!next) break;
      this.at = Math.max(this.at, next.due);
      next.live = false;
      next.fire();
    }
    this.at = until;
    for (let i = this.pending.length - 1; i >= 0; i--) if (!this.pending[i]!.live) this.pending.splice(i, 1);
  }
}
