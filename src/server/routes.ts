import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { upstreamFailure } from '../backends/http.js';
import type { BackendRegistry } from '../backends/registry.js';
import type { ModelInfo } from '../backends/types.js';
import type { ProxyConfig } from '../config/schema.js';
import type { ProxyMetrics } from '../observability/metrics.js';
import { createChatHandler, openaiTarget, type ChatPipelineDeps } from './proxy.js';

export interface RouteDeps extends ChatPipelineDeps {
  registry: BackendRegistry;
  metrics: ProxyMetrics;
  config: ProxyConfig;
  /** Readiness detail for /internal/health (names and states only, never secrets). */
  readiness: () => Record<string, unknown>;
}

/** Bodies are checked by the pipeline itself (unknown fields pass through), not by Fastify's validator. */
const noValidation = () => () => true;

const chatBodyDoc = {
  type: 'object',
  required: ['model', 'messages'],
  properties: {
    model: {
      type: 'string',
      description: 'Model, optionally prefixed with a backend: `openrouter:anthropic/claude-3-haiku`',
    },
    messages: { type: 'array', items: { type: 'object', additionalProperties: true } },
    stream: { type: 'boolean' },
  },
  additionalProperties: true,
} as const;

function openaiModelList(models: ModelInfo[]): Record<string, unknown> {
  const created = Math.floor(Date.now() / 1000);
  return {
    object: 'list',
    data: models.map((m) => ({ id: m.id, object: 'model', created, owned_by: m.ownedBy })),
  };
}

export function registerRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const chat = createChatHandler('openai', (body) => openaiTarget(body), deps);

  app.post(
    '/v1/chat/completions',
    {
      validatorCompiler: noValidation,
      schema: {
        tags: ['OpenAI'],
        summary: 'Chat completion (OpenAI protocol), streaming with `stream: true`',
        body: chatBodyDoc,
      },
    },
    chat,
  );

  const listModels = async (request: FastifyRequest, reply: FastifyReply) => {
    const backend = deps.registry.defaultBackend;
    request.proxyState.backend = backend.name;
    const controller = new AbortController();
    try {
      return reply.send(openaiModelList(await backend.listModels(controller.signal)));
    } catch (err) {
      throw upstreamFailure(err, backend.name, controller.signal);
    }
  };
  for (const url of ['/v1/models', '/models']) {
    app.get(url, { schema: { tags: ['OpenAI'], summary: 'Models of the default backend' } }, listModels);
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
    async () => deps.readiness(),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get(
    '/metrics',
    { schema: { tags: ['Operations'], summary: 'Prometheus metrics (needs a key)' } },
    async (_req, reply) =>
      reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
}
