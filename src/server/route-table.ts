import type { Protocol } from '../protocols/types.js';

/**
 * The front-end route table: which paths speak which protocol. Every answer's error envelope, the chat
 * lane's routes, the model lists and the OpenAPI document read it here, and nowhere else.
 */

/** The path prefix of each front-end but OpenAI chat's; every other path speaks OpenAI's protocol. */
const PROTOCOL_PREFIXES: ReadonlyArray<readonly [prefix: string, protocol: Protocol]> = [
  ['/v1/responses', 'responses'],
  ['/anthropic', 'anthropic'],
  ['/v1beta', 'gemini'],
];

/** Which protocol a request path belongs to: it decides the error envelope of any answer on it. */
export function protocolForPath(url: string): Protocol {
  for (const [prefix, protocol] of PROTOCOL_PREFIXES) {
    if (url.startsWith(prefix) && (url.length === prefix.length || url[prefix.length] === '/'))
      return protocol;
  }
  return 'openai';
}

/** One chat route per protocol (README, Endpoints). */
export interface ChatRouteSpec {
  protocol: Protocol;
  /** Fastify's pattern; a trailing `*` makes a prefix route. */
  url: string;
  summary: string;
  required: string[];
}

export const CHAT_ROUTES: readonly ChatRouteSpec[] = [
  {
    protocol: 'openai',
    url: '/v1/chat/completions',
    summary: 'Chat completion (OpenAI protocol); `stream: true` for server-sent events',
    required: ['model', 'messages'],
  },
  {
    protocol: 'responses',
    url: '/v1/responses',
    summary: 'Create a response (OpenAI Responses API); `stream: true` for typed server-sent events',
    required: ['model'],
  },
  {
    protocol: 'anthropic',
    url: '/anthropic/v1/messages',
    summary: 'Messages (Anthropic protocol); `stream: true` for server-sent events',
    required: ['model', 'messages'],
  },
  {
    protocol: 'gemini',
    url: '/v1beta/models/*',
    summary: 'Gemini `{model}:generateContent` and `{model}:streamGenerateContent?alt=sse`',
    required: [],
  },
];

/** The model list of each protocol. */
export const MODEL_ROUTES: ReadonlyArray<{ protocol: Protocol; url: string }> = [
  { protocol: 'openai', url: '/v1/models' },
  { protocol: 'openai', url: '/models' },
  { protocol: 'anthropic', url: '/anthropic/v1/models' },
  { protocol: 'gemini', url: '/v1beta/models' },
];
