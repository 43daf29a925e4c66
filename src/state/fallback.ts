/**
 * A shared (Redis) store that never fails its caller (README, "Shared state": when Redis is down). While the
 * primary answers, every call goes to it; the first call that fails (down, or slower than its timeout)
 * switches this replica to a memory store of the same interface. While degraded, calls never wait on the
 * primary: a background probe pings it and switches back once it answers. Each feature (brute force, stored
 * responses, …) wraps its own store in one, with its own log lines and gauge.
 */

export interface FallbackLogger {
  error(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface FallbackOptions<T> {
  primary: T;
  /** Resolves when the primary answers, rejects otherwise (within its own timeout). */
  ping: () => Promise<void>;
  /** A fresh memory store, used while the primary is down. */
  createMemory: () => T;
  /** Where the primary lives, without credentials, for log lines. */
  description: string;
  /** The store's name in log lines, e.g. `Brute-force store`. */
  name: string;
  /** What the outage means for clients, in the ERROR line. */
  degradedNote: string;
  /** What the recovery means, in the INFO line. */
  recoveredNote: string;
  log: FallbackLogger;
  /** Called on every switch: true when falling back to memory, false when the primary is back. */
  onDegradedChange?: ((degraded: boolean) => void) | undefined;
  /**
   * True (the default): the memory store is dropped when the primary returns, which is the source of truth
   * again. False: it is kept (the owner may still read what was written there during the outage).
   */
  freshMemoryOnRecover?: boolean;
  /**
   * What the memory store learnt during the outage that the primary must have before it is used again (the
   * brute-force store's counts and blocks): `pending` says whether anything is left, `write` writes some of
   * it to the primary (rejecting if it cannot). Once the primary answers a probe, it is written while this
   * replica still answers from memory; the switch back comes in the same tick as the `pending` that finds
   * nothing left, so nothing recorded in memory meanwhile is left behind.
   */
  writeBack?: { pending(): boolean; write(): Promise<void> };
  /** Clock for log throttling; defaults to Date.now. */
  now?: (() => number) | undefined;
  /** How often to check whether the primary is back (default 1000 ms). */
  probeIntervalMs?: number | undefined;
  /** At most one ERROR per this interval while degraded (default one a minute). */
  errorLogIntervalMs?: number | undefined;
}

const DEFAULT_PROBE_INTERVAL_MS = 1000;
const DEFAULT_ERROR_LOG_INTERVAL_MS = 60_000;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class Fallback<T> {
  readonly primary: T;
  private memoryStore: T;
  private isDegraded = false;
  private lastErrorLogMs = -Infinity;
  private probeTimer: NodeJS.Timeout | null = null;
  private probing: Promise<boolean> | null = null;
  private closed = false;
  private readonly now: () => number;
  private readonly probeIntervalMs: number;
  private readonly errorLogIntervalMs: number;

  constructor(private readonly options: FallbackOptions<T>) {
    this.primary = options.primary;
    this.memoryStore = options.createMemory();
    this.now = options.now ?? Date.now;
    this.probeIntervalMs = options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    this.errorLogIntervalMs = options.errorLogIntervalMs ?? DEFAULT_ERROR_LOG_INTERVAL_MS;
  }

  get degraded(): boolean {
    return this.isDegraded;
  }

  get description(): string {
    return this.options.description;
  }

  /** The memory store in use while degraded (and, with `freshMemoryOnRecover: false`, kept after). */
  get memory(): T {
    return this.memoryStore;
  }

  /** Checks the primary once, so a proxy started while Redis is down starts degraded (and says so). */
  async start(): Promise<void> {
    try {
      await this.options.ping();
    } catch (error) {
      this.degrade(error);
    }
  }

  /** `operation` on the primary, or on the memory store while degraded or when the primary fails now. */
  async run<R>(operation: (store: T) => Promise<R>): Promise<R> {
    if (!this.isDegraded) {
      try {
        return await operation(this.primary);
      } catch (error) {
        this.degrade(error);
      }
    }
    return operation(this.memoryStore);
  }

  /**
   * Pings the primary; switches back to it if it answers (after `writeBack`). Returns whether the primary is
   * in use. Runs on a timer while degraded; exposed so tests need not wait for the timer.
   */
  probe(): Promise<boolean> {
    this.probing ??= this.probeOnce().finally(() => {
      this.probing = null;
    });
    return this.probing;
  }

  private async probeOnce(): Promise<boolean> {
    try {
      await this.options.ping();
      const writeBack = this.options.writeBack;
      while (this.isDegraded && !this.closed && writeBack?.pending() === true) await writeBack.write();
      if (this.isDegraded && !this.closed) this.recover();
      return !this.isDegraded;
    } catch (error) {
      if (this.isDegraded) this.logUnreachable(error, 'still unreachable');
      return false;
    }
  }

  /** Stops probing. The primary's connection is its owner's to close. */
  close(): void {
    this.closed = true;
    this.stopProbing();
  }

  private degrade(error: unknown): void {
    if (this.isDegraded) return;
    this.isDegraded = true;
    this.logUnreachable(error, 'unreachable');
    this.options.onDegradedChange?.(true);
    if (!this.closed && this.probeTimer === null) {
      this.probeTimer = setInterval(() => void this.probe(), this.probeIntervalMs);
      this.probeTimer.unref();
    }
  }

  private recover(): void {
    this.isDegraded = false;
    this.stopProbing();
    if (this.options.freshMemoryOnRecover ?? true) this.memoryStore = this.options.createMemory();
    this.options.log.info(
      { store: this.options.description },
      `${this.options.name} reachable again: ${this.options.recoveredNote}`,
    );
    this.options.onDegradedChange?.(false);
  }

  /** Throttled across flaps too: a Redis going up and down every second still logs once a minute. */
  private logUnreachable(error: unknown, state: string): void {
    const at = this.now();
    if (at - this.lastErrorLogMs < this.errorLogIntervalMs) return;
    this.lastErrorLogMs = at;
    this.options.log.error(
      { store: this.options.description, err: messageOf(error) },
      `${this.options.name} ${state}: using this replica's memory store until it returns ` +
        `(${this.options.degradedNote})`,
    );
  }

  private stopProbing(): void {
    if (this.probeTimer !== null) clearInterval(this.probeTimer);
    this.probeTimer = null;
  }
}
