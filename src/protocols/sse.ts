import { createParser } from 'eventsource-parser';
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

function lastLineBreak(text: string): number {
  return Math.max(text.lastIndexOf('\n'), text.lastIndexOf('\r'));
}

/**
 * Parses an SSE byte stream into events as the bytes arrive. Bytes go through a streaming TextDecoder so a
 * UTF-8 character split across chunks is decoded whole; the parser copes with lines split anywhere.
 */
export async function* parseSse(source: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  const ready: SseMessage[] = [];
  // Text fed since the parser last finished an event or a comment: an upper bound of what it holds.
  let pending = 0;
  let progressed: boolean;
  const parser = createParser({
    onEvent: (e) => {
      progressed = true;
      ready.push(e.event === undefined ? { data: e.data } : { event: e.event, data: e.data });
    },
    onComment: () => (progressed = true),
  });
  for await (const chunk of source) {
    const text = decoder.decode(chunk, { stream: true });
    progressed = false;
    parser.feed(text);
    // After progress the parser holds what follows the last event of this chunk: counted from its last line
    // break (the event's earlier lines are bounded by the chunk's size), which keeps large chunks of many
    // events from counting as one.
    pending = progressed ? text.length - 1 - lastLineBreak(text) : pending + text.length;
    if (pending > MAX_SSE_LINE_BYTES) throw sseLineTooLong();
    while (ready.length) yield ready.shift() as SseMessage;
  }
  parser.feed(decoder.decode());
  // A last event without its blank line still counts: some servers close right after the data line.
  parser.feed('\n\n');
  while (ready.length) yield ready.shift() as SseMessage;
}
