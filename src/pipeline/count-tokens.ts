import { performance } from 'node:perf_hooks';
import type { BackendCall, UpstreamResponse } from '../backends/types.js';
import { ProxyError } from '../proxy-error.js';
import type { Protocol } from '../protocols/types.js';
import { writeJson } from './respond.js';
import { estimateInputTokens } from '../tokens/estimate.js';
import type { ChatPipelineDeps } from './chat.js';
import { abortOnClientGone, dispatched, type Dispatched } from './dispatch.js';
import type { ChatExchange } from './exchange.js';
import { FRONT_ENDS, type FrontEnd } from './front-ends.js';
import { checkModelPolicy } from './policy.js';
import { prepareRequest, type PreparedRequest } from './prepare.js';
import { RequestCapture } from './record.js';
import { relayAnswer } from './relay.js';
import { resolveRoute, type ChatRoute } from './route.js';

/**
 * Token counting (README, Token counting): Anthropic's `POST /anthropic/v1/messages/count_tokens` and Gemini's
 * `POST /v1beta/models/{model}:countTokens`. Served on the chat lane like chat — the same authentication,
 * brute-force guard, body limits, access line, prompt scrubbing and capture — and routed the same way: to a
 * backend of the client's protocol the request passes through to the provider's own count; to any other, the
 * proxy answers with its own estimate (src/tokens/), in the client's protocol's shape.
 */

const GEMINI_PREFIX = '/v1beta/models/';
const GEMINI_COUNT = ':countTokens';

/** `/v1beta/models/{model}:countTokens` → the model (percent-decoded); a 404 when there is none. */
export function geminiCountModel(url: string): string {
  const queryStart = url.indexOf('?');
  const path = queryStart < 0 ? url : url.slice(0, queryStart);
  let model = '';
  if (path.startsWith(GEMINI_PREFIX) && path.endsWith(GEMINI_COUNT)) {
    try {
      model = decodeURIComponent(path.slice(GEMINI_PREFIX.length, -GEMINI_COUNT.length));
    } catch {
      model = '';
    }
  }
  if (model === '') {
    throw new ProxyError(404, 'Expected /v1beta/models/{model}:countTokens', { code: 'not_found' });
  }
  return model;
}

/**
 * A count of nothing is a mistake, not 0 tokens: the request must hold what is counted (Anthropic's
 * `messages`, Gemini's `contents` or `generateContentRequest`), as the providers' own counts require.
 */
function requireCounted(present: boolean, param: string): void {
  if (!present) {
    throw new ProxyError(400, `Missing required parameter: ${param}`, {
      code: 'missing_required_parameter',
      param,
    });
  }
}

/** Where each protocol's count request names its model; a count is never streamed. */
const COUNT_FRONT_ENDS: Partial<Record<Protocol, FrontEnd>> = {
  anthropic: {
    protocol: 'anthropic',
    target: (body, url) => {
      const { model } = FRONT_ENDS.anthropic.target(body, url);
      requireCounted(Array.isArray(body.messages), 'messages');
      return { model, stream: false };
    },
  },
  gemini: {
    protocol: 'gemini',
    target: (body, url) => {
      const model = geminiCountModel(url);
      const nested = body.generateContentRequest;
      requireCounted(
        Array.isArray(body.contents) || (typeof nested === 'object' && nested !== null),
        'contents',
      );
      return { model, stream: false };
    },
  },
};

/** Each protocol's answer to a token count. */
const COUNT_ANSWERS: Partial<Record<Protocol, (tokens: number) => Record<string, number>>> = {
  anthropic: (tokens) => ({ input_tokens: tokens }),
  gemini: (tokens) => ({ totalTokens: tokens }),
};

/** One call to the provider's count, aborted when the client leaves, its wait counted as the backend's. */
async function dispatchCount(
  ex: ChatExchange,
  route: ChatRoute,
  request: PreparedRequest,
  count: (call: BackendCall) => Promise<UpstreamResponse>,
): Promise<Dispatched> {
  const { state } = ex;
  const signal = abortOnClientGone(ex.res);
  const sentAt = performance.now();
  const upstream = await count({
    model: route.model,
    stream: false,
    body: request.body,
    rawBody: request.rawBody,
    signal,
    requestId: ex.id,
    headers: request.headers,
  });
  state.backendMs += performance.now() - sentAt;
  return dispatched(upstream, signal, state, route.backend.name);
}

/** The count pipeline of one protocol (one that has a token-count endpoint), or null. */
export function createCountTokensPipeline(
  protocol: Protocol,
  deps: ChatPipelineDeps,
): ((ex: ChatExchange) => Promise<void>) | null {
  const frontEnd = COUNT_FRONT_ENDS[protocol];
  const answerOf = COUNT_ANSWERS[protocol];
  if (frontEnd === undefined || answerOf === undefined) return null;
  return async function runCount(ex) {
    try {
      const route = resolveRoute(frontEnd, ex, deps.registry);
      // A model outside the key's allow-list is 404 here too: neither counted nor sent (README, Teams).
      const named = { name: null, elements: [route.requested] };
      checkModelPolicy(deps.policies(), ex, named, deps.registry, deps.redactor());
      const { backend } = route;
      const capture = deps.capture
        ? new RequestCapture(deps.capture, ex, backend.name, route.model, backend.credentialName)
        : null;
      const redactor = deps.redactor();
      if (backend.protocol === protocol && backend.countTokens !== undefined) {
        const request = prepareRequest(ex, route, protocol, redactor, deps.scrubPrompts, capture);
        const dispatched = await dispatchCount(ex, route, request, (call) => backend.countTokens!(call));
        await relayAnswer({ ex, route, dispatched, from: protocol, redactor, capture });
        return;
      }
      capture?.record('inbound_request', {
        headers: ex.headers,
        payload: route.clientBody,
        payloadJson: ex.rawBytes ?? ex.rawBody,
        metadata: { method: ex.method, url: ex.url, protocol },
      });
      const answer = answerOf(await estimateInputTokens(route.clientBody, backend.protocol));
      capture?.record('outbound_response', {
        payload: answer,
        metadata: { status: 200, estimated_for: backend.protocol },
      });
      writeJson(ex, 200, answer, { 'x-proxy-token-count': 'estimate' });
    } catch (err) {
      deps.answerFailure(ex, err as Error);
    }
  };
}
