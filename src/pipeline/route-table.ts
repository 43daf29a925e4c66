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
  /**
   * The path; a `*` matches the rest of it (a prefix route), or, with text after it, whatever comes between
   * (`/v1beta/models/*:countTokens`). Earlier routes win: a narrower pattern goes before a wider one.
   */
  url: string;
  summary: string;
  required: string[];
  /** What the route does: a chat completion (the default), or counting a request's tokens. */
  action?: 'count_tokens';
}

export const CHAT_ROUTES: readonly ChatRouteSpec[] = [
  // Token counts carry prompts: the chat lane serves them as it serves chat (README, Token counting).
  {
    protocol: 'anthropic',
    url: '/anthropic/v1/messages/count_tokens',
    summary: 'Count the input tokens of a Messages request (Anthropic protocol): `{input_tokens}`',
    required: ['model', 'messages'],
    action: 'count_tokens',
  },
  {
    protocol: 'gemini',
    url: '/v1beta/models/*:countTokens',
    summary: 'Gemini `{model}:countTokens`: `{totalTokens}`',
    required: [],
    action: 'count_tokens',
  },
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
