import type { FastifyInstance } from 'fastify';
import type { OpenAPIV3 } from 'openapi-types';
import type { ProxyConfig } from '../config/schema.js';
import type { ProxyMetrics } from '../observability/metrics.js';
import type { Protocol } from '../protocols/types.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createChatPipeline, type ChatPipelineDeps } from '../pipeline/chat.js';
import { abortOnClientGone } from '../pipeline/dispatch.js';
import type { ChatExchange } from '../pipeline/exchange.js';
import { createCountTokensPipeline } from '../pipeline/count-tokens.js';
import { FRONT_ENDS } from '../pipeline/front-ends.js';
import { listModels, retrieveModel } from '../pipeline/models.js';
import { modelListFilter } from '../pipeline/policy.js';
import { ownerOf, storedInputItems, storedResponse } from '../pipeline/responses.js';
import { CHAT_ROUTES, MODEL_ROUTES, type ChatRouteSpec } from '../pipeline/route-table.js';

export interface RouteDeps extends ChatPipelineDeps {
  metrics: ProxyMetrics;
  config: ProxyConfig;
  /** Readiness detail for /internal/health (names and states only, never secrets). */
  readiness: () => Record<string, unknown> | Promise<Record<string, unknown>>;
}

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

/** A chat route with its pipeline, built once: served by the chat lane. */
export interface ChatRoute extends ChatRouteSpec {
  run: (ex: ChatExchange) => Promise<void>;
}

/** The pipeline of each route: chat, or a token count (for the protocols that have one). */
function pipelineFor(route: ChatRouteSpec, deps: ChatPipelineDeps): ChatRoute['run'] {
  if (route.action !== 'count_tokens') return createChatPipeline(FRONT_ENDS[route.protocol], deps);
  const count = createCountTokensPipeline(route.protocol, deps);
  if (count === null) throw new Error(`No token count for the ${route.protocol} protocol`);
  return count;
}

export function createChatRoutes(deps: ChatPipelineDeps): ChatRoute[] {
  return CHAT_ROUTES.map((route) => ({ ...route, run: pipelineFor(route, deps) }));
}

/** Lists the default backend's models in the client's protocol: those the key's allow-list lets through. */
function modelsHandler(protocol: Protocol, deps: RouteDeps) {
  return async function listModelsRoute(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    return reply.send(
      await listModels(
        protocol,
        deps.registry,
        request.proxyState,
        abortOnClientGone(reply.raw),
        deps.failover?.routes.names(),
        modelListFilter(deps.policies(), request.authKeyName ?? null, deps.failover?.routes, deps.registry),
      ),
    );
  };
}

/** One model of that list, by the id in the path (the SDKs' `models.retrieve` / `models.get`). */
function modelHandler(protocol: Protocol, deps: RouteDeps) {
  return async function retrieveModelRoute(
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply> {
    const id = (request.params as Record<string, string | undefined>)['*'] ?? '';
    return reply.send(
      await retrieveModel(
        protocol,
        id,
        deps.registry,
        request.proxyState,
        abortOnClientGone(reply.raw),
        deps.redactor(),
        deps.failover?.routes.names(),
        modelListFilter(deps.policies(), request.authKeyName ?? null, deps.failover?.routes, deps.registry),
      ),
    );
  };
}

const TAGS: Record<Protocol, string> = {
  openai: 'OpenAI',
  anthropic: 'Anthropic',
  gemini: 'Gemini',
  responses: 'OpenAI Responses',
};

/**
 * The chat routes as OpenAPI paths: the chat lane serves them (src/server/chat-lane.ts), not Fastify, so
 * they are described here for /openapi.json and /docs rather than discovered from Fastify's routes.
 */
export function chatRoutePaths(): OpenAPIV3.PathsObject {
  const paths: OpenAPIV3.PathsObject = {};
  for (const route of CHAT_ROUTES) {
    const url = route.url.endsWith('*')
      ? `${route.url.slice(0, -1)}{modelAction}`
      : route.url.replace('*', '{model}');
    paths[url] = {
      post: {
        tags: [TAGS[route.protocol]],
        summary: route.summary,
        ...(url.includes('{modelAction}')
          ? {
              parameters: [
                {
                  name: 'modelAction',
                  in: 'path',
                  required: true,
                  description: '`{model}:generateContent` or `{model}:streamGenerateContent`',
                  schema: { type: 'string' },
                },
              ],
            }
          : url.includes('{model}')
            ? {
                parameters: [{ name: 'model', in: 'path', required: true, schema: { type: 'string' } }],
              }
            : {}),
        requestBody: {
          required: true,
          content: { 'application/json': { schema: chatBodyDoc(route.required) } },
        },
        responses: {
          200: {
            description:
              route.action === 'count_tokens'
                ? 'The input token count: passed through to a backend of the same protocol, else estimated'
                : 'The answer, or server-sent events with `stream: true`',
          },
        },
      },
    };
  }
  return paths;
}

export function registerRoutes(app: FastifyInstance, deps: RouteDeps): void {
  for (const route of MODEL_ROUTES) {
    app.get(
      route.url,
      { schema: { tags: [TAGS[route.protocol]], summary: 'Models of the default backend' } },
      modelsHandler(route.protocol, deps),
    );
    // A wildcard: model ids may hold a slash (`anthropic/claude-3-haiku`, Gemini's `models/…`).
    app.get(
      `${route.url}/*`,
      { schema: { tags: [TAGS[route.protocol]], summary: 'One model of the default backend, by its id' } },
      modelHandler(route.protocol, deps),
    );
  }

  // The Responses API's stored responses: the chat lane serves POST /v1/responses.
  for (const method of ['GET', 'DELETE'] as const) {
    app.route<{ Params: { id: string } }>({
      method,
      url: '/v1/responses/:id',
      schema: {
        tags: [TAGS.responses],
        summary:
          method === 'GET'
            ? 'A stored response (`store`), to the key that made it'
            : 'Delete a stored response, for the key that made it',
      },
      handler: async (request, reply) => {
        const answer = await storedResponse(method, request.params.id, ownerOf(request), {
          store: deps.responses ?? null,
          registry: deps.registry,
          redactor: deps.redactor(),
          signal: abortOnClientGone(reply.raw),
        });
        reply.code(answer.status);
        if (answer.contentType) reply.type(answer.contentType);
        return reply.send(answer.body);
      },
    });
  }
  app.get<{ Params: { id: string }; Querystring: Record<string, unknown> }>(
    '/v1/responses/:id/input_items',
    {
      schema: {
        tags: [TAGS.responses],
        summary: 'The input items of a stored response, a page at a time (`after`, `limit`, `order`)',
      },
    },
    async (request, reply) => {
      const answer = await storedInputItems(request.params.id, ownerOf(request), request.query, {
        store: deps.responses ?? null,
        registry: deps.registry,
        redactor: deps.redactor(),
        signal: abortOnClientGone(reply.raw),
      });
      reply.code(answer.status);
      if (answer.contentType) reply.type(answer.contentType);
      return reply.send(answer.body);
    },
  );

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
    { schema: { tags: ['Health'], summary: 'Readiness with detail (needs an admin key)' } },
    async () => deps.redactor().redactValue(await deps.readiness()),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get(
    '/metrics',
    { schema: { tags: ['Operations'], summary: 'Prometheus metrics (needs an admin key)' } },
    async (_req, reply) =>
      reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
}
