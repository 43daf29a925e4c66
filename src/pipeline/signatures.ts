/**
 * Reasoning signatures on the request path (README, "Reasoning between families"): a translated request's
 * wrapped signatures are opened before it is encoded for the backend (`prepare.ts`), and a translated answer's
 * signatures of another family are wrapped for the client (`relay.ts`). The sealer is built once at start
 * from `PROXY_STATE_SECRET`, or with a per-process random key when it is unset.
 */
import type { ChatRequest } from '../protocols/canonical.js';
import {
  createSignatureSealer,
  openIdCarriers,
  openRequestSignatures,
  signatureKey,
  WRAP_PREFIX,
  type SignatureSealer,
} from '../protocols/signatures.js';
import type { Protocol } from '../protocols/types.js';
import { ID_MARK } from '../protocols/signatures-id.js';
import { ByteNeedle } from '../protocols/byte-needle.js';

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

/**
 * Opens the signatures of a translated request from a client of `client`'s protocol for `backend`: an OpenAI
 * chat client's tool call ids first (`openIdCarriers`), then every client's (`openRequestSignatures`).
 */
export function openSignatures(
  req: ChatRequest,
  client: Protocol,
  backend: Protocol,
  deps: SignatureDeps,
  requestId: string,
): void {
  const onDrop = ({ at }: { at: string }) => warnDropped(deps, requestId, at);
  if (client === 'openai') openIdCarriers(req, deps.sealer, onDrop);
  openRequestSignatures(req, backend, deps.sealer, onDrop);
}

/**
 * What a body that may hold a wrapped signature holds, per protocol, as JSON text: a wrap's start (`"lip1.`),
 * or for OpenAI chat the tool call id carrier's mark (`__lip1_`).
 */
const WRAP_MARK = `"${WRAP_PREFIX}.`;
const MARKS: Record<Protocol, ByteNeedle> = {
  openai: new ByteNeedle(ID_MARK),
  responses: new ByteNeedle(WRAP_MARK),
  anthropic: new ByteNeedle(WRAP_MARK),
  gemini: new ByteNeedle(WRAP_MARK),
};

/**
 * Whether a same-protocol body may hold a wrapped signature: one search of its bytes (or text) for its
 * protocol's mark; a body without them (changed by a step) is looked at.
 */
export function mayHoldWraps(protocol: Protocol, received: string | Buffer | undefined): boolean {
  if (received === undefined) return true;
  const mark = MARKS[protocol];
  // A needle, not `Buffer.indexOf` given bytes: that call takes the slow way into C++ (byte-needle.ts).
  return typeof received === 'string' ? received.includes(mark.text) : mark.in(received);
}

/** A wrap that does not verify, reported by place and reason: never its value. */
export function warnDropped(deps: SignatureDeps, requestId: string, at: string): void {
  deps.log.warn?.(
    { request_id: requestId, at, reason: 'tampered' },
    'Reasoning signature dropped: its wrap does not verify (changed, or sealed by another proxy)',
  );
}
