import type { BackendRegistry } from '../backends/registry.js';
import type { CaptureRecorder } from '../capture/events.js';
import type { Redactor } from '../redaction/redactor.js';
import { answerFailure } from '../server/failures.js';
import { dispatch } from './dispatch.js';
import type { ChatExchange } from './exchange.js';
import type { FrontEnd } from './front-ends.js';
import type { PolicyTable } from '../teams/policies.js';
import { checkPolicy } from './policy.js';
import { prepareRequest } from './prepare.js';
import { RequestCapture } from './record.js';
import { relayAnswer } from './relay.js';
import { resolveRoute } from './route.js';

/** What the chat pipeline needs from the running proxy. */
export interface ChatPipelineDeps {
  registry: BackendRegistry;
  /** The current redactor (rebuilt when keys rotate). */
  redactor: () => Redactor;
  /** Replace configured secrets found in prompts before forwarding (README, Key hygiene). */
  scrubPrompts: boolean;
  /** Null when wire capture is off: then the pipeline does no capture work at all. */
  capture: CaptureRecorder | null;
  /** The teams policies in use now (rebuilt when keys reload); see src/teams/policies.ts. */
  policies: () => PolicyTable;
  /** Where failures that are the proxy's own fault are logged. */
  log: { error(obj: object, msg: string): void };
}

/**
 * The chat pipeline, one request from the front-end's body to the client's answer, in named steps (see
 * docs/architecture.md): resolve the route → check the key's policy → record (capture, when on) → prepare
 * the request → dispatch it to the backend → relay the answer. It writes its answer, errors included, straight to the response.
 * Failover attempts and limits slot in around `dispatch` and `relayAnswer`.
 */
export function createChatPipeline(
  frontEnd: FrontEnd,
  deps: ChatPipelineDeps,
): (ex: ChatExchange) => Promise<void> {
  const from = frontEnd.protocol;
  return async function runChat(ex) {
    try {
      const route = resolveRoute(frontEnd, ex, deps.registry);
      const redactor = deps.redactor();
      checkPolicy(deps.policies(), ex, route, redactor);
      const { backend } = route;
      const capture = deps.capture
        ? new RequestCapture(deps.capture, ex, backend.name, route.model, backend.credentialName)
        : null;
      const request = prepareRequest(ex, route, from, redactor, deps.scrubPrompts, capture);
      const dispatched = await dispatch(ex, route, request, from);
      await relayAnswer({ ex, route, dispatched, from, redactor, capture });
    } catch (err) {
      answerFailure(ex, err as Error, deps.log);
    }
  };
}
