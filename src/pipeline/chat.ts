import type { BackendRegistry } from '../backends/registry.js';
import type { CaptureRecorder } from '../capture/events.js';
import type { Redactor } from '../redaction/redactor.js';
import { answerFailure } from '../server/failures.js';
import { AttemptRun, type AttemptDeps, type FailoverDeps } from './attempts.js';
import { dispatch } from './dispatch.js';
import type { ChatExchange } from './exchange.js';
import type { FrontEnd } from './front-ends.js';
import { prepareRequest } from './prepare.js';
import { RequestCapture } from './record.js';
import { relayAnswer } from './relay.js';
import { readTarget, resolveRoute } from './route.js';

/** What the chat pipeline needs from the running proxy. */
export interface ChatPipelineDeps {
  registry: BackendRegistry;
  /** The current redactor (rebuilt when keys rotate). */
  redactor: () => Redactor;
  /** Replace configured secrets found in prompts before forwarding (README, Key hygiene). */
  scrubPrompts: boolean;
  /** Null when wire capture is off: then the pipeline does no capture work at all. */
  capture: CaptureRecorder | null;
  /** Where failures that are the proxy's own fault are logged. */
  log: { warn?(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Routes, `a|b` chains and their attempts (README, Routes and failover); absent: one attempt each. */
  failover?: FailoverDeps;
}

/**
 * The chat pipeline, one request from the front-end's body to the client's answer, in named steps (see
 * docs/architecture.md): resolve the route → record (capture, when on) → prepare the request → dispatch it
 * to the backend → relay the answer. It writes its answer, errors included, straight to the response.
 * A request with a route, a chain or `resilience:` configured is tried by failover instead
 * (attempts.ts); any other takes the one attempt below, as before routes existed.
 */
export function createChatPipeline(
  frontEnd: FrontEnd,
  deps: ChatPipelineDeps,
): (ex: ChatExchange) => Promise<void> {
  const from = frontEnd.protocol;
  const failover = deps.failover;
  return async function runChat(ex) {
    try {
      const read = readTarget(frontEnd, ex);
      const plan = failover === undefined ? null : failover.routes.plan(read.target.model);
      if (plan !== null) {
        await new AttemptRun(ex, frontEnd, read, plan, deps as AttemptDeps).run();
        return;
      }
      const route = resolveRoute(frontEnd, ex, deps.registry, read);
      const { backend } = route;
      const capture = deps.capture
        ? new RequestCapture(deps.capture, ex, backend.name, route.model, backend.credentialName)
        : null;
      const redactor = deps.redactor();
      const request = prepareRequest(ex, route, from, redactor, deps.scrubPrompts, capture);
      const dispatched = await dispatch(ex, route, request, from);
      await relayAnswer({ ex, route, dispatched, from, redactor, capture });
    } catch (err) {
      answerFailure(ex, err as Error, deps.log);
    }
  };
}
