/**
 * Reasoning signatures on the request path (README, "Reasoning between families"): a translated request's
 * wrapped signatures are opened before it is encoded for the backend (`prepare.ts`), and a translated answer's
 * signatures of another family are wrapped for the client (`relay.ts`). The sealer is built once at start
 * from `PROXY_STATE_SECRET`, or with a per-process random key when it is unset.
 */
import type { ChatRequest } from '../protocols/canonical.js';
import {
  createSignatureSealer,
  openRequestSignatures,
  signatureKey,
  WRAP_PREFIX,
  type SignatureSealer,
} from '../protocols/signatures.js';
import type { Protocol } from '../protocols/types.js';

export interface SignatureDeps {
  readonly sealer: SignatureSealer;
  /** Where a dropped signature is reported: its place and why, never its value. */
  readonly log: { warn?(obj: object, msg: string): void };
}

let processSealer: SignatureSealer | undefined;

/** The sealer of a pipeline built without one (unit tests): a per-process random key. */
export function processSignatureSealer(): SignatureSealer {
  processSealer ??= createSignatureSealer(signatureKey(undefined));
  return processSealer;
}

/** Opens the signatures of a translated request for `backend` (see `openRequestSignatures`). */
export function openSignatures(
  req: ChatRequest,
  backend: Protocol,
  deps: SignatureDeps,
  requestId: string,
): void {
  openRequestSignatures(req, backend, deps.sealer, ({ at }) => warnDropped(deps, requestId, at));
}

/** The bytes every wrapped signature starts with, as JSON text (`"lip1.`). */
const WRAP_MARK = `"${WRAP_PREFIX}.`;
const WRAP_MARK_BYTES = Buffer.from(WRAP_MARK);

/**
 * Whether a same-protocol body may hold a wrapped signature: never for OpenAI chat (no field carries one),
 * else one search of its bytes (or text) for the wrap's start; a body without them (changed by a step) is
 * looked at.
 */
export function mayHoldWraps(protocol: Protocol, received: string | Buffer | undefined): boolean {
  if (protocol === 'openai') return false;
  if (received === undefined) return true;
  return typeof received === 'string'
    ? received.includes(WRAP_MARK)
    : received.indexOf(WRAP_MARK_BYTES) !== -1;
}

/** A wrap that does not verify, reported by place and reason: never its value. */
export function warnDropped(deps: SignatureDeps, requestId: string, at: string): void {
  deps.log.warn?.(
    { request_id: requestId, at, reason: 'tampered' },
    'Reasoning signature dropped: its wrap does not verify (changed, or sealed by another proxy)',
  );
}
