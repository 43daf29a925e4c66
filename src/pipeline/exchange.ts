import type { IncomingHttpHeaders } from 'node:http';
import type { Responder } from './respond.js';
import type { RequestBody } from './request-body.js';

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
  /**
   * The JSON body, checked, read as far as a step asks: a field (`json.field('model')`, or
   * `json.fields.model`) parses that member alone. Undefined when the request had no body.
   */
  readonly json?: RequestBody | undefined;
  /** The whole body parsed (on first read, when it comes from `json`). */
  readonly body: unknown;
  /** The JSON body as the text received (decoded on first read), so an unchanged body is not re-serialised. */
  readonly rawBody: string | undefined;
  /** The same body as the bytes received: forwarded without encoding. */
  readonly rawBytes?: Buffer | undefined;
}
