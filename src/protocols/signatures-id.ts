/**
 * The tool call id as the carrier of reasoning signatures for an OpenAI chat client (README, "Reasoning between
 * families"). OpenAI chat has no field for a signature, and clients keep only what the protocol defines; the
 * one field every client gives back unchanged is a tool call's `id` (on the call, and as the result's
 * `tool_call_id`). So the signatures that came before a call ride on its id:
 *
 *   `<id>__lip1_<payload>_<mac>`
 *
 * the payload the reasoning in base64url JSON (`[family, text, signature, redacted, lead]` per part), the MAC
 * an HMAC-SHA256 (the sealer's key) of everything before it, bound to the id so that a carrier cannot be moved
 * to another call. Only `[A-Za-z0-9_-]` is used: clients that clean ids for Anthropic models (opencode)
 * leave it intact. An id over `MAX_CARRIER_ID` characters gets no carrier (the reasoning's text still
 * reaches the client; the next turn goes without the signature, as a client of another family would).
 */
import { timingSafeEqual } from 'node:crypto';
import type { ReasoningPart } from './canonical.js';
import type { SignatureSealer } from './signatures.js';

/** What separates the client's id from the carrier. */
export const ID_MARK = '__lip1_';
/** The longest id the proxy writes, carrier included; a longer one with the mark cannot be its own. */
export const MAX_CARRIER_ID = 16_384;
/** The MAC in base64url: 32 bytes. */
const MAC_CHARS = 43;
/** Keeps the id carrier's MACs apart from the wraps' (`lip1.<family>.…`), made under the same key. */
const DOMAIN = '\0tool-call-id\0';
const FAMILY = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * Whose reasoning text must come back with its signature: Anthropic's signature covers its thinking, which
 * must come back unchanged. Gemini's and OpenAI's stand alone, so their text stays out of the id.
 */
const SIGNS_TEXT: Readonly<Record<string, boolean>> = { anthropic: true };

/** One reasoning part on a call's id, and whether it came before the answer's text (`lead`) or just before the call. */
export interface CarriedReasoning {
  part: ReasoningPart & { signature: NonNullable<ReasoningPart['signature']> };
  lead: boolean;
}

/** `id` with `carried` on it; `id` itself when there is nothing to carry or it would be too long. */
export function idCarrying(
  id: string,
  carried: readonly CarriedReasoning[],
  sealer: SignatureSealer,
): string {
  if (carried.length === 0 || id.includes(ID_MARK)) return id;
  const rows = carried.map(({ part, lead }) => [
    part.signature.family,
    SIGNS_TEXT[part.signature.family] === true ? part.text : '',
    part.signature.value,
    part.redacted ? 1 : 0,
    lead ? 1 : 0,
  ]);
  const head = `${id}${ID_MARK}${Buffer.from(JSON.stringify(rows), 'utf8').toString('base64url')}`;
  const out = `${head}_${sealer.tag(DOMAIN + head)}`;
  return out.length <= MAX_CARRIER_ID ? out : id;
}

/** The client's id without any carrier (a tool result's `tool_call_id`). */
export function bareId(id: string): string {
  const at = id.indexOf(ID_MARK);
  return at === -1 ? id : id.slice(0, at);
}

/** An id with a carrier, opened: the bare id, and its reasoning, or null when the carrier does not verify. */
export interface OpenedId {
  id: string;
  carried: CarriedReasoning[] | null;
}

/** Opens the carrier on `id`; undefined when it has none. */
export function openIdCarrier(id: string, sealer: SignatureSealer): OpenedId | undefined {
  const at = id.indexOf(ID_MARK);
  if (at === -1) return undefined;
  const bare = id.slice(0, at);
  const macAt = id.length - MAC_CHARS;
  if (id.length > MAX_CARRIER_ID || macAt <= at + ID_MARK.length || id[macAt - 1] !== '_')
    return { id: bare, carried: null };
  const head = id.slice(0, macAt - 1);
  const given = Buffer.from(id.slice(macAt), 'base64url');
  const expected = Buffer.from(sealer.tag(DOMAIN + head), 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { id: bare, carried: null };
  return { id: bare, carried: parseRows(head.slice(at + ID_MARK.length)) };
}

/** The payload of a carrier that verified (so the proxy's own); null if its shape is not one it writes. */
function parseRows(payload: string): CarriedReasoning[] | null {
  let rows: unknown;
  try {
    rows = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(rows) || rows.length === 0) return null;
  const out: CarriedReasoning[] = [];
  for (const row of rows) {
    if (!Array.isArray(row) || row.length !== 5) return null;
    const [family, text, value, redacted, lead] = row as unknown[];
    if (typeof family !== 'string' || !FAMILY.test(family)) return null;
    if (typeof text !== 'string' || typeof value !== 'string') return null;
    out.push({
      part: {
        type: 'reasoning',
        text,
        signature: { family, value },
        ...(redacted === 1 ? { redacted: true } : {}),
      },
      lead: lead === 1,
    });
  }
  return out;
}
