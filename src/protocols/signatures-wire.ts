/**
 * Wrapped signatures in a request that goes to a backend of the client's own protocol (README, "Reasoning
 * between families"): the body is passed through, so the wraps are opened in its own shape — a signature of
 * this family goes back as it was made, reasoning another family signed and a wrap that does not verify are
 * left out (the latter reported). Called only when the body's bytes hold the wrap prefix.
 */
import type { Signature } from './canonical.js';
import { FAMILIES, isWrapped, openWrapped, type SignatureSealer } from './signatures.js';
import { bareId, ID_MARK, openIdCarrier } from './signatures-id.js';
import type { Protocol } from './types.js';

type Json = Record<string, unknown>;

export interface OpenedWire {
  /** The body with its wraps opened; the client's own object is never changed. */
  body: Json;
  /** Settings left out because of it (Anthropic `thinking`, when the last turn lost its thinking). */
  dropped: string[];
}

/** What one wrapped value becomes: the signature of this family, or null to leave its carrier out. */
type Open = (value: unknown, at: string) => Signature | null | undefined;
/** A tool call id without its carrier (checked, and reported by `at` when it does not verify; a tool result's is not). */
type OpenId = (value: unknown, at: string | null) => string | undefined;
type Walk = (body: Json, open: Open, family: string, openId: OpenId) => OpenedWire;

const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Anthropic: thinking and redacted_thinking blocks of assistant turns. */
function anthropic(body: Json, open: Open, family: string): OpenedWire {
  const dropped: string[] = [];
  if (!Array.isArray(body.messages)) return { body, dropped };
  const messages = body.messages.flatMap((m: unknown, i) => {
    if (!isRecord(m) || m.role !== 'assistant' || !Array.isArray(m.content)) return [m];
    let changed = false;
    const content = m.content.flatMap((b: unknown, j) => {
      if (!isRecord(b) || (b.type !== 'thinking' && b.type !== 'redacted_thinking')) return [b];
      const field = b.type === 'thinking' ? 'signature' : 'data';
      const signature = open(b[field], `messages[${i}].content[${j}].${field}`);
      if (signature === undefined) return [b];
      changed = true;
      if (signature === null || signature.family !== family) return [];
      return [{ ...b, [field]: signature.value }];
    });
    // A turn that held only reasoning of another family is left out whole (Anthropic refuses empty turns).
    if (!changed) return [m];
    return content.length > 0 ? [{ ...m, content }] : [];
  });
  const out: Json = { ...body, messages };
  // Anthropic wants a tool loop's last assistant turn to start with thinking when thinking is on: when that
  // turn lost its thinking here, thinking is turned off for this request (dropped with notice).
  const lastAssistant = messages.findLastIndex((m) => isRecord(m) && m.role === 'assistant');
  const last = messages[lastAssistant];
  const first = isRecord(last) && Array.isArray(last.content) ? (last.content[0] as unknown) : undefined;
  const startsThinking = isRecord(first) && (first.type === 'thinking' || first.type === 'redacted_thinking');
  const changedLast = !body.messages.includes(last);
  if (changedLast && !startsThinking && out.thinking !== undefined) {
    delete out.thinking;
    dropped.push('thinking');
  }
  return { body: out, dropped };
}

/** Gemini: `thoughtSignature` on the parts of model turns (a thought whose signature goes is left out). */
function gemini(body: Json, open: Open, family: string): OpenedWire {
  if (!Array.isArray(body.contents)) return { body, dropped: [] };
  const contents = body.contents.map((c: unknown, i) => {
    if (!isRecord(c) || !Array.isArray(c.parts)) return c;
    let changed = false;
    const parts = c.parts.flatMap((p: unknown, j) => {
      if (!isRecord(p)) return [p];
      const signature = open(p.thoughtSignature, `contents[${i}].parts[${j}].thoughtSignature`);
      if (signature === undefined) return [p];
      changed = true;
      const { thoughtSignature: _, ...rest } = p;
      if (signature !== null && signature.family === family)
        return [{ ...rest, thoughtSignature: signature.value }];
      return p.thought === true ? [] : [rest];
    });
    return changed ? { ...c, parts } : c;
  });
  return { body: { ...body, contents }, dropped: [] };
}

/** Responses: `encrypted_content` of reasoning input items. */
function responses(body: Json, open: Open, family: string): OpenedWire {
  if (!Array.isArray(body.input)) return { body, dropped: [] };
  const input = body.input.flatMap((item: unknown, i) => {
    if (!isRecord(item) || item.type !== 'reasoning') return [item];
    const signature = open(item.encrypted_content, `input[${i}].encrypted_content`);
    if (signature === undefined) return [item];
    if (signature === null || signature.family !== family) return [];
    return [{ ...item, encrypted_content: signature.value }];
  });
  return { body: { ...body, input }, dropped: [] };
}

/**
 * OpenAI chat: the carriers on tool call ids (`signatures-id.ts`) come off, on the calls and on the tool
 * results; what they carried is of no use to an OpenAI chat backend (no field takes a signature).
 */
function openai(body: Json, _open: Open, _family: string, openId: OpenId): OpenedWire {
  if (!Array.isArray(body.messages)) return { body, dropped: [] };
  const messages = body.messages.map((m: unknown, i) => {
    if (!isRecord(m)) return m;
    if (m.role === 'tool') {
      const id = openId(m.tool_call_id, null);
      return id === undefined ? m : { ...m, tool_call_id: id };
    }
    if (m.role !== 'assistant' || !Array.isArray(m.tool_calls)) return m;
    let changed = false;
    const calls = m.tool_calls.map((c: unknown, k) => {
      const id = isRecord(c) ? openId(c.id, `messages[${i}].tool_calls[${k}].id`) : undefined;
      if (id === undefined) return c;
      changed = true;
      return { ...(c as Json), id };
    });
    return changed ? { ...m, tool_calls: calls } : m;
  });
  return { body: { ...body, messages }, dropped: [] };
}

const BY_PROTOCOL: Record<Protocol, Walk> = { anthropic, gemini, responses, openai };

/**
 * The body with its wrapped signatures opened for a backend of `protocol` (its own); null when there is no
 * wrap to open. `onDrop` hears of each wrap that does not verify, by place.
 */
export function openWireSignatures(
  body: Json,
  protocol: Protocol,
  sealer: SignatureSealer,
  onDrop: (at: string) => void,
): OpenedWire | null {
  const walk = BY_PROTOCOL[protocol];
  let seen = false;
  const open: Open = (value, at) => {
    if (typeof value !== 'string' || !isWrapped(value)) return undefined;
    seen = true;
    const signature = openWrapped(value, sealer);
    if (signature === null) onDrop(at);
    return signature && { family: signature.family, value: signature.value };
  };
  const openId: OpenId = (value, at) => {
    if (typeof value !== 'string' || !value.includes(ID_MARK)) return undefined;
    seen = true;
    if (at === null) return bareId(value);
    const opened = openIdCarrier(value, sealer);
    if (opened?.carried === null) onDrop(at);
    return opened?.id ?? bareId(value);
  };
  const opened = walk(body, open, FAMILIES[protocol], openId);
  return seen ? opened : null;
}
