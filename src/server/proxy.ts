import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Cancellation, type CancelSignal } from '../backends/cancel.js';
import type { CaptureRecorder } from '../capture/events.js';
import { readBytes, upstreamFailure } from '../backends/http.js';
import type { BackendRegistry } from '../backends/registry.js';
import type { Backend, UpstreamResponse } from '../backends/types.js';
import { ProxyError } from '../errors.js';
import { codecs } from '../protocols/registry.js';
import { errorEnvelope } from '../protocols/errors.js';
import { translateStream } from '../protocols/translate.js';
import type { Protocol } from '../protocols/types.js';
import type { Redactor } from '../redaction/redactor.js';
import {
  ErrorEventGuard,
  guardErrorEvents,
  guardTranslatedEvents,
  redactErrorText,
} from '../redaction/upstream-errors.js';
import { RequestCapture, type StreamTap } from './capture.js';
import { answerFailure } from './errors.js';
import type { ChatExchange } from './exchange.js';
import type { FrontEnd } from './frontends.js';
import { responseHead, writeJson, writeStream } from './respond.js';

/** What the chat pipeline needs from the running proxy. */
export interface ChatPipelineDeps {
  registry: BackendRegistry;
  /** The current redactor (rebuilt when keys rotate). */
  redactor: () => Redactor;
  /** Replace configured secrets found in prompts before forwarding (SPEC §3). */
  scrubPrompts: boolean;
  /** Null when wire capture is off: then the pipeline does no capture work at all. */
  capture: CaptureRecorder | null;
  /** Where failures that are the proxy's own fault are logged. */
  log: { error(obj: object, msg: string): void };
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  'x-accel-buffering': 'no',
} as const;

/** Headers from an upstream error that a client can act on. */
const PASSED_ERROR_HEADERS = [
  'retry-after',
  'retry-after-ms',
  'x-ratelimit-reset-requests',
  'x-ratelimit-reset-tokens',
];

/** Upper bound for an error body read from a backend: enough for any real error, not a memory hazard. */
const ERROR_BODY_LIMIT = 1024 * 1024;

function requireObjectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ProxyError(400, 'Request body must be a JSON object', { code: 'invalid_request' });
  }
  return body as Record<string, unknown>;
}

/** Ties the upstream request's life to the client's: a client that goes away aborts the backend call. */
function abortOnClientGone(res: ServerResponse): Cancellation {
  const controller = new Cancellation();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller;
}

/** The body to send upstream: the client's own (same protocol), or translated through the canonical model. */
function wireBody(
  body: Record<string, unknown>,
  from: Protocol,
  backend: Backend,
  model: string,
  stream: boolean,
): Record<string, unknown> {
  if (backend.protocol === from) {
    // Gemini carries the model in the URL; the others in the body, where a backend prefix must go.
    if (from === 'gemini' || body.model === model) return body;
    return { ...body, model };
  }
  return codecs[backend.protocol].encodeRequest(codecs[from].decodeRequest(body, { model, stream }));
}

function midStreamError(protocol: Protocol, backendName: string, err: unknown): string {
  const failure = upstreamFailure(err, backendName) as ProxyError;
  if (failure.code === 'upstream_line_too_long') {
    // Cut off in the middle of a line the client has partly received: a blank line ends it first, so that
    // the error event is read as an event of its own.
    return `\n\n${codecs[protocol].encodeError({ status: failure.status, message: failure.message, code: failure.code })}`;
  }
  return codecs[protocol].encodeError({
    status: failure.status,
    message: `Backend '${backendName}' failed mid-stream`,
    code: 'upstream_stream_error',
  });
}

/**
 * How each protocol's stream says "this answer is complete" (or ends in the backend's own error event).
 * A stream that ends without one was cut short, and the client is told so rather than left with a
 * silently truncated answer.
 */
const STREAM_FINISHED: Record<Protocol, RegExp> = {
  openai: /data: \[DONE\]|"finish_reason"\s*:\s*"|"error"\s*:/,
  anthropic: /message_stop|event: error/,
  gemini: /"finishReason"\s*:|"error"\s*:/,
};

const TAIL_CHARS = 512;

/**
 * Watches the end of a pass-through stream for the protocol's finish marker. Per chunk it only keeps a
 * reference to the last few chunks; text is decoded once, at the end.
 */
class FinishWatch {
  private recent: Array<Uint8Array | string> = [];
  private recentLength = 0;

  constructor(private readonly protocol: Protocol) {}

  see(chunk: Uint8Array | string): void {
    this.recent.push(chunk);
    this.recentLength += chunk.length;
    while (this.recent.length > 1 && this.recentLength - this.recent[0]!.length >= TAIL_CHARS) {
      this.recentLength -= this.recent.shift()!.length;
    }
  }

  /** The error event owed to the client when the stream ended unfinished, else null. */
  missingEnd(backendName: string): string | null {
    const tail = this.recent
      .map((c) =>
        typeof c === 'string' ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('latin1'),
      )
      .join('')
      .slice(-TAIL_CHARS);
    if (STREAM_FINISHED[this.protocol].test(tail)) return null;
    return codecs[this.protocol].encodeError({
      status: 502,
      message: `Backend '${backendName}' ended the stream before the answer was finished`,
      code: 'upstream_incomplete',
    });
  }
}

/**
 * Same-protocol streaming when the backend's answer is only an async iterable (one that cannot be taken
 * whole, as the embedded mock's): bytes go on as they arrive, pulled by the response (backpressure); a failed or unfinished stream ends in the
 * protocol's error event.
 */
async function* passThroughIterable(
  source: AsyncIterable<Uint8Array>,
  protocol: Protocol,
  backendName: string,
  signal: CancelSignal,
): AsyncGenerator<Uint8Array | string> {
  const watch = new FinishWatch(protocol);
  try {
    for await (const chunk of source) {
      watch.see(chunk);
      yield chunk;
    }
  } catch (err) {
    if (signal.aborted) return;
    yield midStreamError(protocol, backendName, err);
    return;
  }
  const owed = watch.missingEnd(backendName);
  if (owed) yield owed;
}

/**
 * The hottest streaming case — same protocol: the backend's chunks are written to the response as undici
 * reads them (no body stream, no pipe), the response's backpressure passed back to the socket, and shown to
 * the capture's `tap` when there is one. A backend's error event is redacted on its way (the guard passes
 * every other chunk as it is). Mid-stream failures and unfinished streams still end in the protocol's
 * error event.
 */
function streamToClient(
  ex: ChatExchange,
  upstream: UpstreamResponse & Pick<Required<UpstreamResponse>, 'take'>,
  protocol: Protocol,
  backendName: string,
  signal: CancelSignal,
  tap: StreamTap | undefined,
  guard: ErrorEventGuard,
): void {
  const res = ex.res;
  res.writeHead(upstream.status, sseHead(ex));
  const watch = new FinishWatch(protocol);
  const pass = (chunk: Uint8Array | string): boolean => {
    if (chunk.length === 0) return true;
    tap?.chunk(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    // A client that left is not written to; the abort that follows stops the backend.
    if (res.destroyed) return true;
    watch.see(chunk);
    return res.write(chunk);
  };
  const control = upstream.take({
    write(chunk) {
      return pass(guard.see(chunk));
    },
    end() {
      pass(guard.end());
      const owed = watch.missingEnd(backendName);
      tap?.end(owed);
      res.end(owed ?? undefined);
    },
    fail(err) {
      pass(guard.end());
      if (signal.aborted || res.destroyed) {
        tap?.fail(err, null);
        res.destroy();
      } else {
        const event = midStreamError(protocol, backendName, err);
        tap?.fail(err, event);
        res.end(event);
      }
    },
  });
  res.on('drain', () => control.resume());
}

function isTakeable(
  upstream: UpstreamResponse,
): upstream is UpstreamResponse & Pick<Required<UpstreamResponse>, 'take'> {
  return upstream.take !== undefined;
}

function sseHead(ex: ChatExchange): OutgoingHttpHeaders {
  return responseHead(ex, SSE_HEADERS);
}

/** A backend's error, in the client's protocol, with the backend's status kept. */
function upstreamErrorBody(
  text: string,
  status: number,
  from: Protocol,
  backendProtocol: Protocol,
): string | object {
  if (from === backendProtocol) {
    try {
      JSON.parse(text);
      return text;
    } catch {
      // Not an error body the client's SDK could read: wrap it below.
    }
  }
  // The codec reads the backend's envelope, or falls back to a short excerpt of a body that is not one.
  const info = codecs[backendProtocol].decodeError(status, text);
  return errorEnvelope(from, { ...info, status });
}

const invalidAnswer = (backendName: string) =>
  new ProxyError(502, `Backend '${backendName}' answered with invalid JSON`, { code: 'upstream_invalid' });

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * Whether a whole answer passed on as is can be a JSON object: it starts with `{` and ends with `}`, give
 * or take whitespace. What goes wrong in practice — an HTML or plain-text page from a wrong base URL, a
 * proxy's error page, an empty or cut-off body — fails it, so a client's SDK is not handed a 200 it
 * cannot read. A full parse would also catch a backend writing broken JSON inside the braces, at the price
 * of parsing every answer (and building its object tree) only to throw it away: SPEC §7's budget.
 */
export function isJsonObject(bytes: Uint8Array): boolean {
  let first = 0;
  let last = bytes.length - 1;
  while (first <= last && WHITESPACE.has(bytes[first]!)) first++;
  while (last > first && WHITESPACE.has(bytes[last]!)) last--;
  return last > first && bytes[first] === 0x7b && bytes[last] === 0x7d;
}

/**
 * The chat pipeline: front-end body → route → backend → back to the client, streamed or whole. It writes
 * its answer, errors included, straight to the response, so the chat lane and a Fastify route (that hands
 * its reply over) share it whole.
 */
export function createChatPipeline(
  frontEnd: FrontEnd,
  deps: ChatPipelineDeps,
): (ex: ChatExchange) => Promise<void> {
  const handle = chatHandler(frontEnd, deps);
  return async function runChat(ex) {
    try {
      await handle(ex);
    } catch (err) {
      answerFailure(ex, err as Error, deps.log);
    }
  };
}

function chatHandler(frontEnd: FrontEnd, deps: ChatPipelineDeps) {
  const from = frontEnd.protocol;
  return async function handleChat(ex: ChatExchange): Promise<void> {
    const state = ex.state;
    const clientBody = requireObjectBody(ex.body);
    const target = frontEnd.target(clientBody, ex.url);
    const route = deps.registry.resolve(target.model);
    const backend = route.backend;
    state.backend = backend.name;
    state.model = route.model;
    const capture = deps.capture
      ? new RequestCapture(deps.capture, ex, backend.name, route.model, backend.credentialName)
      : null;
    // The client's body as received: bytes when the server path kept them, else text.
    const received = ex.rawBytes ?? ex.rawBody;
    capture?.record('inbound_request', {
      headers: ex.headers,
      payload: clientBody,
      payloadJson: received,
      metadata: { method: ex.method, url: ex.url, protocol: from },
    });

    const redactor = deps.redactor();
    let body = clientBody;
    if (deps.scrubPrompts) {
      const scrubbed = redactor.redactPromptSecrets(clientBody, ex.rawBody);
      if (scrubbed.changed) body = scrubbed.body as Record<string, unknown>;
    }
    const outbound = wireBody(body, from, backend, route.model, target.stream);
    capture?.record('outbound_request', {
      payload: outbound,
      payloadJson: outbound === clientBody ? received : undefined,
      metadata: { protocol: backend.protocol, stream: target.stream },
    });

    const controller = abortOnClientGone(ex.res);
    const sentAt = performance.now();
    const upstream: UpstreamResponse = await backend.chat({
      model: route.model,
      stream: target.stream,
      body: outbound,
      rawBody: outbound === clientBody ? received : undefined,
      signal: controller,
      requestId: ex.id,
      // Passed on as it comes: the stream goes straight from undici to the response (and the capture).
      direct: target.stream && backend.protocol === from,
    });
    state.backendMs += performance.now() - sentAt;

    const readWhole = async (limit?: number): Promise<Buffer> => {
      const started = performance.now();
      try {
        return await readBytes(upstream, limit);
      } catch (err) {
        throw upstreamFailure(err, backend.name, controller);
      } finally {
        state.backendMs += performance.now() - started;
      }
    };

    if (upstream.status >= 400) {
      const text = redactErrorText(redactor, (await readWhole(ERROR_BODY_LIMIT)).toString('utf8'));
      capture?.record('inbound_response', {
        headers: upstream.headers,
        payload: text,
        metadata: { status: upstream.status },
      });
      const passed: Record<string, string> = {};
      for (const name of PASSED_ERROR_HEADERS) {
        const value = upstream.headers[name];
        if (typeof value === 'string') passed[name] = value;
      }
      const answer = upstreamErrorBody(text, upstream.status, from, backend.protocol);
      capture?.record('outbound_response', { payload: answer, metadata: { status: upstream.status } });
      writeJson(ex, upstream.status, answer, passed);
      return;
    }

    const contentType = String(upstream.contentType ?? upstream.headers['content-type'] ?? '');
    if (target.stream && contentType.includes('text/event-stream')) {
      ex.res.once('close', () => upstream.dispose());
      if (isTakeable(upstream)) {
        const tap = capture?.passThrough({ status: upstream.status });
        streamToClient(ex, upstream, from, backend.name, controller, tap, new ErrorEventGuard(redactor));
        return;
      }
      // The backend's error events redacted before anything reads them: capture, translator, client.
      let source: AsyncIterable<Uint8Array> = guardErrorEvents(upstream.body, redactor);
      if (capture) source = capture.tee(source, 'inbound', { status: upstream.status });
      let out: AsyncIterable<Uint8Array | string> =
        backend.protocol === from
          ? passThroughIterable(source, from, backend.name, controller)
          : guardTranslatedEvents(
              translateStream(source, backend.protocol, from, { model: route.model, requestId: ex.id }),
              redactor,
            );
      if (capture) out = capture.tee(out, 'outbound', { status: upstream.status });
      ex.res.writeHead(upstream.status, sseHead(ex));
      // The generators end in an error event of their own when the backend fails.
      void writeStream(ex.res, out);
      return;
    }

    const bytes = await readWhole();
    // The capture records the answer's bytes as text (decoded off this thread); an answer passed on as is
    // goes out as the bytes it came in as, so only translation needs it decoded here.
    capture?.record('inbound_response', {
      headers: upstream.headers,
      payload: bytes,
      metadata: { status: upstream.status },
    });
    if (backend.protocol === from) {
      if (!isJsonObject(bytes)) throw invalidAnswer(backend.name);
      capture?.record('outbound_response', { payload: bytes, metadata: { status: upstream.status } });
      writeJson(ex, upstream.status, bytes, { 'content-type': contentType || 'application/json' });
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw invalidAnswer(backend.name);
    }
    const answer = codecs[from].encodeResponse(codecs[backend.protocol].decodeResponse(parsed));
    capture?.record('outbound_response', { payload: answer, metadata: { status: upstream.status } });
    writeJson(ex, upstream.status, answer);
  };
}

/** A Fastify route that hands its reply to the chat pipeline (onResponse hooks still run at the end). */
export function fastifyChatHandler(run: (ex: ChatExchange) => Promise<void>) {
  return function chatRoute(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    reply.hijack();
    return run({
      id: request.id,
      method: request.method,
      url: request.url,
      headers: request.headers,
      ip: request.ip,
      authKeyName: request.authKeyName,
      body: request.body,
      rawBody: request.rawBody,
      state: request.proxyState,
      res: reply.raw,
      baseHeaders: reply.getHeaders() as OutgoingHttpHeaders,
    });
  };
}

/** Lists the default backend's models in the client's protocol. */
export function createModelsHandler(protocol: Protocol, registry: BackendRegistry) {
  return async function listModels(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const backend = registry.defaultBackend;
    request.proxyState.backend = backend.name;
    const controller = abortOnClientGone(reply.raw);
    try {
      return reply.send(codecs[protocol].encodeModelList(await backend.listModels(controller)));
    } catch (err) {
      throw upstreamFailure(err, backend.name, controller);
    }
  };
}
