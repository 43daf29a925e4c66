import type { Backend } from '../backends/types.js';
import { jsonText } from '../protocols/json-text.js';
import { CONVERSATIONS } from '../protocols/conversation.js';
import { codecs } from '../protocols/registry.js';
import { applyReasoningSetting, type ReasoningSetting } from '../protocols/reasoning.js';
import type { Protocol } from '../protocols/types.js';
import type { Redactor } from '../redaction/redactor.js';
import type { ChatExchange } from './exchange.js';
import { forwardedHeaders } from './forward-headers.js';
import { asksStreamUsage, withStreamUsageBytes } from './usage-strip.js';
import type { RequestCapture } from './record.js';
import type { ChatRoute } from './route.js';
import {
  openSignatures,
  processSignatureSealer,
  warnDropped,
  mayHoldWraps,
  type SignatureDeps,
} from './signatures.js';
import { openWireSignatures } from '../protocols/signatures-wire.js';

/** The request as it goes to the backend. */
export interface PreparedRequest {
  /** In the backend's wire protocol. */
  readonly body: Record<string, unknown>;
  /**
   * The client's exact bytes (or text), when `body` is the client's body unchanged: sent as they came; or
   * `body` serialised, when it was for the capture.
   */
  readonly rawBody: string | Buffer | undefined;
  /** The client's headers the backend gets besides its own (same protocol only; see forward-headers.ts). */
  readonly headers: Readonly<Record<string, string>> | undefined;
  /**
   * The proxy asked an OpenAI stream for its usage (`stream_options.include_usage`) for a client that did
   * not: the relay takes the usage chunk out again (README, Teams: usage).
   */
  readonly stripUsage?: boolean;
  /** The fields this request left out with notice (README, "Fields that do not translate"), when any. */
  readonly dropped?: readonly string[];
}

/** Where `logDropped` writes. */
export interface DroppedFieldsLog {
  debug?(obj: object, msg: string): void;
}

/**
 * The debug line naming the fields one request to a backend left out with notice — beside `x-proxy-dropped`
 * and the capture's metadata (README, "Fields that do not translate") — once per attempt that dropped any, on
 * every path: their names and the backend, never their values.
 */
export function logDropped(
  log: DroppedFieldsLog,
  ex: ChatExchange,
  route: ChatRoute,
  request: PreparedRequest,
): void {
  const { dropped } = request;
  if (dropped !== undefined)
    log.debug?.(
      { request_id: ex.id, backend: route.backend.name, model: route.model, dropped },
      'Request fields dropped with notice',
    );
}

/** The body to send upstream: the client's own (same protocol), or translated through the canonical model. */
function wireBody(
  body: Record<string, unknown>,
  from: Protocol,
  backend: Backend,
  model: string,
  stream: boolean,
  signatures: SignatureDeps,
  requestId: string,
  received: string | Buffer | undefined,
  /** The body as a plain parsed object, when `body` is the chat lane's lazy view of it. */
  plain: Record<string, unknown> | undefined,
  /** The session's reasoning setting (`!/set(reasoning=…)`), when it has one. */
  reasoning: ReasoningSetting | undefined,
): { body: Record<string, unknown>; dropped?: string[] | undefined } {
  if (backend.protocol === from) {
    const wire = sameProtocolBody(body, from, model, signatures, requestId, received);
    // The session's reasoning in the body's own shape, as the protocol's encoder would write it.
    if (reasoning === undefined) return wire;
    return { ...wire, body: CONVERSATIONS[from].withReasoning(wire.body, reasoning) };
  }
  // The decoder reads every member: the parsed object, not the lazy view (whose every read goes through a
  // Proxy's traps — listing its names alone cost more than the rest of decoding).
  const canonical = codecs[from].decodeRequest(plain ?? body, { model, stream });
  // The session's reasoning replaces the client's: every backend gets it through the one table.
  if (reasoning !== undefined) applyReasoningSetting(canonical, reasoning);
  // Reasoning signatures: unwrapped for the family that made them, another family's never sent.
  openSignatures(canonical, from, backend.protocol, signatures, requestId);
  // The encoder may drop more (what this backend lacks), so the list is read after it ran.
  const encoded = codecs[backend.protocol].encodeRequest(canonical);
  return { body: encoded, dropped: canonical.dropped };
}

/** The client's own body for a backend of its protocol: its model set, wrapped signatures opened. */
function sameProtocolBody(
  body: Record<string, unknown>,
  from: Protocol,
  model: string,
  signatures: SignatureDeps,
  requestId: string,
  received: string | Buffer | undefined,
): { body: Record<string, unknown>; dropped?: string[] | undefined } {
  // Signatures wrapped for this client by an earlier translated answer: opened in the body's own shape.
  // One search of the bytes for the wrap's prefix, and nothing more, when there is none.
  if (mayHoldWraps(from, received)) {
    const opened = openWireSignatures(body, from, signatures.sealer, (at) =>
      warnDropped(signatures, requestId, at),
    );
    if (opened !== null) {
      const out = from === 'gemini' || opened.body.model === model ? opened.body : { ...opened.body, model };
      return { body: out, dropped: opened.dropped.length > 0 ? opened.dropped : undefined };
    }
  }
  // Gemini carries the model in the URL; the others in the body, where a backend prefix must go.
  if (from === 'gemini' || body.model === model) return { body };
  return { body: { ...body, model } };
}

/**
 * Step 2, prepare the request: configured secrets scrubbed from the prompt (README, Key hygiene), then the
 * body in the backend's protocol — the client's own bytes when nothing changed, so the hot path forwards
 * what it received without serialising it again.
 */
export function prepareRequest(
  ex: ChatExchange,
  route: ChatRoute,
  from: Protocol,
  redactor: Redactor,
  scrubPrompts: boolean,
  capture: RequestCapture | null,
  signatures: SignatureDeps = { sealer: processSignatureSealer(), log: {} },
  /** False for a failover attempt after the first: the client sent its request once, recorded once. */
  recordInbound = true,
): PreparedRequest {
  const { clientBody } = route;
  // The client's body as received: bytes when the server path kept them, else text.
  const received = ex.rawBytes ?? ex.rawBody;
  if (recordInbound) {
    capture?.record('inbound_request', {
      headers: ex.headers,
      payload: clientBody,
      payloadJson: received,
      metadata: { method: ex.method, url: ex.url, protocol: from },
    });
  }
  let body = clientBody;
  if (scrubPrompts) {
    // The bytes when the chat lane kept them: the text is never decoded for a scan (docs/performance.md).
    const scrubbed = redactor.redactPromptSecrets(clientBody, ex.json?.bytes ?? ex.rawBody);
    if (scrubbed.changed) body = scrubbed.body as Record<string, unknown>;
  }
  const wire = wireBody(
    body,
    from,
    route.backend,
    route.model,
    route.stream,
    signatures,
    ex.id,
    body === clientBody ? received : undefined,
    body === clientBody && ex.json !== undefined && route.backend.protocol !== from
      ? (ex.json.value as Record<string, unknown>)
      : undefined,
    ex.state.reasoning,
  );
  let outbound = wire.body;
  let rawBody = outbound === clientBody ? received : undefined;
  // An OpenAI stream passed through is asked for its usage: the bytes spliced when the body has no
  // `stream_options` of its own, else the object rewritten.
  let stripUsage = false;
  if (
    route.stream &&
    from === 'openai' &&
    route.backend.protocol === 'openai' &&
    !asksStreamUsage(outbound)
  ) {
    stripUsage = true;
    const spliced = rawBody === undefined ? null : withStreamUsageBytes(rawBody);
    if (spliced !== null) rawBody = spliced;
    else {
      const options = outbound.stream_options;
      outbound = {
        ...outbound,
        stream_options: {
          ...(typeof options === 'object' && options !== null ? options : {}),
          include_usage: true,
        },
      };
      rawBody = undefined;
    }
  }
  // Fields left out with notice: named in `x-proxy-dropped` on the answer, in the capture and (`logDropped`)
  // in a debug line.
  const dropped = wire.dropped !== undefined && wire.dropped.length > 0 ? wire.dropped : undefined;
  // Set on every attempt: a failed attempt's drops are not the answering one's.
  ex.state.dropped = dropped;
  const headers = forwardedHeaders(ex.headers, from, route.backend.protocol);
  // A body rewritten (translated) is serialised once when it is captured: the backend sends that text, as
  // it would have serialised it itself, and with its serialiser (docs/performance.md, "The wire capture's
  // cost").
  if (capture !== null && rawBody === undefined) rawBody = jsonText(outbound);
  capture?.record('outbound_request', {
    headers: route.backend.headersFor(headers),
    payload: outbound,
    payloadJson: rawBody,
    metadata:
      wire.dropped === undefined
        ? { protocol: route.backend.protocol, stream: route.stream }
        : { protocol: route.backend.protocol, stream: route.stream, dropped: wire.dropped },
  });
  const prepared: PreparedRequest = stripUsage
    ? { body: outbound, rawBody, headers, stripUsage }
    : { body: outbound, rawBody, headers };
  return dropped === undefined ? prepared : { ...prepared, dropped };
}
