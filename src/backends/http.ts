import { Readable } from 'node:stream';
import { Pool, poolRequest, UNDICI_BODY_TIMEOUT, UNDICI_HEADERS_TIMEOUT } from './undici-lean.js';
import { onCancel, type CancelSignal } from './cancel.js';
import { ProxyError } from '../errors.js';
import type { UpstreamResponse } from './types.js';

export interface HttpSettings {
  /** Longest wait for the response head, and longest silence between body bytes. */
  timeoutMs: number;
}

let settings: HttpSettings = { timeoutMs: 120_000 };

/** One keep-alive connection pool per backend origin, reused across requests. */
const pools = new Map<string, Pool>();

/** Request URLs split once into pool origin and path: no URL parsing per request. */
const targets = new Map<string, { origin: string; path: string }>();
const MAX_CACHED_TARGETS = 1024;

export function configureUpstreamHttp(next: HttpSettings): void {
  settings = next;
  void closeUpstreamHttp();
}

function poolFor(origin: string): Pool {
  let pool = pools.get(origin);
  if (!pool) {
    pool = new Pool(origin, {
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      keepAliveTimeout: 10_000,
      connections: 256,
      pipelining: 1,
    });
    pools.set(origin, pool);
  }
  return pool;
}

function targetOf(url: string): { origin: string; path: string } {
  let target = targets.get(url);
  if (!target) {
    const parsed = new URL(url);
    target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
    if (targets.size >= MAX_CACHED_TARGETS) targets.clear();
    targets.set(url, target);
  }
  return target;
}

export async function closeUpstreamHttp(): Promise<void> {
  const closing = [...pools.values()].map((pool) => pool.close());
  pools.clear();
  await Promise.all(closing);
}

export interface UpstreamRequest {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string | Buffer;
  signal: CancelSignal;
  backendName: string;
  /** Read the answer whole (a non-streamed call): no body stream is made for it. */
  whole?: boolean;
}

/** Largest whole answer read from a backend. */
const WHOLE_BODY_LIMIT = 32 * 1024 * 1024;

/**
 * Sends a request upstream and resolves once the response head arrives. The body is left unread so that
 * streams pass through with backpressure. Transport failures become 502/504 ProxyErrors whose messages name
 * the backend but never its URL credentials or key.
 */
export async function sendUpstream(req: UpstreamRequest): Promise<UpstreamResponse> {
  try {
    const { origin, path } = targetOf(req.url);
    if (req.whole) {
      return await new Promise<UpstreamResponse>((resolve, reject) => {
        const answer = new WholeAnswer(req.signal, WHOLE_BODY_LIMIT, resolve, reject);
        poolFor(origin).dispatch(
          { path, method: req.method, headers: req.headers, body: req.body ?? null },
          answer,
        );
      });
    }
    const res = await poolRequest(poolFor(origin), {
      path,
      method: req.method,
      headers: req.headers,
      body: req.body,
      signal: req.signal,
    });
    const body = res.body;
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

const tooLarge = () => new ProxyError(502, 'Backend answer is too large', { code: 'upstream_too_large' });

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

/** GETs a small JSON document from a backend (its model list); refusals and non-JSON become ProxyErrors. */
export async function getJson(
  url: string,
  headers: Record<string, string>,
  signal: CancelSignal,
  backendName: string,
): Promise<unknown> {
  const res = await sendUpstream({ url, method: 'GET', headers, signal, backendName });
  const text = await readText(res.body);
  if (res.status >= 400) {
    throw new ProxyError(res.status, `Backend '${backendName}' refused to list models (HTTP ${res.status})`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ProxyError(502, `Backend '${backendName}' answered with invalid JSON`, {
      code: 'upstream_invalid',
    });
  }
}

/** A whole answer's body for readers of `body`: its bytes as one chunk (a class: no closure per answer). */
class OneChunk implements AsyncIterable<Uint8Array> {
  constructor(private readonly bytes: Buffer) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    yield this.bytes;
  }
}

/** Header names and values as undici hands them to a dispatch handler: [name, value, name, value, …]. */
function parseRawHeaders(raw: Buffer[]): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    const seen = headers[name];
    if (seen === undefined) headers[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else headers[name] = [seen, value];
  }
  return headers;
}

const CONTENT_TYPE = 'content-type';

/** The content type among raw headers, looked up without decoding the other names. */
function rawContentType(raw: Buffer[]): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === CONTENT_TYPE.length && name.toString('latin1').toLowerCase() === CONTENT_TYPE) {
      return raw[i + 1]!.toString('latin1');
    }
  }
  return undefined;
}

/**
 * A whole answer. Its headers are decoded only when read (an error to pass on, a capture): an answer that
 * goes to the client needs only its content type.
 */
class WholeResponse implements UpstreamResponse {
  private decoded: Record<string, string | string[]> | undefined;
  readonly body: OneChunk;
  readonly contentType: string | undefined;

  constructor(
    readonly status: number,
    private readonly rawHeaders: Buffer[],
    readonly bytes: Buffer,
  ) {
    this.body = new OneChunk(bytes);
    this.contentType = rawContentType(rawHeaders);
  }

  get headers(): Record<string, string | string[]> {
    return (this.decoded ??= parseRawHeaders(this.rawHeaders));
  }

  dispose(): void {}
}

/**
 * A non-streamed answer collected straight from undici's dispatch callbacks: no body stream, no async
 * resource, no promise per chunk — the request API's machinery, which a whole answer does not need. Honours
 * the pool's timeouts, the client going away (`signal`) and a size limit.
 */
class WholeAnswer {
  private status = 0;
  private rawHeaders: Buffer[] = [];
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private abort: ((err: Error) => void) | null = null;
  private readonly stopListening: () => void;

  constructor(
    private readonly signal: CancelSignal,
    private readonly limitBytes: number,
    private readonly resolve: (answer: UpstreamResponse) => void,
    private readonly reject: (err: Error) => void,
  ) {
    this.stopListening = onCancel(signal, () => this.abort?.(new Error('client gone')));
  }

  onConnect(abort: (err: Error) => void): void {
    if (this.signal.aborted) abort(new Error('client gone'));
    else this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200) return true;
    this.status = statusCode;
    this.rawHeaders = rawHeaders;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > this.limitBytes) {
      this.abort?.(tooLarge());
      return false;
    }
    this.chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    this.stopListening();
    const whole = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.resolve(new WholeResponse(this.status, this.rawHeaders, whole));
  }

  onError(err: Error): void {
    this.stopListening();
    this.reject(err);
  }
}
