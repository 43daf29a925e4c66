import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { readText, upstreamFailure } from '../backends/http.js';
import type { BackendRegistry } from '../backends/registry.js';
import type { UpstreamResponse } from '../backends/types.js';
import { ProxyError } from '../errors.js';
import { errorEnvelope } from '../protocols/errors.js';
import type { Protocol } from '../protocols/types.js';

/** What the chat pipeline needs from the running proxy. */
export interface ChatPipelineDeps {
  registry: BackendRegistry;
  /** Rewrites configured secrets in a request body before it leaves for a backend (identity when off). */
  scrubPrompt: (body: Record<string, unknown>) => Record<string, unknown>;
  /** Scrubs secrets from text the proxy passes on from a backend (error bodies). */
  redactText: (text: string) => string;
}

/** Where a front-end finds the model and the stream flag: in the body, or (Gemini) in the path. */
export interface ChatTarget {
  model: string;
  stream: boolean;
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
} as const;

/** Headers from an upstream error that a client can act on. */
const PASSED_ERROR_HEADERS = [
  'retry-after',
  'retry-after-ms',
  'x-ratelimit-reset-requests',
  'x-ratelimit-reset-tokens',
];

function requireObjectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ProxyError(400, 'Request body must be a JSON object', { code: 'invalid_request' });
  }
  return body as Record<string, unknown>;
}

export function openaiTarget(body: Record<string, unknown>): ChatTarget {
  if (typeof body.model !== 'string' || body.model.length === 0) {
    throw new ProxyError(400, 'Missing required parameter: model', {
      code: 'missing_required_parameter',
      param: 'model',
    });
  }
  return { model: body.model, stream: body.stream === true };
}

/** Ties the upstream request's life to the client's: a client that goes away aborts the backend call. */
function abortOnClientGone(reply: FastifyReply): AbortController {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller;
}

function mirrorErrorHeaders(reply: FastifyReply, upstream: UpstreamResponse): void {
  for (const name of PASSED_ERROR_HEADERS) {
    const value = upstream.headers[name];
    if (typeof value === 'string') reply.header(name, value);
  }
}

/** A stream error event in the client's protocol, for a backend that fails mid-answer. */
function streamErrorEvent(protocol: Protocol, error: ProxyError): string {
  const body = errorEnvelope(protocol, { status: error.status, message: error.message, code: error.code });
  if (protocol === 'anthropic') return `event: error\ndata: ${JSON.stringify(body)}\n\n`;
  return `data: ${JSON.stringify(body)}\n\n`;
}

/**
 * Same-protocol streaming: bytes go to the client as they arrive. Pulled by the response stream, so a slow
 * client slows the upstream read (backpressure). A backend that fails mid-stream gets a protocol error
 * event instead of a silently truncated answer.
 */
async function* passThroughStream(
  upstream: UpstreamResponse,
  protocol: Protocol,
  backendName: string,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array | string> {
  try {
    for await (const chunk of upstream.body) yield chunk;
  } catch (err) {
    if (signal.aborted) return;
    const reason = (err as { code?: string }).code ?? 'stream error';
    const status = reason.includes('TIMEOUT') ? 504 : 502;
    yield streamErrorEvent(
      protocol,
      new ProxyError(status, `Backend '${backendName}' failed mid-stream (${reason})`, {
        code: 'upstream_stream_error',
      }),
    );
  } finally {
    upstream.dispose();
  }
}

/** Turns a backend's error answer into one in the client's protocol, keeping its status, scrubbed. */
async function relayUpstreamError(
  reply: FastifyReply,
  upstream: UpstreamResponse,
  protocol: Protocol,
  backendProtocol: Protocol,
  deps: ChatPipelineDeps,
): Promise<FastifyReply> {
  const text = deps.redactText(await readText(upstream.body, 1024 * 1024));
  mirrorErrorHeaders(reply, upstream);
  reply.code(upstream.status);
  if (protocol === backendProtocol && looksLikeJson(text)) {
    return reply.type('application/json').send(text);
  }
  const message = extractMessage(text) ?? `Backend answered HTTP ${upstream.status}`;
  return reply.send(errorEnvelope(protocol, { status: upstream.status, message, code: 'upstream_error' }));
}

function looksLikeJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function extractMessage(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
    if (typeof parsed.error?.message === 'string') return parsed.error.message;
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // Not JSON: fall through to a short excerpt.
  }
  const trimmed = text.trim();
  return trimmed ? trimmed.slice(0, 500) : undefined;
}

/** The chat pipeline: front-end body → route → backend → back to the client, streamed or whole. */
export function createChatHandler(
  protocol: Protocol,
  targetOf: (body: Record<string, unknown>, request: FastifyRequest) => ChatTarget,
  deps: ChatPipelineDeps,
) {
  return async function handleChat(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const state = request.proxyState;
    const clientBody = requireObjectBody(request.body);
    const target = targetOf(clientBody, request);
    const route = deps.registry.resolve(target.model);
    state.backend = route.backend.name;
    state.model = route.model;

    if (route.backend.protocol !== protocol) {
      throw new ProxyError(
        400,
        `Backend '${route.backend.name}' speaks ${route.backend.protocol}; translation from ${protocol} is not available`,
        {
          code: 'unsupported_translation',
          param: 'model',
        },
      );
    }
    const scrubbed = deps.scrubPrompt(clientBody);
    const wireBody = scrubbed.model === route.model ? scrubbed : { ...scrubbed, model: route.model };

    const controller = abortOnClientGone(reply);
    const sentAt = performance.now();
    const upstream = await route.backend.chat({
      model: route.model,
      stream: target.stream,
      body: wireBody,
      signal: controller.signal,
      requestId: request.id,
    });
    state.backendMs += performance.now() - sentAt;

    if (upstream.status >= 400) {
      return relayUpstreamError(reply, upstream, protocol, route.backend.protocol, deps);
    }
    const contentType = upstream.headers['content-type'];
    if (target.stream && typeof contentType === 'string' && contentType.includes('text/event-stream')) {
      reply.code(upstream.status).headers(SSE_HEADERS);
      const stream = Readable.from(
        passThroughStream(upstream, protocol, route.backend.name, controller.signal),
        {
          objectMode: false,
        },
      );
      return reply.send(stream);
    }
    const readStart = performance.now();
    let text: string;
    try {
      text = await readText(upstream.body);
    } catch (err) {
      throw upstreamFailure(err, route.backend.name, controller.signal);
    }
    state.backendMs += performance.now() - readStart;
    return reply
      .code(upstream.status)
      .type(typeof contentType === 'string' ? contentType : 'application/json')
      .send(text);
  };
}
