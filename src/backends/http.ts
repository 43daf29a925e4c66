import { Readable } from 'node:stream';
import { Pool, poolRequest, UNDICI_BODY_TIMEOUT, UNDICI_HEADERS_TIMEOUT } from './undici-lean.js';
import type { CancelSignal } from './cancel.js';
import { ConnectionGate, DEFAULT_MAX_CONNECTIONS } from './connection-gate.js';
import { UpstreamDeadlines } from './deadlines.js';
import { StreamPacer } from './stream-pacer.js';
import { StreamingAnswer, tooLarge, WholeAnswer } from './dispatch-answers.js';
import { ProxyError } from '../proxy-error.js';
import type { UpstreamResponse } from './types.js';

export interface HttpSettings {
  /**
   * Longest wait for the response head (a wait for a free connection included), and longest silence
   * between body bytes.
   */
  timeoutMs: number;
  /** Connections per backend, by backend name (`backends.<name>.max_connections`); else the default. */
  maxConnections?: Readonly<Record<string, number>>;
  /** Streamed calls started per turn of the event loop (`StreamPacer`); the default otherwise. */
  streamsPerTurn?: number;
}

export interface UpstreamRequest {
  url: string;
  method: 'GET' | 'POST' | 'DELETE';
  headers: Record<string, string>;
  body?: string | Buffer;
  signal: CancelSignal;
  backendName: string;
  /** Read the answer whole (a non-streamed call): no body stream is made for it. */
  whole?: boolean;
  /** A streamed call whose event stream the caller takes whole (UpstreamResponse.take). */
  direct?: boolean;
}

/** Largest whole answer read from a backend. */
const WHOLE_BODY_LIMIT = 32 * 1024 * 1024;

/** Request URLs kept split into origin and path, at most (the cache starts again when full). */
const MAX_CACHED_TARGETS = 1024;

/** One backend's connections: the pool, and the gate that admits calls to it. */
interface Connections {
  readonly pool: Pool;
  readonly gate: ConnectionGate;
}

/**
 * The proxy's connections to its backends: one keep-alive pool per backend and origin, reused across
 * requests, behind a gate that keeps the calls within the backend's connection limit (`ConnectionGate`:
 * the wait for a connection is timed, and long streams leave room for quick calls), and the timeout every
 * call shares. The server makes one at start, hands it to the backends, and closes it at shutdown; a test
 * makes its own, so no two share pools or settings by accident.
 */
export class UpstreamHttp {
  readonly timeoutMs: number;
  /** The timeouts of dispatched calls (whole answers, direct streams): one sweep, not a timer per call. */
  private readonly deadlines: UpstreamDeadlines;
  private readonly maxConnections: Readonly<Record<string, number>>;
  /** Streams start a bounded batch per turn of the event loop, so that quick calls are not stuck behind them. */
  private readonly pacer: StreamPacer;
  private readonly pools = new Map<string, Connections>();
  /** Request URLs split once into pool origin and path: no URL parsing per request. */
  private readonly targets = new Map<string, { origin: string; path: string }>();

  constructor(settings: HttpSettings) {
    this.timeoutMs = settings.timeoutMs;
    this.deadlines = new UpstreamDeadlines(settings.timeoutMs);
    this.maxConnections = settings.maxConnections ?? {};
    this.pacer = new StreamPacer(settings.streamsPerTurn);
  }

  /**
   * Sends a request upstream and resolves once the response head arrives. The body is left unread so that
   * streams pass through with backpressure. Transport failures become 502/504 ProxyErrors whose messages
   * name the backend but never its URL credentials or key.
   */
  async send(req: UpstreamRequest): Promise<UpstreamResponse> {
    try {
      const { origin, path } = this.targetOf(req.url);
      const { pool, gate } = this.connectionsFor(req.backendName, origin);
      // Streams hold their connection long; quick calls (whole answers, model lists) have a reserve.
      const stream = !req.whole && req.method === 'POST';
      let waitedSince = 0;
      // A stream's turn to start: the wait counts against the timeout as a wait for a connection does.
      if (stream && !this.pacer.tryStart()) {
        waitedSince = Date.now();
        await this.pacer.wait(req.signal, clientGone);
      }
      if (!gate.tryEnter(stream)) {
        if (waitedSince === 0) waitedSince = Date.now();
        await gate.wait(stream, req.signal, clientGone);
      }
      if (req.whole || req.direct) {
        return await new Promise<UpstreamResponse>((resolve, reject) => {
          const answer = req.whole
            ? new WholeAnswer(req.signal, WHOLE_BODY_LIMIT, resolve, reject, this.deadlines)
            : new StreamingAnswer(req.signal, WHOLE_BODY_LIMIT, resolve, reject, this.deadlines);
          answer.holdsPlaceIn(gate, stream, waitedSince);
          pool.dispatch({ path, method: req.method, headers: req.headers, body: req.body ?? null }, answer);
        });
      }
      const timeout =
        waitedSince > 0 ? Math.max(1, this.timeoutMs - (Date.now() - waitedSince)) : this.timeoutMs;
      let res: Awaited<ReturnType<typeof poolRequest>>;
      try {
        res = await poolRequest(pool, {
          path,
          method: req.method,
          headers: req.headers,
          body: req.body,
          signal: req.signal,
          headersTimeout: timeout,
          bodyTimeout: this.timeoutMs,
        });
      } catch (err) {
        gate.leave(stream);
        throw err;
      }
      const body = res.body;
      // The connection is the call's until its body is read or dropped.
      body.once('close', () => gate.leave(stream));
      return {
        status: res.statusCode,
        headers: res.headers,
        body,
        dispose: () => {
          if (!body.destroyed) body.destroy();
        },
      };
    } catch (err) {
      throw upstreamFailure(err, req.backendName, req.signal);
    }
  }

  /**
   * The server accepted a connection (its `connection` event): while connections keep arriving, streams start
   * at a slower pace so that accepts, and quick calls, keep up (`StreamPacer`).
   */
  connectionAccepted(): void {
    this.pacer.connectionAccepted();
  }

  /** GETs a small JSON document from a backend (its model list); refusals and non-JSON become ProxyErrors. */
  async getJson(
    url: string,
    headers: Record<string, string>,
    signal: CancelSignal,
    backendName: string,
  ): Promise<unknown> {
    const res = await this.send({ url, method: 'GET', headers, signal, backendName });
    const text = await readText(res.body);
    if (res.status >= 400) {
      throw new ProxyError(
        res.status,
        `Backend '${backendName}' refused to list models (HTTP ${res.status})`,
      );
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new ProxyError(502, `Backend '${backendName}' answered with invalid JSON`, {
        code: 'upstream_invalid',
      });
    }
  }

  /** Closes every pool once its calls in flight end; a later call opens a new pool. */
  async close(): Promise<void> {
    const closing = [...this.pools.values()].map(({ pool }) => pool.close());
    this.pools.clear();
    await Promise.all(closing);
  }

  /** The backend's gate and pool at `origin`, made on first use. */
  private connectionsFor(backendName: string, origin: string): Connections {
    const key = `${backendName} ${origin}`;
    let connections = this.pools.get(key);
    if (!connections) {
      const max = this.maxConnections[backendName] ?? DEFAULT_MAX_CONNECTIONS;
      const pool = new Pool(origin, {
        // Off here: dispatched calls are timed by `deadlines`; request-API calls set their own (in `send`).
        headersTimeout: 0,
        bodyTimeout: 0,
        keepAliveTimeout: 10_000,
        // The gate admits at most `max` calls, one per connection: the pool never queues one itself.
        connections: max,
        pipelining: 1,
      });
      connections = { pool, gate: new ConnectionGate(max, this.timeoutMs, backendName) };
      this.pools.set(key, connections);
    }
    return connections;
  }

  private targetOf(url: string): { origin: string; path: string } {
    let target = this.targets.get(url);
    if (!target) {
      const parsed = new URL(url);
      target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
      if (this.targets.size >= MAX_CACHED_TARGETS) this.targets.clear();
      this.targets.set(url, target);
    }
    return target;
  }
}

const clientGone = () => new ProxyError(499, 'Client closed the request', { code: 'client_closed' });

export function upstreamFailure(err: unknown, backendName: string, signal?: CancelSignal): Error {
  if (err instanceof ProxyError) return err;
  if (signal?.aborted) return new ProxyError(499, 'Client closed the request', { code: 'client_closed' });
  const code = (err as { code?: string } | null)?.code;
  if (code === UNDICI_HEADERS_TIMEOUT || code === UNDICI_BODY_TIMEOUT) {
    return new ProxyError(504, `Backend '${backendName}' did not answer in time`, {
      code: 'upstream_timeout',
    });
  }
  return new ProxyError(502, `Backend '${backendName}' is unreachable (${code ?? 'unknown'})`, {
    code: 'upstream_unreachable',
  });
}

/** Reads a whole (small, non-streamed) upstream body as text, refusing one over `limitBytes`. */
export async function readText(
  body: AsyncIterable<Uint8Array> | UpstreamResponse,
  limitBytes = WHOLE_BODY_LIMIT,
): Promise<string> {
  return (await readBytes(body, limitBytes)).toString('utf8');
}

/** Reads a whole (small, non-streamed) upstream body as bytes, refusing one over `limitBytes`. */
export function readBytes(
  body: AsyncIterable<Uint8Array> | UpstreamResponse,
  limitBytes = WHOLE_BODY_LIMIT,
): Promise<Buffer> {
  if ('status' in body) {
    if (body.bytes === undefined) return readBytes(body.body, limitBytes);
    return body.bytes.length > limitBytes ? Promise.reject(tooLarge()) : Promise.resolve(body.bytes);
  }
  if (!(body instanceof Readable)) return readIterable(body, limitBytes);
  // Plain 'data' events: far cheaper per request than an async iterator over the stream.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        body.destroy();
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    body.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    body.once('error', reject);
  });
}

async function readIterable(body: AsyncIterable<Uint8Array>, limitBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > limitBytes) throw tooLarge();
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks, size);
}
