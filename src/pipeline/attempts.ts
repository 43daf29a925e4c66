import { Cancellation } from '../backends/cancel.js';
import type { BackendRegistry } from '../backends/registry.js';
import type { UpstreamResponse } from '../backends/types.js';
import type { CaptureRecorder } from '../capture/events.js';
import type { ProxyConfig } from '../config/schema.js';
import { ProxyError } from '../proxy-error.js';
import type { ToolJudge } from '../protocols/tool-call-guard.js';
import type { Protocol } from '../protocols/types.js';
import type { Redactor } from '../redaction/redactor.js';
import { backoffMs, retryAfterSeconds } from '../routing/backoff.js';
import { MemoryBreakerStore, type BreakerStore } from '../state/breakers.js';
import { PrefillTable } from '../routing/prefill.js';
import { systemClock, type Clock } from '../routing/clock.js';
import { countsForBreaker, failureAction, type AttemptFailure } from '../routing/policy.js';
import { RouteTable, type AttemptPlan } from '../routing/routes.js';
import type { AttemptSettings } from '../routing/settings.js';
import type { AttemptRecord } from './state.js';
import { dispatch, type Dispatched } from './dispatch.js';
import { droppedEventsLog, type DroppedEvents } from './event-filter.js';
import { PrimedStream, type TakeableResponse } from './primed-stream.js';
import { StreamOpening, type Opening } from './stream-opening.js';
import type { ErrorInfo } from '../protocols/error-envelopes.js';
import type { ChatExchange } from './exchange.js';
import type { FrontEnd } from './front-ends.js';
import { logDropped, prepareRequest } from './prepare.js';
import { RequestCapture } from './record.js';
import { isJsonObject, meteredContinuation, relayAnswer, streamOut } from './relay.js';
import { responsesTurn, type PreviousResponse, type ResponsesTurn } from './responses.js';
import { continuable, prefilledBody, StreamText, writeContinuation } from './continuation.js';
import { ResponsesOutline } from '../protocols/responses/outline.js';
import { codecs } from '../protocols/registry.js';
import type { UsageMeter } from './spend.js';
import type { ChatRoute, ClientTarget } from './route.js';
import type { StoredResponses } from '../state/responses.js';
import { processSignatureSealer } from './signatures.js';
import { guardErrorEvents } from '../redaction/upstream-errors.js';
import type { SignatureSealer } from '../protocols/signatures.js';

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

/** Failover for one proxy: its routes, its breakers (the state store's, or memory) and the real clock. */
export function createFailover(
  config: ProxyConfig,
  breakers: BreakerStore = new MemoryBreakerStore(),
  clock: Clock = systemClock,
): FailoverDeps {
  return {
    routes: new RouteTable(config.routes, config.resilience, config.server.timeout_seconds * 1000),
    prefill: new PrefillTable(config.backends),
    breakers,
    clock,
    stats: new FailoverStats(),
  };
}

/** What failover needs besides the chat pipeline's own dependencies. */
export interface FailoverDeps {
  readonly routes: RouteTable;
  /** Which backends' models take an assistant prefill (continue_streams). */
  readonly prefill: PrefillTable;
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
  readonly log: {
    warn?(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
    debug?(obj: object, msg: string): void;
  };
  readonly failover: FailoverDeps;
  /** Stored Responses-API responses; absent or null: nothing is stored. */
  readonly responses?: StoredResponses | null | undefined;
  /** Seals reasoning signatures that cross families (see chat.ts). */
  readonly signatures?: SignatureSealer | undefined;
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

function isTakeable(upstream: UpstreamResponse): upstream is TakeableResponse {
  return upstream.take !== undefined;
}

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
  /** Attempts made so far, and the index of the element being tried. */
  private tried = 0;
  private current = 0;
  /** The client's body as the element being tried gets it (a Responses turn's, its conversation folded in). */
  private body: Record<string, unknown>;

  constructor(
    private readonly ex: ChatExchange,
    frontEnd: FrontEnd,
    private readonly read: ClientTarget,
    private readonly plan: AttemptPlan,
    private readonly deps: AttemptDeps,
    /** The dangerous-command guard's judge for an answer in this protocol, when the request needs one. */
    private readonly judgeFor: (protocol: Protocol) => ToolJudge | undefined = () => undefined,
    /** Told the committed answer's usage (src/pipeline/spend.ts). */
    private readonly meter?: UsageMeter,
    /** The stored response a Responses request continues (`findPrevious`, once for every element). */
    private readonly previous?: PreviousResponse,
  ) {
    this.settings = plan.settings;
    this.clock = deps.failover.clock;
    this.startedAt = this.clock.now();
    this.from = frontEnd.protocol;
    ex.state.attempts = this.records;
    this.body = read.clientBody;
  }

  async run(): Promise<void> {
    const { settings, clock, deps } = this;
    const { breakers } = deps.failover;
    const limits = { failures: settings.breakerFailures, cooldownMs: settings.breakerCooldownMs };
    const deadlineAt = this.startedAt + settings.deadlineMs;
    let last: Outcome | null = null;
    let unresolved: Error | null = null;
    /** An element was passed because its circuit breaker is open. */
    let skipped = false;
    // The Responses API's state: the conversation continued (found by the caller), for every element.
    const responses = this.from === 'responses' ? { store: deps.responses ?? null, log: deps.log } : null;
    const { previous } = this;
    chain: for (const [index, element] of this.plan.elements.entries()) {
      this.current = index;
      let route: ChatRoute;
      let turn: ResponsesTurn | undefined;
      try {
        route = this.routeTo(element);
        // A response a Responses backend holds can be continued only there: the other elements are passed.
        if (responses !== null) {
          turn = responsesTurn(this.ex, route, previous, responses);
          route = turn.route;
        }
        this.body = route.clientBody;
      } catch (err) {
        // An element whose backend is unknown, has no key or cannot continue the conversation: the others
        // may still answer.
        unresolved = err as Error;
        continue;
      }
      const key = `${route.backend.name}:${route.model}`;
      for (let retry = 0; retry <= settings.retries; retry++) {
        if (this.tried >= settings.maxAttempts || clock.now() >= deadlineAt) break chain;
        const admitted = breakers.admit(key, limits, clock.now());
        if (!(admitted instanceof Promise ? await admitted : admitted)) {
          this.note(route, 0, 'skipped', 0);
          skipped = true;
          continue chain;
        }
        this.tried += 1;
        const began = clock.now();
        const outcome = await this.attempt(route, deadlineAt, turn);
        const ms = clock.now() - began;
        if (outcome.ok) {
          this.note(route, 200, 'ok', ms, false, key);
          // The memory store answers at once: no promise to wait on (one tick less per request).
          const closed = breakers.succeeded(key);
          if (closed instanceof Promise) await closed;
          await outcome.relay();
          return;
        }
        if (this.ex.res.destroyed)
          throw new ProxyError(499, 'Client closed the request', { code: 'client_closed' });
        last = outcome;
        const opened = countsForBreaker(outcome.failure) && (await breakers.failed(key, limits, clock.now()));
        const action = failureAction(outcome.failure);
        this.note(route, outcome.status, action, ms);
        if (action === 'final') break chain;
        outcome.record(action);
        if (action === 'next') continue chain;
        // No retry left, or none to wait for: the breaker this failure opened would skip the element.
        if (retry === settings.retries || opened) continue chain;
        let wait = backoffMs(retry, settings, deps.failover.random);
        if (outcome.retryAfterS !== null) {
          // A wait longer than allowed is not waited out here: the next element, or the 429 for the client.
          if (outcome.retryAfterS > settings.maxRetryAfterS) continue chain;
          wait = outcome.retryAfterS * settings.retryAfterMsPerS;
        }
        // Counted from the failure, not the send: the gap holds as the provider sees the two requests arrive.
        wait = Math.max(wait, settings.minGapMs);
        // A wait past the deadline is not waited: the next element, tried at once, may still answer in time.
        if (clock.now() + wait >= deadlineAt) continue chain;
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
    const name = this.plan.name ?? this.plan.elements.join('|');
    if (skipped) {
      // Every element passed for its open breaker: one probe goes through after the cooldown, at the latest.
      const retryAfter = Math.max(1, Math.ceil(settings.breakerCooldownMs / 1000));
      throw new ProxyError(
        503,
        `No backend of '${name}' could be tried: its circuit breakers are open after repeated failures ` +
          `(one request goes through to try again within ${retryAfter}s)`,
        { code: 'no_backend_available', retryAfter },
      );
    }
    throw new ProxyError(503, `No backend of '${name}' could be tried`, { code: 'no_backend_available' });
  }

  private routeTo(element: string, chatDoor = false): ChatRoute {
    const resolved = this.deps.registry.resolve(element);
    return {
      clientBody: this.read.clientBody,
      requested: this.read.target.model,
      // As resolveRoute: a backend that speaks the client's protocol natively gets the request as it is.
      backend: chatDoor ? resolved.backend : (resolved.backend.speaking?.(this.from) ?? resolved.backend),
      model: resolved.model,
      stream: this.read.target.stream,
    };
  }

  /**
   * One attempt recorded. The request's backend and model (the access line's) follow the attempts until
   * one commits; after, only an element that wrote on (`continued`) changes them: the last that wrote.
   */
  private note(
    route: ChatRoute,
    status: number,
    outcome: string,
    ms: number,
    after = false,
    element = `${route.backend.name}:${route.model}`,
  ): void {
    const { state } = this.ex;
    if (!after || outcome === 'continued') {
      state.backend = route.backend.name;
      state.model = route.model;
    }
    this.records.push({ element, status, outcome, ms });
    this.deps.failover.stats.count(outcome);
  }

  /** Every element that wrote to the answer, in order (the capture's `answered_by`). */
  private answeredBy(): string[] {
    return this.records.filter((r) => r.outcome === 'ok' || r.outcome === 'continued').map((r) => r.element);
  }

  /**
   * One call to one element, up to the point where it commits or fails; a Responses request's `turn` gives
   * the body for this element and how its answer is kept.
   */
  private async attempt(route: ChatRoute, deadlineAt: number, turn?: ResponsesTurn): Promise<Outcome> {
    const { deps, settings, clock, from } = this;
    const ex = turn?.ex ?? this.ex;
    const kept = { codecs: turn?.codecs, watch: turn?.watch };
    const redactor = deps.redactor();
    const capture = deps.capture
      ? new RequestCapture(deps.capture, ex, route.backend.name, route.model, route.backend.credentialName)
      : null;
    const sealer = deps.signatures ?? processSignatureSealer();
    const request = prepareRequest(
      ex,
      route,
      from,
      redactor,
      deps.scrubPrompts,
      capture,
      { sealer, log: deps.log },
      // The client's request, in the capture once: with the first attempt.
      this.tried === 1,
    );
    logDropped(deps.log, ex, route, request);
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
    const transportFailure = (err: unknown): Outcome => this.transportFailure(route, silent, err, failed);
    // A same-protocol stream is taken `direct` (primeDirect): after its commit point the relay passes it
    // on as it passes a stream without failover; so is a translated one unless it may be continued
    // (`continue_streams`: the translator continues it, reading iterables).
    // A judged answer (its tool calls read) is taken direct too, the relay's tap judging it as it goes,
    // unless it may be continued: a continuation reads it as iterables.
    const judge = this.judgeFor(route.backend.protocol);
    const direct =
      route.stream &&
      (judge === undefined
        ? route.backend.protocol === from || !this.settings.continueStreams
        : !this.settings.continueStreams);
    let dispatched: Dispatched;
    try {
      dispatched = await dispatch(ex, route, request, from, { signal, direct });
    } catch (err) {
      return transportFailure(err);
    }
    const { upstream } = dispatched;
    const relayHeld = (bytes: Buffer) => () =>
      relayAnswer({
        ex,
        route,
        dispatched: heldAnswer(dispatched, bytes),
        from,
        redactor,
        capture,
        sealer,
        judge,
        meter: this.meter,
        ...kept,
      });
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
      if (isTakeable(upstream)) {
        return this.primeDirect(route, dispatched, upstream, firstContent, () => silent, failed, {
          redactor,
          capture,
          ex,
          ...kept,
          judge,
          stripUsage: request.stripUsage === true,
        });
      }
      return this.primeStream(route, dispatched, firstContent, () => silent, failed, transportFailure, {
        redactor,
        capture,
        signal,
        ex,
        ...kept,
        judge,
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
   * A stream taken `direct` (same protocol; or translated or judged, without `continue_streams`) commits
   * with its first bytes, as primeStream's, but is held by a PrimedStream: after the commit point the relay
   * takes it `direct` — passed on (its events checked for JSON, relay.ts, event-filter.ts) or translated
   * (translateToClient), its tool calls judged by the relay's tap when a shell tool was offered, as for a
   * stream without failover — watched for silence by one timer.
   */
  private async primeDirect(
    route: ChatRoute,
    dispatched: Dispatched,
    upstream: TakeableResponse,
    firstContent: { cancel(): void },
    wasSilent: () => boolean,
    failed: (f: AttemptFailure, status: number, answer: () => void) => Outcome,
    relayParts: {
      redactor: Redactor;
      capture: RequestCapture | null;
      ex: ChatExchange;
      codecs: ResponsesTurn['codecs'];
      watch: ResponsesTurn['watch'];
      judge: ToolJudge | undefined;
      stripUsage: boolean;
    },
  ): Promise<Outcome> {
    const { from } = this;
    const { ex, watch } = relayParts;
    const primed = new PrimedStream(
      upstream,
      this.clock,
      this.settings.stallMs,
      () => this.stallError(route.backend.name),
      new StreamOpening(route.backend.protocol),
    );
    const start = await primed.started;
    if (start.kind === 'failed') {
      return this.transportFailure(route, wasSilent(), start.err, failed);
    }
    if (start.kind === 'ended') return this.endedEarly(route, upstream.status, failed);
    if (start.kind === 'refused') {
      primed.dispose();
      return this.refusedInStream(start.error, failed, relayParts.redactor);
    }
    firstContent.cancel();
    // With continue_streams, what the client is told is read as it goes, for a continuation if it is cut
    // (a Responses stream by its outline, which the relay reads anyway).
    const said = this.settings.continueStreams && continuable(from) ? new StreamText(from) : null;
    const outline =
      this.settings.continueStreams && from === 'responses' ? new ResponsesOutline() : undefined;
    // A cut answer that may be continued is charged with its continuation, once (spend.ts).
    if (said !== null || outline !== undefined) this.meter?.mayContinue();
    return {
      ok: true,
      relay: () =>
        relayAnswer({
          ex,
          route,
          dispatched: { ...dispatched, upstream: primed },
          from,
          redactor: relayParts.redactor,
          capture: relayParts.capture,
          codecs: relayParts.codecs,
          sealer: this.deps.signatures,
          dropped: this.droppedEvents(),
          meter: this.meter,
          stripUsage: relayParts.stripUsage,
          judge: relayParts.judge,
          watch,
          ...(outline === undefined ? {} : { outline, cut: () => this.continueResponses(outline) }),
          ...(said === null
            ? {}
            : {
                watch: (chunk: Uint8Array | string) => {
                  watch?.(chunk);
                  said.see(chunk);
                },
                cut: () => this.continueCut(said),
              }),
        }),
    };
  }

  /**
   * A text stream cut after the commit point, continued (README, Routes and failover: `continue_streams`):
   * the next element of the chain, if it is declared to take a prefill (`backends.<name>.prefill`), is asked
   * again with the text the client has as the assistant's prefill, and its answer is written on as the rest
   * of the same stream. Resolves false — the client then gets the original failure's error event — when the
   * stream was not text only or had finished, when there is no such element or no attempt or time left, and
   * when the continuation fails before its first bytes (a prefill refused included: never the client's
   * error).
   */
  private async continueCut(said: StreamText): Promise<boolean> {
    if (!said.textOnly || said.finished) return false;
    const next = await this.openContinuation(said.text);
    if (next === null) return false;
    const { ex, from } = this;
    const out = streamOut({
      judge: this.judgeFor(next.route.backend.protocol),
      ex: next.ex,
      route: next.route,
      dispatched: next.dispatched,
      from,
      redactor: next.redactor,
      capture: next.capture,
      captureMetadata: next.captureMetadata,
      meter: this.meter,
      stripUsage: next.stripUsage,
    });
    await writeContinuation(ex.res, from, out);
    return true;
  }

  /**
   * A Responses stream passed through and cut, continued as continueCut's: the next element's answer (from
   * its chat door) is translated by an encoder that goes on with the response the client has open
   * (`ResponsesOutline.continuation`: the same message, sequence numbers going on, one
   * `response.completed` whose output holds the whole text).
   */
  private async continueResponses(outline: ResponsesOutline): Promise<boolean> {
    const text = outline.continuableText;
    if (text === null) return false;
    const next = await this.openContinuation(text);
    if (next === null) return false;
    const encoder = outline.continuation();
    const responses = { ...codecs.responses, createStreamEncoder: () => encoder };
    const out = streamOut({
      judge: this.judgeFor(next.route.backend.protocol),
      ex: next.ex,
      route: next.route,
      dispatched: next.dispatched,
      from: 'responses',
      codecs: { ...codecs, responses },
      redactor: next.redactor,
      capture: next.capture,
      captureMetadata: next.captureMetadata,
      meter: this.meter,
      stripUsage: next.stripUsage,
    });
    // The response is kept (`store`) before its end reaches the client, as a stream that was not cut.
    if (this.ex.state.storing !== undefined) await this.ex.state.storing;
    await writeContinuation(this.ex.res, 'responses', out);
    return true;
  }

  /**
   * A translated stream's continuation (translate.ts, `resume`): as continueCut's, but the next element's
   * stream is handed back in its own protocol — redacted, captured, watched for silence — for the
   * translator to write on with the encoder the client's stream already has (its message, its indexes and
   * sequence numbers going on).
   */
  private async continueTranslated(
    text: string,
  ): Promise<{ source: AsyncIterable<Uint8Array>; protocol: Protocol } | null> {
    const next = await this.openContinuation(text);
    if (next === null) return null;
    const { upstream } = next.dispatched;
    const { protocol } = next.route.backend;
    let source: AsyncIterable<Uint8Array> = guardErrorEvents(upstream.body, next.redactor);
    source = meteredContinuation(source, protocol, this.meter, next.route);
    if (next.capture) source = next.capture.tee(source, 'inbound', next.captureMetadata);
    return { source, protocol };
  }

  /**
   * The next element asked to go on from `text` (the prefill), up to its first bytes; null when it cannot
   * be (see continueCut) or fails before them.
   */
  private async openContinuation(text: string): Promise<{
    ex: ChatExchange;
    route: ChatRoute;
    dispatched: Dispatched;
    redactor: Redactor;
    capture: RequestCapture | null;
    /** The continuation's stream records name every element that wrote to the answer. */
    captureMetadata: Record<string, unknown>;
    /** The proxy asked for the usage chunk the client did not: it is taken out on the way. */
    stripUsage: boolean | undefined;
  } | null> {
    const { ex, settings, clock, deps, from } = this;
    if (text === '' || ex.res.destroyed) return null;
    const element = this.plan.elements[this.current + 1];
    const deadlineAt = this.startedAt + settings.deadlineMs;
    if (element === undefined || this.tried >= settings.maxAttempts || clock.now() >= deadlineAt) return null;
    let route: ChatRoute;
    try {
      // A Responses client's continuation goes to the element's chat door: the Responses API takes no prefill.
      route = this.routeTo(element, from === 'responses');
    } catch {
      return null;
    }
    if (!deps.failover.prefill.accepts(route.backend.name, route.model)) return null;
    const { breakers } = deps.failover;
    const key = `${route.backend.name}:${route.model}`;
    const limits = { failures: settings.breakerFailures, cooldownMs: settings.breakerCooldownMs };
    if (!(await breakers.admit(key, limits, clock.now()))) {
      this.note(route, 0, 'skipped', 0, true);
      return null;
    }
    this.tried += 1;
    const body = prefilledBody(from, this.body, text);
    const continued: ChatExchange = { ...ex, json: undefined, body, rawBody: undefined, rawBytes: undefined };
    route = { ...route, clientBody: body };
    const redactor = deps.redactor();
    const capture = deps.capture
      ? new RequestCapture(
          deps.capture,
          continued,
          route.backend.name,
          route.model,
          route.backend.credentialName,
        )
      : null;
    const request = prepareRequest(
      continued,
      route,
      from,
      redactor,
      deps.scrubPrompts,
      capture,
      // The history's wrapped signatures are opened with the configured secret, as every attempt's are.
      { sealer: deps.signatures ?? processSignatureSealer(), log: deps.log },
      false,
    );
    logDropped(deps.log, continued, route, request);
    const signal = new Cancellation();
    const onClose = () => signal.abort();
    ex.res.once('close', onClose);
    const firstContent = clock.timer(Math.min(settings.ttftMs, Math.max(0, deadlineAt - clock.now())), () =>
      signal.abort(),
    );
    const began = clock.now();
    const failed = async (status: number, retryable: boolean): Promise<null> => {
      firstContent.cancel();
      ex.res.removeListener('close', onClose);
      if (retryable) await breakers.failed(key, limits, clock.now());
      this.note(route, status, 'continue_failed', clock.now() - began, true);
      return null;
    };
    let dispatched: Dispatched;
    try {
      dispatched = await dispatch(continued, route, request, from, { signal, direct: false });
    } catch {
      return failed(0, true);
    }
    const { upstream } = dispatched;
    if (upstream.status >= 400) {
      const text = await dispatched.readWhole(ERROR_BODY_LIMIT).then(
        (bytes) => bytes.toString('utf8'),
        () => '',
      );
      capture?.record('inbound_response', {
        payload: text,
        metadata: { status: upstream.status, failover: 'continue_failed' },
      });
      return failed(
        upstream.status,
        countsForBreaker({ kind: 'status', status: upstream.status, body: text }),
      );
    }
    const iterator = upstream.body[Symbol.asyncIterator]();
    let first: IteratorResult<Uint8Array>;
    try {
      do first = await iterator.next();
      while (!first.done && first.value.length === 0);
    } catch {
      upstream.dispose();
      return failed(0, true);
    }
    if (first.done) return failed(upstream.status, true);
    firstContent.cancel();
    this.note(route, upstream.status, 'continued', clock.now() - began, true);
    // The continuation answers from here: its usage is settled with the cut answer's (spend.ts).
    this.meter?.answering(route);
    await breakers.succeeded(key);
    const rest: UpstreamResponse = {
      status: upstream.status,
      headers: upstream.headers,
      contentType: upstream.contentType,
      body: this.watched([first.value], iterator, upstream, route.backend.name),
      dispose: () => upstream.dispose(),
    };
    ex.res.once('close', () => upstream.dispose());
    return {
      ex: continued,
      route,
      dispatched: { ...dispatched, upstream: rest },
      redactor,
      capture,
      captureMetadata: { status: upstream.status, answered_by: this.answeredBy() },
      stripUsage: request.stripUsage,
    };
  }

  /** Counted on /metrics and logged once per request (README, Routes and failover). */
  private droppedEvents(): DroppedEvents {
    return droppedEventsLog(this.deps.failover.stats, this.deps.log);
  }

  private transportFailure(
    route: ChatRoute,
    silent: boolean,
    err: unknown,
    failed: (f: AttemptFailure, status: number, answer: () => void) => Outcome,
  ): Outcome {
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
  }

  /**
   * The backend failed in its stream before any answer (an error event, README, Routes and failover): a
   * failure as its HTTP status would be — retried, failed over, or the client's error with that status.
   */
  private refusedInStream(
    reported: ErrorInfo,
    failed: (f: AttemptFailure, status: number, answer: () => void) => Outcome,
    redactor: Redactor,
  ): Outcome {
    // The provider's words may echo a key it was sent: redacted, as an HTTP error's body is (relay.ts).
    const error = { ...reported, message: redactor.redact(reported.message) };
    const answer = new ProxyError(error.status, error.message, { code: error.code });
    return failed(
      { kind: 'status', status: error.status, body: JSON.stringify({ error }) },
      error.status,
      () => {
        throw answer;
      },
    );
  }

  private endedEarly(
    route: ChatRoute,
    status: number,
    failed: (f: AttemptFailure, status: number, answer: () => void) => Outcome,
  ): Outcome {
    const error = new ProxyError(502, `Backend '${route.backend.name}' ended the stream before any answer`, {
      code: 'upstream_incomplete',
    });
    return failed({ kind: 'transport' }, status, () => {
      throw error;
    });
  }

  /**
   * A stream commits with its first bytes: until they come (within the first-token timeout) it may still
   * fail over. After, its chunks go on watched for silence (the stall timeout). Translated streams take
   * this way (an embedded backend's too): the translator reads them as async iterables.
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
      ex: ChatExchange;
      codecs: ResponsesTurn['codecs'];
      watch: ResponsesTurn['watch'];
      judge: ToolJudge | undefined;
      stripUsage: boolean;
    },
  ): Promise<Outcome> {
    const { upstream } = dispatched;
    const iterator = upstream.body[Symbol.asyncIterator]();
    // Read up to the answer's first content (what the opening says): held, then relayed from the first.
    const opening = new StreamOpening(route.backend.protocol);
    const held: Uint8Array[] = [];
    let said: Opening = { kind: 'more' };
    let ended = false;
    try {
      while (said.kind === 'more') {
        const next = await iterator.next();
        if (next.done) {
          ended = true;
          said = opening.end();
          break;
        }
        if (next.value.length === 0) continue;
        held.push(next.value);
        said = opening.see(next.value);
      }
    } catch (err) {
      upstream.dispose();
      return transportFailure(wasSilent() ? null : err);
    }
    if (said.kind === 'error') {
      upstream.dispose();
      return this.refusedInStream(said.error, failed, relayParts.redactor);
    }
    if (said.kind === 'more' || held.length === 0) return this.endedEarly(route, upstream.status, failed);
    firstContent.cancel();
    const { from } = this;
    const { ex } = relayParts;
    // With continue_streams a cut answer may be continued: charged with its continuation, once.
    if (this.settings.continueStreams) this.meter?.mayContinue();
    const body = this.watched(held, ended ? null : iterator, upstream, route.backend.name);
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
          codecs: relayParts.codecs,
          watch: relayParts.watch,
          sealer: this.deps.signatures,
          judge: relayParts.judge,
          dropped: this.droppedEvents(),
          meter: this.meter,
          stripUsage: relayParts.stripUsage,
          // With continue_streams, a translated stream cut mid-way is continued by the translator itself.
          resume: this.settings.continueStreams ? (text) => this.continueTranslated(text) : undefined,
        }),
    };
  }

  /**
   * The committed stream's chunks — those held, then the rest (none when it ended already): aborted after
   * `stall_timeout_s` of silence from the backend.
   */
  private async *watched(
    held: readonly Uint8Array[],
    iterator: AsyncIterator<Uint8Array> | null,
    upstream: UpstreamResponse,
    backendName: string,
  ): AsyncGenerator<Uint8Array> {
    for (const chunk of held) yield chunk;
    if (iterator === null) return;
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
    try {
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
        yield next.value;
      }
    } finally {
      stall.cancel();
    }
  }

  private stallError(backendName: string): ProxyError {
    return new ProxyError(504, `Backend '${backendName}' went silent mid-stream`, {
      code: 'upstream_stalled',
    });
  }
}
