import { Cancellation } from '../backends/cancel.js';
import type { BackendRegistry } from '../backends/registry.js';
import type { UpstreamResponse } from '../backends/types.js';
import type { CaptureRecorder } from '../capture/events.js';
import type { ProxyConfig } from '../config/schema.js';
import { ProxyError } from '../proxy-error.js';
import type { Protocol } from '../protocols/types.js';
import type { Redactor } from '../redaction/redactor.js';
import { backoffMs, retryAfterSeconds } from '../routing/backoff.js';
import { MemoryBreakerStore, type BreakerStore } from '../routing/breaker.js';
import { systemClock, type Clock } from '../routing/clock.js';
import { countsForBreaker, failureAction, type AttemptFailure } from '../routing/policy.js';
import { RouteTable, type AttemptPlan } from '../routing/routes.js';
import type { AttemptSettings } from '../routing/settings.js';
import type { AttemptRecord } from '../server/state.js';
import { dispatch, type Dispatched } from './dispatch.js';
import { JsonEventFilter } from './event-filter.js';
import type { ChatExchange } from './exchange.js';
import type { FrontEnd } from './front-ends.js';
import { prepareRequest } from './prepare.js';
import { RequestCapture } from './record.js';
import { isJsonObject, relayAnswer } from './relay.js';
import type { UsageMeter } from './spend.js';
import type { ChatRoute, ClientTarget } from './route.js';

/** Counters of failover, printed on /metrics. */
export class FailoverStats {
  /** Attempts by outcome (`ok`, `retry`, `next`, `final`, `skipped`). */
  readonly attempts = new Map<string, number>();
  /** Backend stream events dropped because their data was not JSON. */
  invalidEventsDropped = 0;

  count(outcome: string): void {
    this.attempts.set(outcome, (this.attempts.get(outcome) ?? 0) + 1);
  }
}

/** Failover for one proxy: its routes, memory breakers and the real clock. */
export function createFailover(config: ProxyConfig, clock: Clock = systemClock): FailoverDeps {
  return {
    routes: new RouteTable(config.routes, config.resilience, config.server.timeout_seconds * 1000),
    breakers: new MemoryBreakerStore(),
    clock,
    stats: new FailoverStats(),
  };
}

/** What failover needs besides the chat pipeline's own dependencies. */
export interface FailoverDeps {
  readonly routes: RouteTable;
  readonly breakers: BreakerStore;
  readonly clock: Clock;
  readonly stats: FailoverStats;
  readonly random?: () => number;
}

/** The chat pipeline's dependencies that attempts use. */
export interface AttemptDeps {
  readonly registry: BackendRegistry;
  readonly redactor: () => Redactor;
  readonly scrubPrompts: boolean;
  readonly capture: CaptureRecorder | null;
  readonly log: { warn?(obj: object, msg: string): void; error(obj: object, msg: string): void };
  readonly failover: FailoverDeps;
}

/** Upper bound for an error body read from a backend (as relay.ts). */
const ERROR_BODY_LIMIT = 1024 * 1024;

const NO_BODY: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: async function* () {} };

/** An answer whose body is already read: relayed from the bytes held. */
function heldAnswer(dispatched: Dispatched, bytes: Buffer): Dispatched {
  const { upstream } = dispatched;
  const held: UpstreamResponse = {
    status: upstream.status,
    headers: upstream.headers,
    contentType: upstream.contentType,
    body: NO_BODY,
    bytes,
    dispose: () => upstream.dispose(),
  };
  return { upstream: held, signal: dispatched.signal, readWhole: () => Promise.resolve(bytes) };
}

/** How one attempt ended: committed (the answer is on its way), or failed with what the client would get. */
type Outcome =
  | { readonly ok: true; readonly relay: () => Promise<void> }
  | {
      readonly ok: false;
      readonly failure: AttemptFailure;
      readonly status: number;
      readonly retryAfterS: number | null;
      /** Passes this failure to the client, if it is the one that ends the request. */
      readonly answer: () => Promise<void> | void;
      /** Records the failure in this attempt's capture, when it does not end the request. */
      readonly record: (action: string) => void;
    };

/** A whole answer the client's SDK can read: a JSON object, parsed when it must be translated. */
function readableWhole(bytes: Buffer, sameProtocol: boolean): boolean {
  if (sameProtocol) return isJsonObject(bytes);
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

/**
 * One request tried along its chain (README, Routes and failover): each element in order, a retryable
 * failure again on the same element after a backoff or the provider's `Retry-After`, a silent element or a
 * prompt too long for it on the next, while attempts and the deadline last. Nothing is written to the
 * client before an attempt commits: a stream commits with its first bytes, a whole answer once read and
 * readable. After that, a failure ends the stream with the protocol's error event (stream-end.ts).
 */
export class AttemptRun {
  private readonly settings: AttemptSettings;
  private readonly clock: Clock;
  private readonly records: AttemptRecord[] = [];
  private readonly startedAt: number;
  private readonly from: Protocol;
  private loggedDrop = false;

  constructor(
    private readonly ex: ChatExchange,
    frontEnd: FrontEnd,
    private readonly read: ClientTarget,
    private readonly plan: AttemptPlan,
    private readonly deps: AttemptDeps,
    /** Told the committed answer's usage (src/pipeline/spend.ts). */
    private readonly meter?: UsageMeter,
  ) {
    this.settings = plan.settings;
    this.clock = deps.failover.clock;
    this.startedAt = this.clock.now();
    this.from = frontEnd.protocol;
    ex.state.attempts = this.records;
  }

  async run(): Promise<void> {
    const { settings, clock, deps } = this;
    const { breakers } = deps.failover;
    const limits = { failures: settings.breakerFailures, cooldownMs: settings.breakerCooldownMs };
    const deadlineAt = this.startedAt + settings.deadlineMs;
    let last: Outcome | null = null;
    let unresolved: Error | null = null;
    let tried = 0;
    chain: for (const element of this.plan.elements) {
      let route: ChatRoute;
      try {
        route = this.routeTo(element);
      } catch (err) {
        // An element whose backend is unknown or has no key: the others may still answer.
        unresolved = err as Error;
        continue;
      }
      const key = `${route.backend.name}:${route.model}`;
      for (let retry = 0; retry <= settings.retries; retry++) {
        if (tried >= settings.maxAttempts || clock.now() >= deadlineAt) break chain;
        const admitted = breakers.admit(key, limits, clock.now());
        if (!(admitted instanceof Promise ? await admitted : admitted)) {
          this.note(route, 0, 'skipped', 0);
          continue chain;
        }
        tried += 1;
        const began = clock.now();
        const outcome = await this.attempt(route, deadlineAt);
        const ms = clock.now() - began;
        if (outcome.ok) {
          this.note(route, 200, 'ok', ms);
          await breakers.succeeded(key);
          await outcome.relay();
          return;
        }
        if (this.ex.res.destroyed)
          throw new ProxyError(499, 'Client closed the request', { code: 'client_closed' });
        last = outcome;
        if (countsForBreaker(outcome.failure)) await breakers.failed(key, limits, clock.now());
        const action = failureAction(outcome.failure);
        this.note(route, outcome.status, action, ms);
        if (action === 'final') break chain;
        outcome.record(action);
        if (action === 'next') continue chain;
        if (retry === settings.retries) continue chain;
        let wait = backoffMs(retry, settings, deps.failover.random);
        if (outcome.retryAfterS !== null) {
          // A wait longer than allowed is not waited out here: the next element, or the 429 for the client.
          if (outcome.retryAfterS > settings.maxRetryAfterS) continue chain;
          wait = outcome.retryAfterS * settings.retryAfterMsPerS;
        }
        // Counted from the failure, not the send: the gap holds as the provider sees the two requests arrive.
        wait = Math.max(wait, settings.minGapMs);
        if (clock.now() + wait >= deadlineAt) break chain;
        await clock.sleep(wait);
        if (this.ex.res.destroyed)
          throw new ProxyError(499, 'Client closed the request', { code: 'client_closed' });
      }
    }
    if (last !== null) {
      await last.answer();
      return;
    }
    if (unresolved !== null) throw unresolved;
    throw new ProxyError(
      503,
      `No backend of '${this.plan.name ?? this.plan.elements.join('|')}' could be tried`,
      {
        code: 'no_backend_available',
      },
    );
  }

  private routeTo(element: string): ChatRoute {
    const resolved = this.deps.registry.resolve(element);
    return {
      clientBody: this.read.clientBody,
      requested: this.read.target.model,
      backend: resolved.backend,
      model: resolved.model,
      stream: this.read.target.stream,
    };
  }

  private note(route: ChatRoute, status: number, outcome: string, ms: number): void {
    const { state } = this.ex;
    state.backend = route.backend.name;
    state.model = route.model;
    this.records.push({ element: `${route.backend.name}:${route.model}`, status, outcome, ms });
    this.deps.failover.stats.count(outcome);
  }

  /** One call to one element, up to the point where it commits or fails. */
  private async attempt(route: ChatRoute, deadlineAt: number): Promise<Outcome> {
    const { ex, deps, settings, clock, from } = this;
    const redactor = deps.redactor();
    const capture = deps.capture
      ? new RequestCapture(deps.capture, ex, route.backend.name, route.model, route.backend.credentialName)
      : null;
    const request = prepareRequest(ex, route, from, redactor, deps.scrubPrompts, capture);
    const signal = new Cancellation();
    const onClose = () => {
      if (!ex.res.writableFinished) signal.abort();
    };
    ex.res.once('close', onClose);
    let silent = false;
    const firstContent = clock.timer(Math.min(settings.ttftMs, Math.max(0, deadlineAt - clock.now())), () => {
      silent = true;
      signal.abort();
    });
    const failed = (
      failure: AttemptFailure,
      status: number,
      answer: () => Promise<void> | void,
      retryAfterS: number | null = null,
    ): Outcome => {
      firstContent.cancel();
      ex.res.removeListener('close', onClose);
      const record = (action: string) =>
        capture?.record('inbound_response', {
          payload: failure.kind === 'status' ? failure.body : '',
          metadata: { status, failure: failure.kind, failover: action },
        });
      return { ok: false, failure, status, retryAfterS, answer, record };
    };
    const transportFailure = (err: unknown): Outcome => {
      const timedOut = silent || (err instanceof ProxyError && err.status === 504);
      const error =
        silent || !(err instanceof ProxyError)
          ? new ProxyError(504, `Backend '${route.backend.name}' did not answer in time`, {
              code: 'upstream_timeout',
            })
          : err;
      return failed(timedOut ? { kind: 'silent' } : { kind: 'transport' }, 0, () => {
        throw error;
      });
    };
    let dispatched: Dispatched;
    try {
      dispatched = await dispatch(ex, route, request, from, { signal, direct: false });
    } catch (err) {
      return transportFailure(err);
    }
    const { upstream } = dispatched;
    const { meter } = this;
    const relayHeld = (bytes: Buffer) => () =>
      relayAnswer({ ex, route, dispatched: heldAnswer(dispatched, bytes), from, redactor, capture, meter });
    if (upstream.status >= 400) {
      let bytes: Buffer;
      try {
        bytes = await dispatched.readWhole(ERROR_BODY_LIMIT);
      } catch (err) {
        return transportFailure(err);
      }
      return failed(
        { kind: 'status', status: upstream.status, body: bytes.toString('utf8') },
        upstream.status,
        relayHeld(bytes),
        retryAfterSeconds(upstream.headers),
      );
    }
    const contentType = String(upstream.contentType ?? upstream.headers['content-type'] ?? '');
    if (route.stream && contentType.includes('text/event-stream')) {
      return this.primeStream(route, dispatched, firstContent, () => silent, failed, transportFailure, {
        redactor,
        capture,
        signal,
        stripUsage: request.stripUsage === true,
      });
    }
    let bytes: Buffer;
    try {
      bytes = await dispatched.readWhole();
    } catch (err) {
      return transportFailure(err);
    }
    if (!readableWhole(bytes, route.backend.protocol === from)) {
      const error = new ProxyError(502, `Backend '${route.backend.name}' answered with invalid JSON`, {
        code: 'upstream_invalid',
      });
      return failed({ kind: 'transport' }, upstream.status, () => {
        throw error;
      });
    }
    firstContent.cancel();
    return { ok: true, relay: relayHeld(bytes) };
  }

  /**
   * A stream commits with its first bytes: until they come (within the first-token timeout) it may still
   * fail over. After, its chunks go on watched for silence (the stall timeout) and, when passed through
   * in the same protocol, with events that are not JSON dropped.
   */
  private async primeStream(
    route: ChatRoute,
    dispatched: Dispatched,
    firstContent: { cancel(): void },
    wasSilent: () => boolean,
    failed: (f: AttemptFailure, status: number, answer: () => void) => Outcome,
    transportFailure: (err: unknown) => Outcome,
    relayParts: {
      redactor: Redactor;
      capture: RequestCapture | null;
      signal: Cancellation;
      stripUsage: boolean;
    },
  ): Promise<Outcome> {
    const { upstream } = dispatched;
    const iterator = upstream.body[Symbol.asyncIterator]();
    let first: IteratorResult<Uint8Array>;
    try {
      do first = await iterator.next();
      while (!first.done && first.value.length === 0);
    } catch (err) {
      upstream.dispose();
      return transportFailure(wasSilent() ? null : err);
    }
    if (first.done) {
      const error = new ProxyError(
        502,
        `Backend '${route.backend.name}' ended the stream before any answer`,
        {
          code: 'upstream_incomplete',
        },
      );
      return failed({ kind: 'transport' }, upstream.status, () => {
        throw error;
      });
    }
    firstContent.cancel();
    const { ex, from } = this;
    const filter = route.backend.protocol === from ? new JsonEventFilter() : null;
    const body = this.watched(first.value, iterator, upstream, route.backend.name, filter);
    const committed: UpstreamResponse = {
      status: upstream.status,
      headers: upstream.headers,
      contentType: upstream.contentType,
      body,
      dispose: () => upstream.dispose(),
    };
    return {
      ok: true,
      relay: () =>
        relayAnswer({
          ex,
          route,
          dispatched: { ...dispatched, upstream: committed },
          from,
          redactor: relayParts.redactor,
          capture: relayParts.capture,
          meter: this.meter,
          stripUsage: relayParts.stripUsage,
        }),
    };
  }

  /** The committed stream's chunks: aborted after `stall_timeout_s` of silence from the backend. */
  private async *watched(
    first: Uint8Array,
    iterator: AsyncIterator<Uint8Array>,
    upstream: UpstreamResponse,
    backendName: string,
    filter: JsonEventFilter | null,
  ): AsyncGenerator<Uint8Array> {
    let waiting = false;
    let stalled = false;
    const stall = this.deps.failover.clock.timer(this.settings.stallMs, () => {
      // Only silence from the backend counts, not a client slow to take what it was sent.
      if (!waiting) {
        stall.refresh();
        return;
      }
      stalled = true;
      upstream.dispose();
    });
    const pass = (chunk: Uint8Array): Uint8Array | null => {
      if (filter === null) return chunk;
      const kept = filter.push(chunk);
      return kept === '' ? null : Buffer.from(kept);
    };
    try {
      const out = pass(first);
      if (out !== null) yield out;
      for (;;) {
        waiting = true;
        stall.refresh();
        let next: IteratorResult<Uint8Array>;
        try {
          next = await iterator.next();
        } catch (err) {
          if (stalled) throw this.stallError(backendName);
          throw err;
        } finally {
          waiting = false;
        }
        if (next.done) {
          if (stalled) throw this.stallError(backendName);
          break;
        }
        const kept = pass(next.value);
        if (kept !== null) yield kept;
      }
      if (filter !== null) {
        const rest = filter.end();
        if (rest !== '') yield Buffer.from(rest);
      }
    } finally {
      stall.cancel();
      if (filter !== null && filter.dropped > 0) this.noteDropped(filter.dropped, backendName);
    }
  }

  private stallError(backendName: string): ProxyError {
    return new ProxyError(504, `Backend '${backendName}' went silent mid-stream`, {
      code: 'upstream_stalled',
    });
  }

  private noteDropped(count: number, backendName: string): void {
    this.deps.failover.stats.invalidEventsDropped += count;
    if (this.loggedDrop) return;
    this.loggedDrop = true;
    const warn = this.deps.log.warn ?? this.deps.log.error;
    warn.call(
      this.deps.log,
      { request_id: this.ex.id, backend: backendName, dropped: count },
      'backend stream events that are not JSON were dropped',
    );
  }
}
