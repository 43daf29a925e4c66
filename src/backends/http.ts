import type { CancelSignal } from './cancel.js';
import { Agent, errors as undiciErrors, request } from 'undici';
import { ProxyError } from '../errors.js';
import type { UpstreamResponse } from './types.js';

/** One pooled dispatcher for all backends: keep-alive connections are reused across requests. */
let sharedAgent: Agent | null = null;

export interface HttpSettings {
  /** Longest wait for the response head, and longest silence between body bytes. */
  timeoutMs: number;
}

let settings: HttpSettings = { timeoutMs: 120_000 };

export function configureUpstreamHttp(next: HttpSettings): void {
  settings = next;
  const old = sharedAgent;
  sharedAgent = null;
  void old?.close();
}

function agent(): Agent {
  sharedAgent ??= new Agent({
    headersTimeout: settings.timeoutMs,
    bodyTimeout: settings.timeoutMs,
    keepAliveTimeout: 10_000,
    connections: 256,
    pipelining: 1,
  });
  return sharedAgent;
}

export async function closeUpstreamHttp(): Promise<void> {
  const old = sharedAgent;
  sharedAgent = null;
  await old?.close();
}

export interface UpstreamRequest {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  signal: CancelSignal;
  backendName: string;
}

/**
 * Sends a request upstream and resolves once the response head arrives. The body is left unread so that
 * streams pass through with backpressure. Transport failures become 502/504 ProxyErrors whose messages name
 * the backend but never its URL credentials or key.
 */
export async function sendUpstream(req: UpstreamRequest): Promise<UpstreamResponse> {
  try {
    const res = await request(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      signal: req.signal,
      dispatcher: agent(),
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
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return new ProxyError(504, `Backend '${backendName}' did not answer in time`, {
      code: 'upstream_timeout',
    });
  }
  const code = (err as { code?: string } | null)?.code ?? 'unknown';
  return new ProxyError(502, `Backend '${backendName}' is unreachable (${code})`, {
    code: 'upstream_unreachable',
  });
}

/** Reads a whole (small, non-streamed) upstream body as text. */
export async function readText(
  body: AsyncIterable<Uint8Array>,
  limitBytes = 32 * 1024 * 1024,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > limitBytes)
      throw new ProxyError(502, 'Backend answer is too large', { code: 'upstream_too_large' });
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}
