import type { StreamDecoder } from '../protocols/codec.js';
import type { ErrorInfo } from '../protocols/error-envelopes.js';
import { codecs } from '../protocols/registry.js';
import { SseParser } from '../protocols/sse.js';
import type { Protocol } from '../protocols/types.js';
import type { StreamEvent } from '../protocols/canonical.js';

/**
 * What a backend stream's opening says so far, before the commit point (README, Routes and failover):
 * - `content`: the answer began (text, reasoning, a tool call, or its end): the stream commits;
 * - `more`: only what comes before an answer (Anthropic's `message_start` and pings, a Responses backend's
 *   `response.created`, SSE comments, an empty first delta): not yet;
 * - `error`: the backend failed in the stream before any answer (Anthropic's in-stream `overloaded_error`,
 *   an OpenAI `{"error": …}` event, `response.failed`): a failure like an HTTP error, the client having
 *   seen nothing — failed over, or answered with its status.
 */
export type Opening =
  | { readonly kind: 'content' }
  | { readonly kind: 'more' }
  | { readonly kind: 'error'; readonly error: ErrorInfo };

const CONTENT: Opening = { kind: 'content' };
const MORE: Opening = { kind: 'more' };

/**
 * Past this much opening without an answer the stream commits anyway: no backend sends that much before
 * its first token, and the held bytes stay bounded (below the primed stream's pause point).
 */
export const MAX_OPENING_BYTES = 32 * 1024;

/** One canonical event's say on the opening; undefined: nothing yet. */
function openingOf(event: StreamEvent): Opening | undefined {
  switch (event.type) {
    case 'start':
      return undefined;
    case 'text':
    case 'reasoning':
      return event.text ? CONTENT : undefined;
    case 'error':
      return { kind: 'error', error: event.error };
    default:
      return CONTENT;
  }
}

/**
 * Reads a backend stream's first chunks in its own protocol — its codec's decoder, the one the translator
 * uses — until they say the answer began or failed. Only the opening is read this way (a few events once
 * per attempt); after the commit point the stream goes on as it would have without it.
 */
export class StreamOpening {
  private readonly parser = new SseParser();
  private readonly decoder: StreamDecoder;
  private bytes = 0;

  constructor(protocol: Protocol) {
    this.decoder = codecs[protocol].createStreamDecoder();
  }

  /** What the opening says with this chunk. */
  see(chunk: Uint8Array): Opening {
    this.bytes += chunk.length;
    let messages;
    try {
      messages = this.parser.feed(chunk);
    } catch {
      // A line past the SSE bound: the relay ends such a stream with its error; committed to say so.
      return CONTENT;
    }
    for (const message of messages) {
      for (const event of this.decoder.push(message)) {
        const opening = openingOf(event);
        if (opening !== undefined) return opening;
      }
    }
    return this.bytes > MAX_OPENING_BYTES ? CONTENT : MORE;
  }

  /**
   * The stream ended before an answer began: `content` when its end completes one (a finish the backend
   * never terminated, which the relay finalises), else `more` — it ended with nothing to show.
   */
  end(): Opening {
    let messages;
    try {
      messages = this.parser.end();
    } catch {
      return MORE;
    }
    const events = [...messages.flatMap((message) => this.decoder.push(message)), ...this.decoder.end()];
    for (const event of events) {
      const opening = openingOf(event);
      if (opening !== undefined) return opening;
    }
    return MORE;
  }
}
