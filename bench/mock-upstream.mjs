// The benchmark's upstream: the fake provider (test/fake-provider) in its canned mode, OpenAI chat
// completions answered as quickly as node:http allows from buffers built once at startup, so what the
// benchmark measures is the proxy in front of it.
//
// POST /v1/chat/completions  -> ~0.5 KB chat.completion JSON, or (body has "stream": true) an SSE stream of
//                               MOCK_STREAM_CHUNKS chunks (default 20) followed by `data: [DONE]`.
// POST /v1/responses, POST /v1/messages (Anthropic), POST /v1beta/models/{m}:generateContent and
//      :streamGenerateContent?alt=sse (Gemini) -> the same text in each protocol's shape, whole or streamed.
// GET  /v1/models            -> a one-model list.
// Run as a child with an IPC channel: it sends {port} once listening (port from MOCK_PORT, default 0).
import { startFakeProvider } from '../test/fake-provider/index.mjs';
import { DEFAULT_STREAM_CHUNKS, MOCK_ANSWER_MARKER } from './lib/constants.mjs';

const provider = await startFakeProvider({
  port: Number(process.env.MOCK_PORT ?? 0),
  keepAliveTimeout: 60_000,
  canned: {
    marker: MOCK_ANSWER_MARKER,
    streamChunks: Number(process.env.MOCK_STREAM_CHUNKS ?? DEFAULT_STREAM_CHUNKS),
  },
});
process.send?.({ port: provider.port });
// Exit through process.exit so that `node --cpu-prof` writes its profile; and never outlive the runner.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
process.on('disconnect', () => process.exit(0));
