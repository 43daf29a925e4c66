import { ProxyError } from '../proxy-error.js';
import type { StreamEvent } from './canonical.js';
import type { ProtocolCodec, SseMessage, StreamDecoder, StreamEncoder } from './codec.js';
import type { ErrorInfo } from './error-envelopes.js';
import { codecs as defaultCodecs } from './registry.js';
import { FAMILIES, sealStreamEvent, streamIdCarrier, type SignatureSealer } from './signatures.js';
import { RepeatedText } from './repeated-text.js';
import { SseParser } from './sse.js';
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

/** The client's side of a translated stream: its model and request id, and whether it asked for usage. */
export interface TranslationMeta {
  model: string;
  requestId: string;
  /** See StreamMeta.includeUsage. */
  includeUsage?: boolean | undefined;
}

const INCOMPLETE: ErrorInfo = {
  status: 502,
  message: 'Backend stream ended before the answer was finished',
  code: 'upstream_incomplete',
};

/**
 * One backend stream translated from one protocol to another, chunk by chunk and synchronously: `push`
 * returns the client's text for every event a chunk of backend bytes completed — all of a chunk's events as
 * one string, so a chunk read from the backend is one write to the client, whatever number of events it
 * held; `end` and `fail` return what closes the stream (the rest, or the target protocol's error event).
 */
export class StreamTranslation {
  private parser = new SseParser();
  private decoder: StreamDecoder;
  private readonly encoder: StreamEncoder;
  /** The client's text of a chunk's events translated before one of them threw: still theirs to get. */
  private held = '';
  /** An OpenAI chat client's signatures ride on its tool call ids (none without a sealer). */
  private readonly carry: ((event: StreamEvent) => StreamEvent) | undefined;
  /** What the client was told, kept only when it may be continued: its text, while it is text only. */
  private said: string | null;
  /** A continuation's decoder: its own opening (`start`) is not the client's, whose message is open. */
  private continuing = false;
  /** The backend's text deltas read without the decoder, when it allows (null when it does not). */
  private repeated: RepeatedText | null;
  /** `repeated`, when its text goes straight to the encoder's `encodeText` (null otherwise). */
  private plainText: RepeatedText | null = null;
  private readonly encodeText: ((text: string) => string) | undefined;

  constructor(
    from: Protocol,
    private readonly to: Protocol,
    meta: TranslationMeta,
    private readonly codecs: Record<Protocol, ProtocolCodec> = defaultCodecs,
    private readonly sealer?: SignatureSealer,
    /** Keep the text told, for a continuation (`continue_streams`). */
    continuable = false,
  ) {
    this.decoder = codecs[from].createStreamDecoder();
    this.repeated = this.decoder.textRepeats === true ? new RepeatedText() : null;
    this.encoder = codecs[to].createStreamEncoder({
      model: meta.model,
      id: meta.requestId,
      includeUsage: meta.includeUsage,
    });
    this.carry = sealer && streamIdCarrier(to, sealer);
    this.said = continuable ? '' : null;
    this.encodeText = this.encoder.encodeText?.bind(this.encoder);
    this.plainText = this.textStraight();
  }

  /** `repeated`, when the text it reads may skip the event objects (see `push`). */
  private textStraight(): RepeatedText | null {
    return this.encodeText !== undefined && this.carry === undefined ? this.repeated : null;
  }

  /**
   * The client's text for the events `chunk` completed ('' when none). Throws as the parser does. A stream
   * is pushed as bytes or as text (decoded by the caller, chunk after chunk), not both.
   */
  push(chunk: Uint8Array | string): string {
    const messages = typeof chunk === 'string' ? this.parser.feedText(chunk) : this.parser.feed(chunk);
    let out = '';
    try {
      for (let i = 0; i < messages.length; i++) {
        const message = messages[i]!;
        // A text delta read without the decoder goes to the encoder as text (no event object, no array),
        // when nothing else must see the event: an OpenAI client's id carrier watches every one.
        const text = this.plainText === null ? undefined : this.plainText.match(message);
        if (text !== undefined) {
          if (this.said !== null) this.said += text;
          out += this.encodeText!(text);
        } else out += this.emit(this.plainText === null ? this.decode(message) : this.learn(message));
      }
    } catch (err) {
      this.held = out;
      throw err;
    }
    return out;
  }

  /** One backend event's canonical events: a text delta like the last one read as such, else the decoder's. */
  private decode(message: SseMessage): StreamEvent[] {
    const repeated = this.repeated;
    if (repeated === null) return this.decoder.push(message);
    const text = repeated.match(message);
    if (text !== undefined) return [{ type: 'text', text }];
    return this.learn(message);
  }

  /** One backend event through the decoder, its shape learned when it was text alone (`repeated` set). */
  private learn(message: SseMessage): StreamEvent[] {
    const events = this.decoder.push(message);
    this.repeated!.learn(message, events);
    return events;
  }

  /** The source ended: the events still owed, or the error event of an unfinished stream. */
  end(): string {
    let out = '';
    try {
      for (const message of this.parser.end()) out += this.emit(this.decode(message));
      out += this.emit(this.decoder.end());
    } catch (err) {
      this.held = out;
      throw err;
    }
    if (!this.encoder.done) out += this.encoder.encode({ type: 'error', error: INCOMPLETE });
    return out;
  }

  /**
   * The source broke (`err`), or translating it did: what a chunk had translated before that, then the
   * target protocol's error event (none when the stream had already ended).
   */
  fail(err: unknown): string {
    const held = this.held;
    this.held = '';
    return this.encoder.done ? held : held + this.encoder.encode({ type: 'error', error: interruption(err) });
  }

  /** The client's stream ended in its protocol's error event. */
  get failed(): boolean {
    return this.encoder.failed;
  }

  /** After a break: the text the client was told, when the answer is unfinished text only; else null. */
  get continuableText(): string | null {
    return this.encoder.done || this.said === null || this.said === '' ? null : this.said;
  }

  /**
   * Goes on with a continuation's stream, of `protocol`, through the same encoder (one answer for the
   * client: its indexes and sequence numbers going on, one end); returns what was translated before the
   * break, still the client's.
   */
  continueFrom(protocol: Protocol): string {
    const held = this.held;
    this.held = '';
    this.parser = new SseParser();
    this.decoder = this.codecs[protocol].createStreamDecoder();
    this.repeated = this.decoder.textRepeats === true ? new RepeatedText() : null;
    this.plainText = this.textStraight();
    this.continuing = true;
    return held;
  }

  private emit(events: StreamEvent[]): string {
    let out = '';
    for (let i = 0; i < events.length; i++) {
      const raw = events[i]!;
      if (this.continuing && raw.type === 'start') continue;
      const event = this.carry ? this.carry(raw) : raw;
      if (this.said !== null) {
        if (event.type === 'text') this.said += event.text;
        else if (event.type !== 'start' && event.type !== 'finish') this.said = null;
      }
      // A signature of another family reaches the client wrapped, or (no sealer) not at all.
      if (event.type === 'reasoning_signature') {
        if (this.sealer) out += this.encoder.encode(sealStreamEvent(event, this.to, this.sealer));
        else if (event.signature.family === FAMILIES[this.to]) out += this.encoder.encode(event);
        continue;
      }
      out += this.encoder.encode(event);
    }
    return out;
  }
}

/**
 * A cut stream's continuation (README, Routes and failover: `continue_streams`): given the text the client
 * has so far, another backend's stream that goes on from it (its protocol named), or null when there is none.
 */
export type StreamResume = (
  text: string,
) => Promise<{ readonly source: AsyncIterable<Uint8Array>; readonly protocol: Protocol } | null>;

/**
 * Translates a backend's SSE stream from one protocol to another as it arrives (see StreamTranslation): one
 * string per chunk of backend bytes that completed an event, so nothing waits for the whole answer. A broken
 * source, an error event from the backend, or a stream that stops without finishing ends in the target
 * protocol's error event. With `resume`, a text-only source that breaks before its finish is continued: the
 * continuation's events (its opening left out) go to the same encoder, so the client reads one answer.
 */
export async function* translateStream(
  source: AsyncIterable<Uint8Array>,
  from: Protocol,
  to: Protocol,
  meta: TranslationMeta,
  codecs: Record<Protocol, ProtocolCodec> = defaultCodecs,
  sealer?: SignatureSealer,
  resume?: StreamResume,
): AsyncGenerator<string> {
  const translation = new StreamTranslation(from, to, meta, codecs, sealer, resume !== undefined);
  let tail: string;
  try {
    for await (const chunk of source) {
      const text = translation.push(chunk);
      if (text) yield text;
    }
    tail = translation.end();
  } catch (err) {
    const said = translation.continuableText;
    const next = said !== null && resume !== undefined ? await resume(said).catch(() => null) : null;
    if (next === null) {
      tail = translation.fail(err);
    } else {
      const held = translation.continueFrom(next.protocol);
      if (held) yield held;
      try {
        for await (const chunk of next.source) {
          const text = translation.push(chunk);
          if (text) yield text;
        }
        tail = translation.end();
      } catch (broke) {
        tail = translation.fail(broke);
      }
    }
  }
  if (tail) yield tail;
}
