import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { OwnAnswerTap, Responder } from './respond.js';
import type { RequestBody } from './request-body.js';
import type { RequestState } from './state.js';

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

/** What the chat lane knows of a request when it hands it to the pipeline. */
export interface ReceivedRequest extends Responder {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly ip: string;
  readonly authKeyName: string | null;
  readonly json: RequestBody | undefined;
}

/**
 * A request as the chat lane hands it over: `body` and `rawBody` are parsed and decoded from `json` only if
 * a step reads them (docs/performance.md, "Large bodies"), through getters on this class's prototype.
 *
 * Not getters written into an object literal: each such literal, with closures of its own, gets a hidden
 * class (map) of its own, which V8 links from the shared map's transitions in the old generation; until the
 * next full collection, that link kept every request's whole graph alive through young-generation
 * collections, so each request promoted ~13 KB to the old generation and a steadily loaded proxy ran a full
 * collection every few seconds (docs/performance.md, "Where a streamed request's time went").
 *
 * A copy made by spreading (`{ ...ex }`) carries own fields only: one that changes the body sets `json`,
 * `body`, `rawBody` and `rawBytes` itself, as every copy in the pipeline does.
 */
export class ReceivedExchange implements ChatExchange {
  readonly res: ServerResponse;
  readonly id: string;
  readonly url: string;
  readonly baseHeaders: Readonly<OutgoingHttpHeaders>;
  readonly state: RequestState;
  readonly ownAnswer: OwnAnswerTap | undefined;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly ip: string;
  readonly authKeyName: string | null;
  readonly json: RequestBody | undefined;
  readonly rawBytes: Buffer | undefined;

  constructor(request: ReceivedRequest) {
    this.res = request.res;
    this.id = request.id;
    this.url = request.url;
    this.baseHeaders = request.baseHeaders;
    this.state = request.state;
    this.ownAnswer = request.ownAnswer;
    this.method = request.method;
    this.headers = request.headers;
    this.ip = request.ip;
    this.authKeyName = request.authKeyName;
    this.json = request.json;
    this.rawBytes = request.json?.bytes;
  }

  get body(): unknown {
    return this.json?.value;
  }

  get rawBody(): string | undefined {
    return this.json?.text;
  }
}
