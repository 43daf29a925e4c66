import type { AuthRefusal, FailureKind } from '../auth/gate.js';
import { errorEnvelope } from '../protocols/error-envelopes.js';
import type { Protocol } from '../protocols/types.js';
import { protocolForPath } from '../pipeline/route-table.js';

/** A refusal as the client gets it: status, headers and the body in the path's protocol envelope. */
export interface RenderedRefusal {
  status: 401 | 429;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

const REALM = 'Bearer realm="llm-interactive-proxy"';

/**
 * The 401 of each kind (README, Authentication: Responses): its challenge, the first sentence, and whether the
 * message goes on to say which header to send (not for an expired key: it was sent right).
 */
const UNAUTHORIZED: Record<FailureKind, { challenge: string; lead: string; hint?: false; code?: string }> = {
  missing: { challenge: REALM, lead: 'Missing API key.' },
  malformed: {
    challenge: `${REALM}, error="invalid_request"`,
    lead: 'Malformed API key credentials (empty, repeated, or not a Bearer token).',
  },
  invalid: {
    challenge: `${REALM}, error="invalid_token"`,
    lead: 'Invalid API key: use the proxy API key, not a provider key.',
  },
  expired: {
    challenge: `${REALM}, error="invalid_token", error_description="key expired"`,
    lead: 'API key expired: ask the operator of this proxy for a new key.',
    hint: false,
    code: 'key_expired',
  },
};

/** Which header to send, in the words of each protocol's SDK. */
const HEADER_HINTS: Record<Protocol, string> = {
  openai: 'Send it as "Authorization: Bearer <key>" (or in the x-api-key or x-goog-api-key header).',
  anthropic: 'Send it in the "x-api-key: <key>" header (or as "Authorization: Bearer <key>").',
  gemini: 'Send it in the "x-goog-api-key: <key>" header (or as "Authorization: Bearer <key>").',
  responses: 'Send it as "Authorization: Bearer <key>" (or in the x-api-key or x-goog-api-key header).',
};

export const BLOCKED_MESSAGE = 'Too many failed authentication attempts. Please try again later.';

/**
 * Renders the gate's refusal for the request's path, so each SDK raises its own authentication or rate-limit
 * error with a readable message. A fresh body per answer (refusals are not the hot path): a later hook that
 * decorates error bodies cannot leak into other responses.
 */
export function renderRefusal(refusal: AuthRefusal, url: string): RenderedRefusal {
  const protocol = protocolForPath(url);
  if (refusal.status === 429) {
    const { retryAfterSeconds } = refusal;
    const body = errorEnvelope(protocol, {
      status: 429,
      code: 'rate_limit_exceeded',
      message: BLOCKED_MESSAGE,
      retryAfter: retryAfterSeconds,
    });
    return { status: 429, headers: { 'retry-after': String(retryAfterSeconds) }, body };
  }
  const { challenge, lead, hint, code = 'invalid_api_key' } = UNAUTHORIZED[refusal.kind];
  const message = hint === false ? lead : `${lead} ${HEADER_HINTS[protocol]}`;
  const body = errorEnvelope(protocol, { status: 401, code, message });
  return { status: 401, headers: { 'www-authenticate': challenge }, body };
}

/** A refusal as the bytes of its answer, for a writer that sends them as they are (the chat lane). */
export interface RefusalText {
  readonly status: 401 | 429;
  readonly headers: Readonly<Record<string, string>>;
  /** The body, serialised. */
  readonly text: string;
}

/** Retry-After values remembered per protocol before the table starts again (blocks last 1 s to hours). */
const MAX_CACHED_RETRY_AFTERS = 256;

/** Per protocol: the 401 of each kind, and the 429 of each Retry-After value. */
const refusalTexts = new Map<Protocol, Map<FailureKind | number, RefusalText>>();

/**
 * {@link renderRefusal}, serialised once per protocol and kind (or Retry-After value) and then reused: an
 * attacker's requests are refused alike, and each refusal should cost as little as can be
 * (docs/performance.md, the attack row). The answer is frozen and never changed by its writer.
 */
export function refusalText(refusal: AuthRefusal, url: string): RefusalText {
  const protocol = protocolForPath(url);
  let texts = refusalTexts.get(protocol);
  if (texts === undefined) {
    texts = new Map();
    refusalTexts.set(protocol, texts);
  }
  const key = refusal.status === 429 ? refusal.retryAfterSeconds : refusal.kind;
  let text = texts.get(key);
  if (text === undefined) {
    const answer = renderRefusal(refusal, url);
    text = Object.freeze({
      status: answer.status,
      headers: Object.freeze(answer.headers),
      text: JSON.stringify(answer.body),
    });
    if (texts.size >= MAX_CACHED_RETRY_AFTERS + 4) texts.clear();
    texts.set(key, text);
  }
  return text;
}
