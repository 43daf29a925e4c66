import type { IncomingHttpHeaders } from 'node:http';
import type { Responder } from '../server/respond.js';

/**
 * One chat request as the pipeline sees it, whichever server path took it: the chat lane (plain node:http,
 * the hot path) or a Fastify route (requests the lane leaves to Fastify, e.g. CORS ones).
 */
export interface ChatExchange extends Responder {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  /** The client address, after trusted-proxy resolution. */
  readonly ip: string;
  /** The name of the proxy key that let the request in (never the key), or null. */
  readonly authKeyName: string | null;
  readonly body: unknown;
  /** The JSON body exactly as received, so an unchanged body is forwarded without re-serialising. */
  readonly rawBody: string | undefined;
  /** The same body as the bytes received, when the server path kept them: forwarded without encoding. */
  readonly rawBytes?: Buffer | undefined;
}
