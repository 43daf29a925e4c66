/**
 * The circuit breaker per (backend, model) (README, Routes and failover): after `failures` retryable
 * failures in a row the element is skipped at once; after `cooldown` one probe is let through, and a
 * success closes it again. The state lives behind `BreakerStore`, whose methods may answer a promise, so a
 * shared store (Redis) can stand in for the memory one without changing the callers.
 */
export type BreakerPhase = 'closed' | 'open' | 'half_open';

export interface BreakerLimits {
  readonly failures: number;
  readonly cooldownMs: number;
}

export interface BreakerView {
  readonly element: string;
  readonly phase: BreakerPhase;
  readonly failures: number;
}

export interface BreakerStore {
  /** May the element be tried now? An open breaker past its cooldown admits one probe (half-open). */
  admit(element: string, limits: BreakerLimits, now: number): boolean | Promise<boolean>;
  /** The element answered: closed again, its count cleared. */
  succeeded(element: string): void | Promise<void>;
  /** A retryable failure: counted; the breaker opens at the limit, and a failed probe opens it again. */
  failed(element: string, limits: BreakerLimits, now: number): void | Promise<void>;
  /** Every element with a count or not closed, for /internal/health and /metrics. */
  snapshot(): BreakerView[] | Promise<BreakerView[]>;
}

interface Entry {
  phase: BreakerPhase;
  failures: number;
  /** When it opened, or when its probe was let through. */
  since: number;
}

/** Most elements remembered: a bound on memory when clients name arbitrary models in chains. */
const MAX_ELEMENTS = 10_000;

/** The breakers of one proxy, in memory. */
export class MemoryBreakerStore implements BreakerStore {
  private readonly entries = new Map<string, Entry>();

  admit(element: string, limits: BreakerLimits, now: number): boolean {
    const entry = this.entries.get(element);
    if (entry === undefined || entry.phase === 'closed') return true;
    // Open, or half-open with a probe out: a probe that never reported is replaced after a cooldown.
    if (now - entry.since < limits.cooldownMs) return false;
    entry.phase = 'half_open';
    entry.since = now;
    return true;
  }

  succeeded(element: string): void {
    this.entries.delete(element);
  }

  failed(element: string, limits: BreakerLimits, now: number): void {
    let entry = this.entries.get(element);
    if (entry === undefined) {
      if (this.entries.size >= MAX_ELEMENTS) this.entries.clear();
      entry = { phase: 'closed', failures: 0, since: now };
      this.entries.set(element, entry);
    }
    entry.failures += 1;
    if (entry.phase === 'half_open' || entry.failures >= limits.failures) {
      entry.phase = 'open';
      entry.since = now;
    }
  }

  snapshot(): BreakerView[] {
    return [...this.entries].map(([element, e]) => ({ element, phase: e.phase, failures: e.failures }));
  }
}
