import type { IncomingHttpHeaders } from 'node:http';
import type { Responder } from '../server/respond.js';

/**
 * One chat request as the pipeline sees it, as the chat lane (src/server/chat-lane.ts) hands it over: the
 * response to write to, and the request read, authenticated and parsed.
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
  /** The same body as the bytes received: forwarded without encoding. */
  readonly rawBytes?: Buffer | undefined;
}
