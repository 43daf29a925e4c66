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
 * Translates a backend's SSE stream from one protocol to another, event by event: each SSE event is decoded
 * and re-encoded as soon as it is parsed, so nothing waits for the whole answer. A broken source, an error
 * event from the backend, or a stream that stops without finishing ends in the target protocol's error event.
 */
export async function* translateStream(
  source: AsyncIterable<Uint8Array>,
  from: Protocol,
  to: Protocol,
  meta: { model: string; requestId: string },
  codecs: Record<Protocol, ProtocolCodec> = defaultCodecs,
  sealer?: SignatureSealer,
): AsyncGenerator<string> {
  const decoder = codecs[from].createStreamDecoder();
  const encoder = codecs[to].createStreamEncoder({ model: meta.model, id: meta.requestId });
  // An OpenAI chat client's signatures ride on its tool call ids (none without a sealer).
  const carry = sealer && streamIdCarrier(to, sealer);
  const emit = (events: StreamEvent[]): string => {
    let out = '';
    for (const raw of events) {
      const event = carry ? carry(raw) : raw;
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
  try {
    for await (const message of parseSse(source)) {
      const text = emit(decoder.push(message));
      if (text) yield text;
    }
    const tail = emit(decoder.end());
    if (tail) yield tail;
    if (!encoder.done) yield encoder.encode({ type: 'error', error: INCOMPLETE });
  } catch (err) {
    if (!encoder.done) yield encoder.encode({ type: 'error', error: interruption(err) });
  }
}
