import { createParser } from 'eventsource-parser';
import type { SseMessage } from './codec.js';

/**
 * Parses an SSE byte stream into events as the bytes arrive. Bytes go through a streaming TextDecoder so a
 * UTF-8 character split across chunks is decoded whole; the parser copes with lines split anywhere.
 */
export async function* parseSse(source: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  const ready: SseMessage[] = [];
  const parser = createParser({
    onEvent: (e) => ready.push(e.event === undefined ? { data: e.data } : { event: e.event, data: e.data }),
  });
  for await (const chunk of source) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    while (ready.length) yield ready.shift() as SseMessage;
  }
  parser.feed(decoder.decode());
  // A last event without its blank line still counts: some servers close right after the data line.
  parser.feed('\n\n');
  while (ready.length) yield ready.shift() as SseMessage;
}
