import type { FastifyInstance } from 'fastify';
import type { ProxyConfig } from '../config/schema.js';
import type { ProxyMetrics } from '../observability/metrics.js';
import type { Protocol } from '../protocols/types.js';
import { FRONT_ENDS } from './frontends.js';
import type { ChatExchange } from './exchange.js';
import {
  createChatPipeline,
  createModelsHandler,
  fastifyChatHandler,
  type ChatPipelineDeps,
} from './proxy.js';

export interface RouteDeps extends ChatPipelineDeps {
  metrics: ProxyMetrics;
  config: ProxyConfig;
  /** Readiness detail for /internal/health (names and states only, never secrets). */
  readiness: () => Record<string, unknown>;
}

/** Bodies are checked by the pipeline itself (unknown fields pass through), not by Fastify's validator. */
const noValidation = () => () => true;

const chatBodyDoc = (required: string[]) =>
  ({
    type: 'object',
    required,
    properties: {
      model: {
        type: 'string',
        description: 'Model, optionally prefixed with a backend: `openrouter:anthropic/claude-3-haiku`',
      },
      stream: { type: 'boolean' },
    },
    additionalProperties: true,
  }) as const;

/** The front-end route table (SPEC §5.1): one chat route and the model routes per protocol. */
interface ChatRouteSpec {
  protocol: Protocol;
  /** Fastify's pattern; a trailing `*` makes a prefix route. */
  url: string;
  summary: string;
  required: string[];
}

const CHAT_ROUTES: ChatRouteSpec[] = [
  {
    protocol: 'openai',
    url: '/v1/chat/completions',
    summary: 'Chat completion (OpenAI protocol); `stream: true` for server-sent events',
    required: ['model', 'messages'],
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

/** A chat route with its pipeline, built once: served by the chat lane and by Fastify alike. */
export interface ChatRoute extends ChatRouteSpec {
  run: (ex: ChatExchange) => Promise<void>;
}

export function createChatRoutes(deps: ChatPipelineDeps): ChatRoute[] {
  return CHAT_ROUTES.map((route) => ({
    ...route,
    run: createChatPipeline(FRONT_ENDS[route.protocol], deps),
  }));
}

const MODEL_ROUTES: Array<{ protocol: Protocol; url: string }> = [
  { protocol: 'openai', url: '/v1/models' },
  { protocol: 'openai', url: '/models' },
  { protocol: 'anthropic', url: '/anthropic/v1/models' },
  { protocol: 'gemini', url: '/v1beta/models' },
];

const TAGS: Record<Protocol, string> = { openai: 'OpenAI', anthropic: 'Anthropic', gemini: 'Gemini' };

export function registerRoutes(app: FastifyInstance, deps: RouteDeps, chatRoutes: ChatRoute[]): void {
  for (const route of chatRoutes) {
    app.post(
      route.url,
      {
        validatorCompiler: noValidation,
        schema: { tags: [TAGS[route.protocol]], summary: route.summary, body: chatBodyDoc(route.required) },
      },
      fastifyChatHandler(route.run),
    );
  }
  for (const route of MODEL_ROUTES) {
    app.get(
      route.url,
      { schema: { tags: [TAGS[route.protocol]], summary: 'Models of the default backend' } },
      createModelsHandler(route.protocol, deps.registry),
    );
  }

  app.get(
    '/health',
    {
      schema: {
        tags: ['Health'],
        summary: 'Liveness (public)',
        response: { 200: { type: 'object', properties: { status: { type: 'string' } } } },
      },
    },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/internal/health',
    { schema: { tags: ['Health'], summary: 'Readiness with detail (needs a key)' } },
    async () => deps.redactor().redactValue(deps.readiness()),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get(
    '/metrics',
    { schema: { tags: ['Operations'], summary: 'Prometheus metrics (needs a key)' } },
    async (_req, reply) =>
      reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
}
