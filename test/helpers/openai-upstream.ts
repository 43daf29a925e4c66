import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

export interface OpenAIUpstream {
  /** Base URL to use as OPENAI_API_BASE_URL (ends in /v1). */
  url: string;
  requests: RecordedRequest[];
  /** Lets every currently held `hold-*` stream (one chunk sent so far) send the rest of its answer. */
  release(): void;
  /**
   * Resolves once the proxy closes, before it was answered in full, the request whose last user text is
   * `text`: a request left unanswered on purpose (`hold-*`, `no-head`) is only closed this way by an abort.
   */
  closedEarly(text: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A local server speaking OpenAI's chat completions wire format. Behaviour is picked by the request's model:
 * - `hold-*`: streams one chunk, then waits for `release()` before the rest (proves chunk-by-chunk relay)
 * - `error-401`: answers 401 with an error body that echoes the provider key it was sent
 * - `error-429`: answers 429 with Retry-After: 7
 * - `no-head`: never answers (first-byte timeout)
 * - `reset-mid-stream`: sends one chunk, then destroys the socket
 * - `tools-reused-index` (streamed): two tool calls that both carry wire `index: 0`, told apart by their ids
 * - anything else: answers "echo: <last user text>" (streamed in 3 chunks when stream=true)
 */
export async function startOpenAIUpstream(): Promise<OpenAIUpstream> {
  const requests: RecordedRequest[] = [];
  let held: Array<() => void> = [];
  const releaseAll = () => {
    for (const resume of held) resume();
    held = [];
  };
  const early = new Map<string, { closed: Promise<void>; resolve: () => void }>();
  const earlyFor = (text: string) => {
    let entry = early.get(text);
    if (!entry) {
      let resolve: () => void = () => undefined;
      const closed = new Promise<void>((r) => (resolve = r));
      entry = { closed, resolve };
      early.set(text, entry);
    }
    return entry;
  };
  const sockets = new Set<import('node:net').Socket>();

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = raw;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        // keep raw text
      }
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      void handle(req, res, body as Record<string, unknown> | undefined);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    body: Record<string, unknown> | undefined,
  ) {
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          object: 'list',
          data: [{ id: 'gpt-4o-mini', object: 'model', created: 1, owned_by: 'openai' }],
        }),
      );
      return;
    }
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions' || !body) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
      return;
    }
    const model = String(body.model);
    const messages = (body.messages as Array<{ role: string; content: unknown }>) ?? [];
    const last = [...messages].reverse().find((m) => m.role === 'user');
    const said = typeof last?.content === 'string' ? last.content : JSON.stringify(last?.content ?? '');
    const text = `echo: ${said}`;
    res.once('close', () => {
      if (!res.writableFinished) earlyFor(said).resolve();
    });

    if (model === 'no-head') return; // never answer
    if (model === 'error-401') {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            message: `Incorrect API key provided: ${String(req.headers.authorization)}`,
            type: 'invalid_request_error',
            code: 'invalid_api_key',
          },
        }),
      );
      return;
    }
    if (model === 'error-429') {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '7' });
      res.end(
        JSON.stringify({
          error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' },
        }),
      );
      return;
    }
    const base = { id: 'chatcmpl-up', created: 1, model };
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
      res.end(
        JSON.stringify({
          ...base,
          object: 'chat.completion',
          choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
          extra_field_from_upstream: 'kept',
        }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const parts = [text.slice(0, 3), text.slice(3, 6), text.slice(6)];
    if (model === 'tools-reused-index') {
      const call = (id: string, name: string, args: string) => ({
        tool_calls: [{ index: 0, id, type: 'function', function: { name, arguments: args } }],
      });
      res.write(chunk({ role: 'assistant', content: null, ...call('call_city', 'weather', '') }));
      res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }));
      res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }));
      res.write(chunk(call('call_tz', 'clock', '{"tz":"CET"}')));
      res.write(chunk({}, 'tool_calls'));
      res.end('data: [DONE]\n\n');
      return;
    }
    res.write(chunk({ role: 'assistant', content: parts[0] }));
    if (model === 'reset-mid-stream') {
      setTimeout(() => req.socket.destroy(), 20);
      return;
    }
    if (model.startsWith('hold')) await new Promise<void>((resolve) => held.push(resolve));
    if (res.destroyed) return;
    res.write(chunk({ content: parts[1] }));
    res.write(chunk({ content: parts[2] }));
    res.write(chunk({}, 'stop'));
    res.end('data: [DONE]\n\n');
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    release: releaseAll,
    closedEarly: (said) => earlyFor(said).closed,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
