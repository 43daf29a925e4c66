import { ProxyError } from '../proxy-error.js';
import type { StreamEvent } from './canonical.js';
import type { ProtocolCodec } from './codec.js';
import type { ErrorInfo } from './error-envelopes.js';
import { codecs as defaultCodecs } from './registry.js';
import { FAMILIES, sealStreamEvent, streamIdCarrier, type SignatureSealer } from './signatures.js';
import { parseSse } from './sse.js';
import type { Protocol } from './types.js';

/** What a client is told when the backend stream breaks; the cause's own text may name hosts, so it stays out. */
function interruption(err: unknown): ErrorInfo {
  if (err instanceof ProxyError) return { status: err.status, message: err.message, code: err.code };
  // undici's BodyTimeoutError, by its documented code (this module stays free of HTTP client imports).
  if ((err as { code?: unknown } | null)?.code === 'UND_ERR_BODY_TIMEOUT') {
    return { status: 504, message: 'Backend stream stalled and timed out', code: 'upstream_timeout' };
  }
  return { status: 502, message: 'Backend stream was interrupted', code: 'upstream_interrupted' };
}

const INCOMPLETE: ErrorInfo = {
  status: 502,
  message: 'Backend stream ended before the answer was finished',
  code: 'upstream_incomplete',
};

/**
 * A cut stream's continuation (README, Routes and failover: `continue_streams`): given the text the client
 * has so far, another backend's stream that goes on from it (its protocol named), or null when there is none.
 */
export type StreamResume = (
  text: string,
) => Promise<{ readonly source: AsyncIterable<Uint8Array>; readonly protocol: Protocol } | null>;

/**
 * Translates a backend's SSE stream from one protocol to another, event by event: each SSE event is decoded
 * and re-encoded as soon as it is parsed, so nothing waits for the whole answer. A broken source, an error
 * event from the backend, or a stream that stops without finishing ends in the target protocol's error event.
 * With `resume`, a text-only source that breaks before its finish is continued: the continuation's events
 * (its opening left out) go to the same encoder, so the client reads one answer — one message, its indexes
 * and sequence numbers going on, one end.
 */
export async function* translateStream(
  source: AsyncIterable<Uint8Array>,
  from: Protocol,
  to: Protocol,
  meta: { model: string; requestId: string },
  codecs: Record<Protocol, ProtocolCodec> = defaultCodecs,
  sealer?: SignatureSealer,
  resume?: StreamResume,
): AsyncGenerator<string> {
  const decoder = codecs[from].createStreamDecoder();
  const encoder = codecs[to].createStreamEncoder({ model: meta.model, id: meta.requestId });
  // An OpenAI chat client's signatures ride on its tool call ids (none without a sealer).
  const carry = sealer && streamIdCarrier(to, sealer);
  /** What the client was told, kept only when it may be continued: its text, while it is text only. */
  let said: string | null = resume === undefined ? null : '';
  const emit = (events: StreamEvent[]): string => {
    let out = '';
    for (const raw of events) {
      const event = carry ? carry(raw) : raw;
      if (said !== null) {
        if (event.type === 'text') said += event.text;
        else if (event.type !== 'start' && event.type !== 'finish') said = null;
      }
      // A signature of another family reaches the client wrapped, or (no sealer) not at all.
      if (event.type === 'reasoning_signature') {
        if (sealer) out += encoder.encode(sealStreamEvent(event, to, sealer));
        else if (event.signature.family === FAMILIES[to]) out += encoder.encode(event);
        continue;
      }
      out += encoder.encode(event);
    }
    return out;
  };
  let cut: unknown;
  try {
    for await (const message of parseSse(source)) {
      const text = emit(decoder.push(message));
      if (text) yield text;
    }
    const tail = emit(decoder.end());
    if (tail) yield tail;
    if (!encoder.done) yield encoder.encode({ type: 'error', error: INCOMPLETE });
    return;
  } catch (err) {
    if (encoder.done) return;
    cut = err;
  }
  const next =
    said !== null && said !== '' && resume !== undefined ? await resume(said).catch(() => null) : null;
  if (next === null) {
    yield encoder.encode({ type: 'error', error: interruption(cut) });
    return;
  }
  // The continuation's own opening (`start`) is not the client's: its message is already open.
  const rest = codecs[next.protocol].createStreamDecoder();
  const go = (events: StreamEvent[]) => emit(events.filter((event) => event.type !== 'start'));
  try {
    for await (const message of parseSse(next.source)) {
      const text = go(rest.push(message));
      if (text) yield text;
    }
    const tail = go(rest.end());
    if (tail) yield tail;
    if (!encoder.done) yield encoder.encode({ type: 'error', error: INCOMPLETE });
  } catch (err) {
    if (!encoder.done) yield encoder.encode({ type: 'error', error: interruption(err) });
  }
}
