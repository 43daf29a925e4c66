import { ProxyError } from '../proxy-error.js';
import type { Protocol } from '../protocols/types.js';

/** Where a front-end finds the model and the stream flag: in the body, or (Gemini) in the path. */
export interface ChatTarget {
  model: string;
  stream: boolean;
}

export interface FrontEnd {
  protocol: Protocol;
  /** `url` is the request's URL as received (path and query). */
  target(body: Record<string, unknown>, url: string): ChatTarget;
}

function bodyTarget(body: Record<string, unknown>): ChatTarget {
  if (typeof body.model !== 'string' || body.model.length === 0) {
    throw new ProxyError(400, 'Missing required parameter: model', {
      code: 'missing_required_parameter',
      param: 'model',
    });
  }
  // `stream: "yes"` would otherwise be taken silently for a whole answer; null is the SDKs' "not set".
  const { stream } = body;
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') {
    throw new ProxyError(400, "Invalid type for 'stream': expected a boolean (true or false)", {
      code: 'invalid_request',
      param: 'stream',
    });
  }
  return { model: body.model, stream: stream === true };
}

// A Map, not an object literal: an action named `constructor` must not find Object's.
const GEMINI_ACTIONS = new Map([
  ['generateContent', false],
  ['streamGenerateContent', true],
]);

const GEMINI_PREFIX = '/v1beta/models/';

function decodedOrEmpty(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return '';
  }
}

/** The `alt` query parameter, the only one the Gemini front-end reads. */
function altOf(url: string): string | null {
  const queryStart = url.indexOf('?');
  return queryStart < 0 ? null : new URLSearchParams(url.slice(queryStart + 1)).get('alt');
}

/**
 * Gemini puts model and action in the path: `/v1beta/models/{model}:{action}`. A model may itself hold a
 * `:` (`openai:gpt-4o`), so the action is what follows the last one.
 */
export function geminiTarget(url: string): ChatTarget {
  const queryStart = url.indexOf('?');
  const path = queryStart < 0 ? url : url.slice(0, queryStart);
  const tail = path.startsWith(GEMINI_PREFIX) ? decodedOrEmpty(path.slice(GEMINI_PREFIX.length)) : '';
  const cut = tail.lastIndexOf(':');
  const model = cut > 0 ? tail.slice(0, cut) : '';
  const stream = GEMINI_ACTIONS.get(cut > 0 ? tail.slice(cut + 1) : '');
  if (!model || stream === undefined) {
    throw new ProxyError(404, 'Expected /v1beta/models/{model}:generateContent or :streamGenerateContent', {
      code: 'not_found',
    });
  }
  if (stream && altOf(url) !== 'sse') {
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
  gemini: { protocol: 'gemini', target: (_body, url) => geminiTarget(url) },
  responses: { protocol: 'responses', target: bodyTarget },
};
