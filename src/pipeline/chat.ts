import type { BackendRegistry } from '../backends/registry.js';
import type { CaptureRecorder } from '../capture/events.js';
import type { Redactor } from '../redaction/redactor.js';
import { answerFailure } from '../server/failures.js';
import { dispatch } from './dispatch.js';
import type { ChatExchange } from './exchange.js';
import type { FrontEnd } from './front-ends.js';
import { prepareRequest } from './prepare.js';
import { RequestCapture } from './record.js';
import { relayAnswer } from './relay.js';
import { beginResponsesTurn, type ResponsesTurn } from './responses.js';
import { resolveRoute } from './route.js';
import type { StoredResponses } from '../state/responses.js';

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
  log: { error(obj: object, msg: string): void };
  /** Stored Responses-API responses (`store`, `previous_response_id`); absent: nothing is stored. */
  responses?: StoredResponses | null | undefined;
}

/**
 * The chat pipeline, one request from the front-end's body to the client's answer, in named steps (see
 * docs/architecture.md): resolve the route → record (capture, when on) → prepare the request → dispatch it
 * to the backend → relay the answer. It writes its answer, errors included, straight to the response.
 * Failover attempts and limits slot in around `dispatch` and `relayAnswer`.
 */
export function createChatPipeline(
  frontEnd: FrontEnd,
  deps: ChatPipelineDeps,
): (ex: ChatExchange) => Promise<void> {
  const from = frontEnd.protocol;
  const responsesDeps = { store: deps.responses ?? null, log: deps.log };
  return async function runChat(ex) {
    try {
      let route = resolveRoute(frontEnd, ex, deps.registry);
      // The Responses API's state: the stored conversation, and how this answer is kept.
      let turn: Pick<ResponsesTurn, 'codecs' | 'watch'> | undefined;
      if (from === 'responses') {
        const begun = await beginResponsesTurn(ex, route, responsesDeps);
        ex = begun.ex;
        route = begun.route;
        turn = { codecs: begun.codecs, watch: begun.watch };
      }
      const { backend } = route;
      const capture = deps.capture
        ? new RequestCapture(deps.capture, ex, backend.name, route.model, backend.credentialName)
        : null;
      const redactor = deps.redactor();
      const request = prepareRequest(ex, route, from, redactor, deps.scrubPrompts, capture);
      const dispatched = await dispatch(ex, route, request, from);
      await relayAnswer({ ex, route, dispatched, from, redactor, capture, ...turn });
    } catch (err) {
      answerFailure(ex, err as Error, deps.log);
    }
  };
}
