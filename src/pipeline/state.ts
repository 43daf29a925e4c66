import type { ReasoningSetting } from '../protocols/reasoning.js';

/** What the proxy learns about a request as it passes through, for the access log, metrics and headers. */
export interface RequestState {
  /** performance.now() when the request arrived. */
  start: number;
  /** Milliseconds spent waiting on the backend (excluded from x-proxy-overhead-ms). */
  backendMs: number;
  backend: string | null;
  model: string | null;
  /**
   * The session's `!/set(reasoning=…)`, put on the request for each backend tried, in its protocol
   * (src/pipeline/prepare.ts).
   */
  reasoning?: ReasoningSetting | undefined;
  /** Request fields left out with notice on the way to the backend, sent back in `x-proxy-dropped`. */
  dropped?: readonly string[] | undefined;
  /** Each attempt of a request tried by failover (src/pipeline/attempts.ts); absent for a single one. */
  attempts?: AttemptRecord[];
  /**
   * Writes to the state store the answer's end waits for (a stored Response): a client that reads back what
   * it was just answered, on any replica, finds it.
   */
  storing?: Promise<void> | undefined;
  /**
   * The `x-ratelimit-*-requests` headers of a request its key's rpm let in (limits.ts), on every answer it
   * gets: put in the answer's head by `responseHead`, not set on the response beforehand (a header set
   * before `writeHead` sends every header of the head through Node's slower path, each validated again).
   */
  limitHeaders?: Readonly<Record<string, string>> | undefined;
}

/** One attempt, for the access line, the capture and `x-proxy-attempts`. */
export interface AttemptRecord {
  /** `backend:model`. */
  readonly element: string;
  /** The backend's status; 0 when it gave none (refused, reset, silent, skipped). */
  readonly status: number;
  /** What came of it: `ok`, `retry`, `next`, `final`, or `skipped` (an open circuit breaker). */
  readonly outcome: string;
  readonly ms: number;
}
