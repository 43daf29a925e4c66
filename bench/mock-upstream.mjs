// A fast OpenAI-compatible upstream for the benchmark: answers as quickly as node:http allows, so what the
// benchmark measures is the proxy in front of it. Every answer is built once at startup.
//
// POST /v1/chat/completions  -> ~1 KB chat.completion JSON, or (body has "stream": true) an SSE stream of
//                               MOCK_STREAM_CHUNKS chunks (default 20) followed by `data: [DONE]`.
// GET  /v1/models            -> a one-model list.
// Run as a child with an IPC channel: it sends {port} once listening (port from MOCK_PORT, default 0).
import http from 'node:http';
import { DEFAULT_STREAM_CHUNKS, MOCK_ANSWER_MARKER } from './lib/constants.mjs';

const STREAM_CHUNKS = Number(process.env.MOCK_STREAM_CHUNKS ?? DEFAULT_STREAM_CHUNKS);
const STREAMING_REQUEST = /"stream"\s*:\s*true/;

const answerText =
  `${MOCK_ANSWER_MARKER}: ` +
  'Here is a short answer, long enough to make the response about one kilobyte like a typical small chat ' +
  'completion. '.repeat(6);

const completionBody = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench0000000000000000000000',
    object: 'chat.completion',
    created: 1_730_000_000,
    model: 'gpt-4o-mini-2024-07-18',
    system_fingerprint: 'fp_bench',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: answerText, refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 42, completion_tokens: 180, total_tokens: 222 },
  }),
);

function sseChunk(index) {
  const last = index === STREAM_CHUNKS - 1;
  const delta =
    index === 0 ? { role: 'assistant', content: `${MOCK_ANSWER_MARKER} ` } : { content: `tok${index} ` };
  return Buffer.from(
    `data: ${JSON.stringify({
      id: 'chatcmpl-bench0000000000000000000000',
      object: 'chat.completion.chunk',
      created: 1_730_000_000,
      model: 'gpt-4o-mini-2024-07-18',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: last ? 'stop' : null }],
    })}\n\n`,
  );
}
const streamChunks = [
  ...Array.from({ length: STREAM_CHUNKS }, (_, i) => sseChunk(i)),
  Buffer.from('data: [DONE]\n\n'),
];

const modelsBody = Buffer.from(
  JSON.stringify({
    object: 'list',
    data: [{ id: 'gpt-4o-mini', object: 'model', created: 0, owned_by: 'bench' }],
  }),
);

const JSON_HEADERS = { 'content-type': 'application/json', 'content-length': completionBody.length };
const MODELS_HEADERS = { 'content-type': 'application/json', 'content-length': modelsBody.length };
const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };

function answerChat(req, res) {
  const parts = [];
  req.on('data', (chunk) => parts.push(chunk));
  req.on('end', () => {
    const body = parts.length === 1 ? parts[0].toString('latin1') : Buffer.concat(parts).toString('latin1');
    if (!STREAMING_REQUEST.test(body)) {
      res.writeHead(200, JSON_HEADERS);
      res.end(completionBody);
      return;
    }
    // One write per chunk, as a real server flushes each token: the proxy sees separate chunks.
    res.writeHead(200, SSE_HEADERS);
    for (const chunk of streamChunks) res.write(chunk);
    res.end();
  });
}

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  if (req.method === 'POST' && req.url === '/v1/chat/completions') return answerChat(req, res);
  if (req.method === 'GET' && req.url === '/v1/models') {
    res.writeHead(200, MODELS_HEADERS);
    res.end(modelsBody);
    return;
  }
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end('{"error":{"message":"not found"}}');
});

server.listen(Number(process.env.MOCK_PORT ?? 0), '127.0.0.1', () => {
  process.send?.({ port: server.address().port });
});
// Exit through process.exit so that `node --cpu-prof` writes its profile; and never outlive the runner.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
process.on('disconnect', () => process.exit(0));
