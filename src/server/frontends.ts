import type { FastifyRequest } from 'fastify';
import { ProxyError } from '../errors.js';
import type { Protocol } from '../protocols/types.js';

/** Where a front-end finds the model and the stream flag: in the body, or (Gemini) in the path. */
export interface ChatTarget {
  model: string;
  stream: boolean;
}

export interface FrontEnd {
  protocol: Protocol;
  target(body: Record<string, unknown>, request: FastifyRequest): ChatTarget;
}

function bodyTarget(body: Record<string, unknown>): ChatTarget {
  if (typeof body.model !== 'string' || body.model.length === 0) {
    throw new ProxyError(400, 'Missing required parameter: model', {
      code: 'missing_required_parameter',
      param: 'model',
    });
  }
  return { model: body.model, stream: body.stream === true };
}

const GEMINI_ACTIONS: Record<string, boolean> = { generateContent: false, streamGenerateContent: true };

/**
 * Gemini puts model and action in the path: `/v1beta/models/{model}:{action}`. A model may itself hold a
 * `:` (`openai:gpt-4o`), so the action is what follows the last one.
 */
export function geminiTarget(request: FastifyRequest): ChatTarget {
  const tail = (request.params as { '*'?: string })['*'] ?? '';
  const cut = tail.lastIndexOf(':');
  const model = cut > 0 ? tail.slice(0, cut) : '';
  const stream = GEMINI_ACTIONS[cut > 0 ? tail.slice(cut + 1) : ''];
  if (!model || stream === undefined) {
    throw new ProxyError(404, 'Expected /v1beta/models/{model}:generateContent or :streamGenerateContent', {
      code: 'not_found',
    });
  }
  if (stream && (request.query as Record<string, unknown>).alt !== 'sse') {
    throw new ProxyError(400, 'streamGenerateContent is served as server-sent events: add ?alt=sse', {
      code: 'invalid_request',
      param: 'alt',
    });
  }
  return { model, stream };
}

export const FRONT_ENDS: Record<Protocol, FrontEnd> = {
  openai: { protocol: 'openai', target: bodyTarget },
  anthropic: { protocol: 'anthropic', target: bodyTarget },
  gemini: { protocol: 'gemini', target: (_body, request) => geminiTarget(request) },
};
