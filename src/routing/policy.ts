import { CONTEXT_TOO_LONG } from '../provider-errors.js';

/**
 * Which failures are tried again, as data (README, Routes and failover): what an attempt's failure leads
 * to. `retry`: the same element again after a backoff (while retries are left); `next`: the next element
 * of the chain, the same one not again; `final`: passed on to the client at once.
 */
export type FailureAction = 'retry' | 'next' | 'final';

/** How an attempt failed, before the client saw anything. */
export type AttemptFailure =
  /** The connection was refused or reset before any answer, or the answer broke off before its first byte. */
  | { kind: 'transport' }
  /** No answer (or no first content) within the first-token timeout or `--timeout`. */
  | { kind: 'silent' }
  /** An HTTP error answer, its body read. */
  | { kind: 'status'; status: number; body: string };

/** Statuses tried again on the same element. Every other error status is passed on. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 409, 429, 500, 502, 503, 504, 529]);

/** What a failure leads to; the data above decides. */
export function failureAction(failure: AttemptFailure): FailureAction {
  switch (failure.kind) {
    case 'transport':
      return 'retry';
    case 'silent':
      return 'next';
    case 'status':
      if (RETRYABLE_STATUSES.has(failure.status)) return 'retry';
      // A prompt too long for this model: another element (a longer context) may take it, this one never.
      if (failure.status === 400 && CONTEXT_TOO_LONG.test(failure.body)) return 'next';
      return 'final';
  }
}

/** Whether a failure counts against the element's circuit breaker. */
export function countsForBreaker(failure: AttemptFailure): boolean {
  return failure.kind !== 'status' || RETRYABLE_STATUSES.has(failure.status);
}
