import type { ChatResponse } from '../protocols/canonical.js';
import type { ProtocolCodec } from '../protocols/codec.js';
import { codecs } from '../protocols/registry.js';
import type { Protocol } from '../protocols/types.js';
import { responseHead, writeJson } from './respond.js';
import type { ChatExchange } from './exchange.js';

const SSE_HEAD = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  'x-accel-buffering': 'no',
} as const;

/**
 * An answer the proxy gives itself (a command's reply), as an assistant message in the client's protocol,
 * streamed when the client asked for a stream — so every agent shows it like any model answer. No backend
 * is called; the access line names the backend `proxy`.
 */
export function replyLocally(
  ex: ChatExchange,
  from: Protocol,
  text: string,
  model: string,
  stream: boolean,
  /** The client asked for the stream's usage (see StreamMeta.includeUsage). */
  includeUsage = false,
  /** The client protocol's codec for this request (a Responses answer that is kept), else the shared one. */
  codec: ProtocolCodec = codecs[from],
): void {
  ex.state.backend = 'proxy';
  ex.state.model = model;
  const id = `proxy-${ex.id}`;
  if (!stream) {
    const answer: ChatResponse = {
      id,
      model,
      content: [{ type: 'text', text }],
      stopReason: 'end_turn',
      usage: { inputTokens: 0, outputTokens: 0 },
    };
    writeJson(ex, 200, codec.encodeResponse(answer));
    return;
  }
  const encoder = codec.createStreamEncoder({ model, id, includeUsage });
  const events =
    encoder.encode({ type: 'start', id, model, inputTokens: 0 }) +
    encoder.encode({ type: 'text', text }) +
    encoder.encode({ type: 'finish', stopReason: 'end_turn', usage: { inputTokens: 0, outputTokens: 0 } });
  ex.res.writeHead(200, responseHead(ex, SSE_HEAD));
  ex.res.end(events);
}
