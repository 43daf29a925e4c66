import { ProxyError } from '../proxy-error.js';
import type { BackendRegistry } from '../backends/registry.js';
import type { CaptureRecorder } from '../capture/events.js';
import type { Redactor } from '../redaction/redactor.js';
import type { Redact } from '../redaction/excerpt.js';
import { AttemptRun, type AttemptDeps, type FailoverDeps } from './attempts.js';
import { dispatch } from './dispatch.js';
import { droppedEventsLog } from './event-filter.js';
import type { ChatExchange } from './exchange.js';
import type { Responder } from './respond.js';
import type { FrontEnd } from './front-ends.js';
import type { PolicyTable } from '../teams/policies.js';
import { checkModelPolicy } from './policy.js';
import type { RequestLimits } from './limits.js';
import { logDropped, prepareRequest } from './prepare.js';
import { RequestCapture } from './record.js';
import { replyLocally } from './local-reply.js';
import { loopStep, loopStepOnTurns } from './loop-step.js';
import { mayReferenceItems, resolveItemReferences } from './item-references.js';
import { shellJudge } from './guard-step.js';
import { relayAnswer } from './relay.js';
import { clientAsksStreamUsage } from './usage-strip.js';
import {
  continuedInput,
  continuesResponse,
  findPrevious,
  localAnswerCodec,
  responsesTurn,
  type PreviousResponse,
  type ResponsesTurn,
} from './responses.js';
import { readTarget, requireObjectBody, resolveRoute } from './route.js';
import type { SessionStep } from './session.js';
import type { ShellGuard } from '../sessions/shell-guard.js';
import type { StoredResponses } from '../state/responses.js';
import type { SignatureSealer } from '../protocols/signatures.js';
import { processSignatureSealer, type SignatureDeps } from './signatures.js';
import { targetsOf, type Spend, type UsageMeter } from './spend.js';

/** What the chat pipeline needs from the running proxy. */
export interface ChatPipelineDeps {
  registry: BackendRegistry;
  /** The current redactor (rebuilt when keys rotate). */
  redactor: () => Redactor;
  /** Replace configured secrets found in prompts before forwarding (README, Key hygiene). */
  scrubPrompts: boolean;
  /** Null when wire capture is off: then the pipeline does no capture work at all. */
  capture: CaptureRecorder | null;
  /** Sessions and in-chat commands; null when commands are off (`--disable-commands`). */
  sessions: SessionStep | null;
  /** The dangerous-command guard; null when guardrails are off. */
  shellGuard: ShellGuard | null;
  /** Repeats of one tool call (or output) that trigger the loop guard; 0 when it is off. */
  loopRepeats: number;
  /**
   * Where failures that are the proxy's own fault are logged (error), guard stops (warn) and the fields
   * dropped with notice (debug).
   */
  log: {
    error(obj: object, msg: string): void;
    warn?(obj: object, msg: string): void;
    debug?(obj: object, msg: string): void;
  };
  /** Stored Responses-API responses (`store`, `previous_response_id`); absent: nothing is stored. */
  responses?: StoredResponses | null | undefined;
  /**
   * How a failure becomes the client's answer — the envelope while nothing is sent, else the connection
   * closed — and which failures are logged: the server's policy (src/server/failures.ts), handed in.
   */
  answerFailure(to: Responder, err: Error): void;
  /** Routes, `a|b` chains and their attempts (README, Routes and failover); absent: one attempt each. */
  failover?: FailoverDeps;
  /** The teams policies in use now (rebuilt when keys reload); see src/teams/policies.ts. */
  policies: () => PolicyTable;
  /**
   * Seals reasoning signatures that cross families (README, "Reasoning between families"); absent: a
   * per-process random key.
   */
  signatures?: SignatureSealer | undefined;
  /** Per-key rpm and max_concurrent (limits.ts); absent: not enforced. */
  limits?: RequestLimits | undefined;
  /** Usage, `tpm` and budgets (src/pipeline/spend.ts); absent: usage is not counted. */
  spend?: Spend | null | undefined;
}

/**
 * The chat pipeline, one request from the front-end's body to the client's answer, in named steps (see
 * docs/architecture.md): resolve the route → check the key's policy and take its limits (limits.ts) → record
 * (capture, when on) → prepare the request → dispatch it to the backend → relay the answer. It writes its
 * answer, errors included, straight to the response. Sessions and in-chat commands come first: a command-only
 * message is answered by the proxy, and a session's settings change the request before it is routed. A
 * request with a route, a chain or `resilience:` configured is then tried by failover instead (attempts.ts);
 * any other takes the one attempt below, as before routes existed.
 */
export function createChatPipeline(
  frontEnd: FrontEnd,
  deps: ChatPipelineDeps,
): (ex: ChatExchange) => Promise<void> {
  const from = frontEnd.protocol;
  const { sessions, loopRepeats, shellGuard } = deps;
  const failover = deps.failover;
  const limits = deps.limits;
  const responsesDeps = { store: deps.responses ?? null, log: deps.log };
  const sealer = deps.signatures ?? processSignatureSealer();
  const signatures: SignatureDeps = { sealer, log: deps.log };
  // Stream events that are not JSON, dropped on the way: counted with failover's (one metric).
  const droppedEvents = failover === undefined ? undefined : droppedEventsLog(failover.stats, deps.log);
  const spend = deps.spend ?? null;
  /** The current redactor's (keys rotate): for the client text the proxy's own answers quote. */
  const redact: Redact = (text) => deps.redactor().redact(text);
  /**
   * The proxy's own answer (a command's reply, the loop guard's steering), in the client's protocol; a
   * Responses answer is kept as any other (`previous`: the response the request continues;
   * `withoutCommands`: see `localAnswerCodec`). Redacted here, where every such answer passes: it quotes
   * what the client wrote (a model name, a route, a bad command), which may be a secret.
   */
  const answerLocally = (
    ex: ChatExchange,
    body: Record<string, unknown>,
    text: string,
    previous?: PreviousResponse,
    withoutCommands?: Record<string, unknown>,
  ) => {
    const target = frontEnd.target(body, ex.url);
    const codec =
      from === 'responses' ? localAnswerCodec(ex, body, previous, responsesDeps, withoutCommands) : undefined;
    const said = redact(text);
    replyLocally(ex, from, said, target.model, target.stream, clientAsksStreamUsage(from, body), codec);
  };
  /**
   * The loop guard for a Responses request continuing a response the proxy kept: on the whole conversation
   * the backend will see, once the stored one is found (its `input` alone is only the newest turns); for a
   * response a Responses backend holds, on the `input` sent, as for any other request. True when answered.
   */
  const guardContinued = (ex: ChatExchange, body: Record<string, unknown>, previous: PreviousResponse) => {
    const turns = continuedInput(previous, body);
    const steering =
      turns === undefined
        ? loopStep(from, ex, loopRepeats, redact)
        : loopStepOnTurns(from, turns, loopRepeats, redact);
    if (steering === undefined) return false;
    answerLocally(ex, body, steering, previous);
    return true;
  };
  return async function runChat(ex) {
    let meter: UsageMeter | undefined;
    try {
      // References to items the proxy made are replaced by the items, for every step after this one.
      const kept = responsesDeps.store;
      if (from === 'responses' && kept !== null && mayReferenceItems(ex))
        ex = await resolveItemReferences(ex, kept);
      // A Responses request that continues a stored response is guarded once that is found (below).
      const guardLater = loopRepeats > 0 && from === 'responses' && continuesResponse(requireObjectBody(ex));
      if (loopRepeats > 0 && !guardLater) {
        const steering = loopStep(from, ex, loopRepeats, redact);
        if (steering !== undefined) {
          answerLocally(ex, requireObjectBody(ex), steering);
          return;
        }
      }
      let model: string | undefined;
      if (sessions !== null && sessions.applies(ex) && deps.policies().allows(ex.authKeyName, 'commands')) {
        const body = requireObjectBody(ex);
        const outcome = await sessions.run(ex, from, body);
        if (outcome.kind === 'reply') {
          // A Responses reply is kept: with the conversation it continues, when it names one.
          const finding = from === 'responses' ? findPrevious(ex, body, responsesDeps.store) : undefined;
          const previous = finding === undefined ? undefined : await finding;
          const without = from === 'responses' ? outcome.withoutCommands() : undefined;
          answerLocally(ex, body, outcome.text, previous, without);
          return;
        }
        // A changed body is no longer the bytes received: those must not be forwarded.
        if (outcome.body !== undefined)
          ex = { ...ex, json: undefined, body: outcome.body, rawBody: undefined, rawBytes: undefined };
        model = outcome.model;
        ex.state.reasoning = outcome.reasoning;
      }
      let read = readTarget(frontEnd, ex);
      if (model !== undefined) read = { ...read, target: { ...read.target, model } };
      const plan = failover === undefined ? null : failover.routes.plan(read.target.model);
      // `|` alone (or `a||`) is a chain without an element: the client's mistake, not a backend's failure.
      if (plan !== null && plan.elements.length === 0)
        throw new ProxyError(400, `Model '${read.target.model}' names no backend model in its chain`, {
          code: 'invalid_request',
          param: 'model',
        });
      // The key's allow-list judges the models the request names alike on both paths below: a route, each
      // element of a chain, or the one model, each as the backend it goes to.
      const policies = deps.policies();
      if (policies.hasModelRules) {
        const named = plan ?? { name: null, elements: [read.target.model] };
        checkModelPolicy(policies, ex, named, deps.registry, deps.redactor());
      }
      // Answers to a request that offers a shell tool are looked at (README, "Agent guardrails").
      const judge = policies.allows(ex.authKeyName, 'guardrails')
        ? shellJudge(shellGuard, ex, from, read.clientBody, deps.log)
        : undefined;
      if (plan !== null) {
        // The conversation continued is found once, for every element of the chain.
        const finding =
          from === 'responses' ? findPrevious(ex, read.clientBody, responsesDeps.store) : undefined;
        const previous = finding === undefined ? undefined : await finding;
        if (guardLater && previous !== undefined && guardContinued(ex, read.clientBody, previous)) return;
        // One request, one unit of its key's limits, however many attempts failover makes.
        // With the spend step, its one acquire takes them (spend.ts): one Redis round trip.
        if (spend === null && policies.hasCounters && limits !== undefined) await limits.admit(ex, policies);
        if (spend !== null) {
          const begun = spend.begin(ex, from, read.clientBody, targetsOf(deps.registry, plan.elements));
          meter = begun instanceof Promise ? await begun : begun;
        }
        // Every element's answer is judged as a single attempt's is.
        await new AttemptRun(
          ex,
          frontEnd,
          read,
          plan,
          deps as AttemptDeps,
          () => judge,
          meter,
          previous,
        ).run();
        return;
      }
      let route = resolveRoute(frontEnd, ex, deps.registry, read);
      const redactor = deps.redactor();
      // The Responses API's state: the stored conversation (no promise made without one), guarded whole.
      const finding =
        from === 'responses' ? findPrevious(ex, route.clientBody, responsesDeps.store) : undefined;
      const previous = finding === undefined ? undefined : await finding;
      if (guardLater && previous !== undefined && guardContinued(ex, route.clientBody, previous)) return;
      if (spend === null && policies.hasCounters && limits !== undefined) await limits.admit(ex, policies);
      // How this answer is kept, the stored conversation folded in on translation.
      let turn: Pick<ResponsesTurn, 'codecs' | 'watch'> | undefined;
      if (from === 'responses') {
        const begun = responsesTurn(ex, route, previous, responsesDeps);
        ex = begun.ex;
        route = begun.route;
        turn = { codecs: begun.codecs, watch: begun.watch };
      }
      if (spend !== null) {
        const begun = spend.begin(ex, from, route.clientBody, [route]);
        meter = begun instanceof Promise ? await begun : begun;
      }
      const { backend } = route;
      const capture = deps.capture
        ? new RequestCapture(deps.capture, ex, backend.name, route.model, backend.credentialName)
        : null;
      const request = prepareRequest(ex, route, from, redactor, deps.scrubPrompts, capture, signatures);
      logDropped(deps.log, ex, route, request);
      const dispatched = await dispatch(ex, route, request, from);
      const stripUsage = request.stripUsage;
      await relayAnswer({
        ex,
        route,
        dispatched,
        from,
        redactor,
        capture,
        judge,
        sealer,
        dropped: droppedEvents,
        meter,
        stripUsage,
        ...turn,
      });
    } catch (err) {
      // Nothing was answered (a refusal, a backend that failed): nothing is charged.
      meter?.done(null, null, 'failed');
      deps.answerFailure(ex, err as Error);
    }
  };
}
