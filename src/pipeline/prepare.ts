import type { Backend } from '../backends/types.js';
import { codecs } from '../protocols/registry.js';
import type { Protocol } from '../protocols/types.js';
import type { Redactor } from '../redaction/redactor.js';
import type { ChatExchange } from './exchange.js';
import type { RequestCapture } from './record.js';
import type { ChatRoute } from './route.js';

/** The request as it goes to the backend. */
export interface PreparedRequest {
  /** In the backend's wire protocol. */
  readonly body: Record<string, unknown>;
  /** The client's exact bytes (or text), when `body` is the client's body unchanged: sent as they came. */
  readonly rawBody: string | Buffer | undefined;
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
): PreparedRequest {
  const { clientBody } = route;
  // The client's body as received: bytes when the server path kept them, else text.
  const received = ex.rawBytes ?? ex.rawBody;
  capture?.record('inbound_request', {
    headers: ex.headers,
    payload: clientBody,
    payloadJson: received,
    metadata: { method: ex.method, url: ex.url, protocol: from },
  });
  let body = clientBody;
  if (scrubPrompts) {
    // The bytes when the chat lane kept them: the text is never decoded for a scan (docs/performance.md).
    const scrubbed = redactor.redactPromptSecrets(clientBody, ex.json?.bytes ?? ex.rawBody);
    if (scrubbed.changed) body = scrubbed.body as Record<string, unknown>;
  }
  const outbound = wireBody(body, from, route.backend, route.model, route.stream);
  const rawBody = outbound === clientBody ? received : undefined;
  capture?.record('outbound_request', {
    payload: outbound,
    payloadJson: rawBody,
    metadata: { protocol: route.backend.protocol, stream: route.stream },
  });
  return { body: outbound, rawBody };
}
