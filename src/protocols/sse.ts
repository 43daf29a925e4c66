import { isAscii } from 'node:buffer';
import { StringDecoder } from 'node:string_decoder';
import { createParser, type EventSourceParser } from 'eventsource-parser';
import { ProxyError } from '../proxy-error.js';
import type { SseMessage } from './codec.js';

/**
 * The longest SSE line, and the most text of one event, a backend may send (docs/reliability.md, "Timeouts
 * that protect the proxy"): real events are a few KB. A backend that sends an endless line (or an endless event) would
 * otherwise grow the parser's buffer, or the client's, without bound; past this the stream ends with the
 * protocol's error event and the backend request is aborted.
 */
export const MAX_SSE_LINE_BYTES = 1024 * 1024;

export const sseLineTooLong = () =>
  new ProxyError(502, `Backend sent a stream line or event longer than ${MAX_SSE_LINE_BYTES} bytes`, {
    code: 'upstream_line_too_long',
  });

/**
 * Where the last line break of `text` is (-1: none): searched from the end, so a chunk that ends in one — the
 * usual case — costs a character or two, not two searches of the whole text (`lastIndexOf('\r')` walks all
 * of a stream that has none).
 */
function lastLineBreak(text: string): number {
  for (let i = text.length - 1; i >= 0; i--) {
    const code = text.charCodeAt(i);
    if (code === 0x0a || code === 0x0d) return i;
  }
  return -1;
}

/**
 * A byte stream's text, chunk by chunk, as a streaming UTF-8 decoder gives it (a character split across
 * chunks decoded whole, malformed bytes as U+FFFD): while every chunk so far was ASCII, nothing is held
 * back between chunks and a chunk's text is its bytes one for one, read as latin1 after one native check
 * (`isAscii`) — cheaper than the decoder's validation, which every byte of an event stream went through
 * (docs/performance.md, "An Anthropic client's translated stream"). The first chunk that is not ASCII, and
 * every one after it, go through the decoder.
 */
export class StreamText {
  private decoder: StringDecoder | undefined;

  write(chunk: Uint8Array): string {
    if (this.decoder === undefined) {
      if (isAscii(chunk)) return latin1(chunk);
      this.decoder = new StringDecoder('utf8');
    }
    return this.decoder.write(chunk as Buffer);
  }

  end(): string {
    return this.decoder === undefined ? '' : this.decoder.end();
  }
}

function latin1(chunk: Uint8Array): string {
  return (
    Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  ).toString('latin1');
}

const NONE: readonly SseMessage[] = [];

/**
 * Parses an SSE byte stream into events, one chunk at a time, synchronously: `feed` returns the events a
 * chunk completed (all of them: a chunk read from the socket often holds many), `end` those the stream's end
 * completes. Bytes go through a streaming decoder so a UTF-8 character split across chunks is decoded
 * whole; the parser copes with lines split anywhere. Throws `sseLineTooLong` past MAX_SSE_LINE_BYTES.
 * A caller that decoded the bytes already (the translated relay reads them as text once) feeds `text`
 * (`feedText`); one parser takes one of the two, never both.
 */
export class SseParser {
  /**
   * Node's decoder behind an ASCII check (`StreamText`): about half a TextDecoder's cost per chunk
   * (docs/performance.md, "Translation"). Made on the first bytes: a stream fed text never needs one.
   */
  private decoder: StreamText | undefined;
  private readonly parser: EventSourceParser;
  private ready: SseMessage[] = [];
  /** Text fed since the parser last finished an event or a comment: an upper bound of what it holds. */
  private pending = 0;
  private progressed = false;
  /** Whether any text came yet (a byte order mark may open the first). */
  private started = false;

  constructor() {
    this.parser = createParser({
      onEvent: (e) => {
        this.progressed = true;
        this.ready.push(e.event === undefined ? { data: e.data } : { event: e.event, data: e.data });
      },
      onComment: () => (this.progressed = true),
    });
  }

  feed(chunk: Uint8Array): readonly SseMessage[] {
    this.decoder ??= new StreamText();
    return this.feedText(this.decoder.write(chunk));
  }

  /** `feed` for text already decoded: the events its lines completed. */
  feedText(input: string): readonly SseMessage[] {
    let text = input;
    if (!this.started && text.length > 0) {
      this.started = true;
      // A byte order mark opening the stream is no part of its first line (TextDecoder's default).
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.progressed = false;
    this.parser.feed(text);
    // After progress the parser holds what follows the last event of this chunk: counted from its last line
    // break (the event's earlier lines are bounded by the chunk's size), which keeps large chunks of many
    // events from counting as one.
    this.pending = this.progressed ? text.length - 1 - lastLineBreak(text) : this.pending + text.length;
    if (this.pending > MAX_SSE_LINE_BYTES) throw sseLineTooLong();
    return this.take();
  }

  end(): readonly SseMessage[] {
    if (this.decoder !== undefined) this.parser.feed(this.decoder.end());
    // A last event without its blank line still counts: some servers close right after the data line.
    this.parser.feed('\n\n');
    return this.take();
  }

  private take(): readonly SseMessage[] {
    const ready = this.ready;
    if (ready.length === 0) return NONE;
    this.ready = [];
    return ready;
  }
}

/** Parses an SSE byte stream into events as the bytes arrive (see SseParser). */
export async function* parseSse(source: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const parser = new SseParser();
  for await (const chunk of source) yield* parser.feed(chunk);
  yield* parser.end();
}
