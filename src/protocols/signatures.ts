/**
 * Reasoning signatures across families (README, "Reasoning between families"): a signature goes back to the family
 * that made it byte for byte; to travel through a client of another family it is wrapped as
 * `lip1.<family>.<payload>.<mac>` — the payload the signature in base64url, the MAC an HMAC-SHA256 of
 * everything before it — and unwrapped on the way back. A wrapped signature whose MAC fails is not ours or
 * was changed: `unwrap` answers null and it is never forwarded.
 *
 * The key is a parameter so that it can come from `PROXY_STATE_SECRET` (derived for this purpose only) or be
 * a per-process random one; it never appears in a wrapped signature.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ChatRequest, ChatResponse, ContentPart, Signature, StreamEvent } from './canonical.js';
import type { Protocol } from './types.js';
import { bareId, idCarrying, openIdCarrier, type CarriedReasoning } from './signatures-id.js';

export type { Signature } from './canonical.js';

/** Who made a signature: a protocol family, as the codecs name them. */
export type SignatureFamily = string;

/** The family of each protocol: the Responses API's `encrypted_content` is OpenAI's, as chat would be. */
export const FAMILIES: Record<Protocol, SignatureFamily> = {
  openai: 'openai',
  responses: 'openai',
  anthropic: 'anthropic',
  gemini: 'gemini',
};

/** Anthropic's `redacted_thinking` travels under its own family name, so that it comes back redacted. */
const REDACTED = '-redacted';

export interface SignatureSealer {
  wrap(signature: Signature): string;
  /** The signature inside a wrapped one; null when it is not wrapped, not ours, or changed. */
  unwrap(text: string): Signature | null;
  /** The MAC of `text` under the sealing key, in base64url (43 characters): for other carriers (`signatures-id.ts`). */
  tag(text: string): string;
}

/** What every wrapped signature starts with (then a dot). */
export const WRAP_PREFIX = 'lip1';
const PREFIX = WRAP_PREFIX;
const FAMILY = /^[a-z][a-z0-9-]{0,31}$/;
/** What a key is derived for: a secret shared with other uses yields a key of this use only. */
const PURPOSE = 'llm-interactive-proxy/reasoning-signatures/v1';

/** The sealing key: derived from the shared secret when one is set, else random for this process. */
export function signatureKey(secret: string | undefined): Buffer {
  if (secret === undefined || secret === '') return randomBytes(32);
  return createHmac('sha256', secret).update(PURPOSE).digest();
}

/** True for text that has the wrapped shape (whether or not its MAC holds). */
export function isWrapped(text: string): boolean {
  return text.startsWith(`${PREFIX}.`);
}

export function createSignatureSealer(key: Buffer): SignatureSealer {
  const mac = (head: string): Buffer => createHmac('sha256', key).update(head).digest();
  return {
    wrap({ family, value }) {
      if (!FAMILY.test(family)) throw new Error(`not a signature family: ${family}`);
      const head = `${PREFIX}.${family}.${Buffer.from(value, 'utf8').toString('base64url')}`;
      return `${head}.${mac(head).toString('base64url')}`;
    },
    unwrap(text) {
      const parts = text.split('.');
      if (parts.length !== 4 || parts[0] !== PREFIX) return null;
      const [, family, payload, given] = parts as [string, string, string, string];
      if (!FAMILY.test(family)) return null;
      const expected = mac(`${PREFIX}.${family}.${payload}`);
      const actual = Buffer.from(given, 'base64url');
      if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return null;
      return { family, value: Buffer.from(payload, 'base64url').toString('utf8') };
    },
    tag: (text) => mac(text).toString('base64url'),
  };
}

/** Why a client's signature was not forwarded: a wrap whose MAC fails (changed, or another proxy's). */
export interface DroppedSignature {
  /** Where in the canonical request: `messages[i].content[j]`. */
  at: string;
  reason: 'tampered';
}

/**
 * The reasoning signatures of a client's request, made ready for a backend of `backend`'s family, in place:
 * wrapped ones are unwrapped (a wrap whose MAC fails is dropped and reported, never forwarded); reasoning
 * another family signed is left out, since it means nothing to this backend and its signature may not be
 * sent. Reasoning without a signature stays: each encoder decides whether its protocol can carry it.
 */
export function openRequestSignatures(
  req: ChatRequest,
  backend: Protocol,
  sealer: SignatureSealer,
  onDrop: (dropped: DroppedSignature) => void,
): void {
  const family = FAMILIES[backend];
  req.messages.forEach((message, i) => {
    if (message.role !== 'assistant' || !message.content.some((p) => p.type === 'reasoning')) return;
    const kept: ContentPart[] = [];
    message.content.forEach((part, j) => {
      if (part.type !== 'reasoning' || part.signature === undefined) {
        kept.push(part);
        return;
      }
      let signature: Signature | null = part.signature;
      let redacted = part.redacted;
      if (isWrapped(signature.value)) {
        const opened = openWrapped(signature.value, sealer);
        if (opened === null) {
          onDrop({ at: `messages[${i}].content[${j}]`, reason: 'tampered' });
          return;
        }
        signature = { family: opened.family, value: opened.value };
        redacted = redacted || opened.redacted;
      }
      if (signature.family !== family) return;
      kept.push({ type: 'reasoning', text: part.text, signature, ...(redacted ? { redacted } : {}) });
    });
    message.content = kept;
  });
}

/** A wrapped signature opened: its family, its value, and whether it was Anthropic's redacted thinking. */
export function openWrapped(
  text: string,
  sealer: SignatureSealer,
): (Signature & { redacted: boolean }) | null {
  const signature = sealer.unwrap(text);
  if (signature === null) return null;
  if (!signature.family.endsWith(REDACTED)) return { ...signature, redacted: false };
  return { family: signature.family.slice(0, -REDACTED.length), value: signature.value, redacted: true };
}

/** One signature as a client of `client`'s protocol gets it: its own family's as is, another's wrapped. */
export function signatureForClient(
  signature: Signature,
  redacted: boolean | undefined,
  client: Protocol,
  sealer: SignatureSealer,
): Signature {
  const family = FAMILIES[client];
  if (signature.family === family) return signature;
  const inner = redacted ? { family: signature.family + REDACTED, value: signature.value } : signature;
  return { family, value: sealer.wrap(inner) };
}

/** The signatures of a translated answer, wrapped where they came from another family (in place). */
export function sealResponseSignatures(res: ChatResponse, client: Protocol, sealer: SignatureSealer): void {
  if (client === 'openai') carryInIds(res, sealer);
  for (const part of res.content) {
    if (part.type === 'reasoning' && part.signature !== undefined)
      part.signature = signatureForClient(part.signature, part.redacted, client, sealer);
  }
}

/** The same for a translated stream's signature events (other events pass untouched). */
export function sealStreamEvent(event: StreamEvent, client: Protocol, sealer: SignatureSealer): StreamEvent {
  if (event.type !== 'reasoning_signature') return event;
  return { ...event, signature: signatureForClient(event.signature, event.redacted, client, sealer) };
}

/**
 * An OpenAI chat client has no field for a signature: the signatures before each tool call ride on its id
 * (`signatures-id.ts`), each with whether it came before the answer's text (in place).
 */
function carryInIds(res: ChatResponse, sealer: SignatureSealer): void {
  let pending: CarriedReasoning[] = [];
  let sawText = false;
  for (const part of res.content) {
    if (part.type === 'reasoning') {
      if (part.signature?.value)
        pending.push({ part: { ...part, signature: part.signature }, lead: !sawText });
    } else if (part.type === 'text') sawText = true;
    else {
      part.id = idCarrying(part.id, pending, sealer);
      pending = [];
      sawText = false;
    }
  }
}

/**
 * The same for a stream to an OpenAI chat client: each signature (with the reasoning text before it) is held
 * until the next tool call starts, whose id then carries it. Other clients: undefined (nothing to do).
 */
export function streamIdCarrier(
  client: Protocol,
  sealer: SignatureSealer,
): ((event: StreamEvent) => StreamEvent) | undefined {
  if (client !== 'openai') return undefined;
  let pending: CarriedReasoning[] = [];
  let text = '';
  let sawText = false;
  return (event) => {
    switch (event.type) {
      case 'reasoning':
        text += event.text;
        return event;
      case 'reasoning_signature':
        if (event.signature.value) {
          const redacted = event.redacted ? { redacted: true } : {};
          pending.push({
            part: { type: 'reasoning', text, signature: event.signature, ...redacted },
            lead: !sawText,
          });
        }
        text = '';
        return event;
      case 'text':
        sawText = true;
        return event;
      case 'tool_call_start': {
        sawText = false;
        if (pending.length === 0) return event;
        const id = idCarrying(event.id, pending, sealer);
        pending = [];
        return { ...event, id };
      }
      default:
        return event;
    }
  };
}

/**
 * The tool call ids of an OpenAI chat client's request opened (in place): each carrier's reasoning goes back
 * where it was (before the text when it led the answer, else just before its call), the ids and the tool
 * results' `tool_call_id`s lose their carrier, and a carrier that does not verify is dropped and reported,
 * never forwarded. `openRequestSignatures` then keeps what the backend's family may have.
 */
export function openIdCarriers(
  req: ChatRequest,
  sealer: SignatureSealer,
  onDrop: (dropped: DroppedSignature) => void,
): void {
  req.messages.forEach((message, i) => {
    let changed = false;
    let first = true;
    const lead: ContentPart[] = [];
    const content: ContentPart[] = [];
    message.content.forEach((part, j) => {
      if (part.type === 'tool_result') {
        const id = bareId(part.toolCallId);
        changed ||= id !== part.toolCallId;
        content.push(id === part.toolCallId ? part : { ...part, toolCallId: id });
        return;
      }
      if (part.type !== 'tool_call') {
        content.push(part);
        return;
      }
      const opened = openIdCarrier(part.id, sealer);
      if (opened !== undefined) {
        changed = true;
        if (opened.carried === null) onDrop({ at: `messages[${i}].content[${j}].id`, reason: 'tampered' });
        else for (const c of opened.carried) (c.lead && first ? lead : content).push(c.part);
      }
      content.push(opened === undefined ? part : { ...part, id: opened.id });
      first = false;
    });
    if (changed) message.content = lead.length > 0 ? [...lead, ...content] : content;
  });
}
