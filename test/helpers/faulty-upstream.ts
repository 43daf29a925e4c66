/**
 * A misbehaving LLM provider on 127.0.0.1 that speaks all three wire protocols, for reliability tests:
 * - OpenAI:    POST /v1/chat/completions, GET /v1/models          (OPENAI_API_BASE_URL = `${url}/v1`)
 * - Anthropic: POST /v1/messages, GET /v1/models                  (ANTHROPIC_API_BASE_URL = `${url}/v1`)
 * - Gemini:    POST /v1beta/models/{m}:generateContent | :streamGenerateContent?alt=sse, GET /v1beta/models
 *                                                                  (GEMINI_API_BASE_URL = `${url}`)
 *
 * The request's model picks the behaviour: a model containing `fault-<name>` (see FAULTS) misbehaves that way,
 * any other model answers normally with `echo: <last user text>` (streamed in `chunks` pieces). Answers are
 * built per protocol so the proxy's translation paths see real traffic.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type UpstreamProtocol = 'openai' | 'anthropic' | 'gemini';

export const FAULTS = [
  'reset-before-headers', // destroys the connection as soon as the request has arrived
  'no-head', // never answers: the proxy's first-byte timeout must fire
  'reset-mid-stream', // sends the head and a first piece, then destroys the connection
  'stall-mid-stream', // sends the head and a first piece, then goes silent forever
  'invalid-json', // 200 application/json whose body is not JSON
  'invalid-sse', // 200 text/event-stream whose events hold no JSON
  'truncated-stream', // a stream that ends cleanly but before the answer was finished
  'status-429', // 429 with Retry-After: 7 and the protocol's error body
  'status-500', // 500 with Retry-After: 3 and the protocol's error body
  'html-502', // 502 with an HTML page, as a load balancer in front of a provider would send
  'drip', // a normal answer whose pieces arrive `dripMs` apart (each gap under the proxy's timeout)
  'hold', // a normal answer that waits for release() after the first piece
  'endless-line', // a stream that, after a first piece, sends one line that never ends
  'endless-event', // a stream that, after a first piece, sends short data lines but never ends the event
] as const;
export type Fault = (typeof FAULTS)[number];

export interface FaultyUpstreamOptions {
  /** Pieces a normal streamed answer is cut into (default 4). */
  chunks?: number;
  /** Gap between pieces for `fault-drip` (default 150 ms). */
  dripMs?: number;
  /** Port to listen on (default: a free one); `restart()` reuses the port either way. */
  port?: number;
}

export interface FaultyUpstream {
  /** Root URL, e.g. `http://127.0.0.1:1234` (no path). */
  url: string;
  port: number;
  /** Chat requests received so far. */
  readonly received: number;
  /** Responses the peer (the proxy) closed before they were finished: aborted or timed-out requests. */
  readonly aborted: number;
  /** Chat responses started and neither finished nor closed yet. */
  inFlight(): number;
  /** Open TCP connections. */
  connections(): number;
  /** Resolves once `aborted` reaches `count`. */
  waitForAborts(count: number): Promise<void>;
  /** Lets every held (`fault-hold`) answer continue. */
  release(): void;
  /** Stops listening and cuts every connection (a crashed provider). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

interface ChatCall {
  protocol: UpstreamProtocol;
  model: string;
  stream: boolean;
  body: Json;
}

function faultOf(model: string): Fault | null {
  const match = /fault-([a-z0-9-]+)/.exec(model);
  const name = match?.[1];
  return name && (FAULTS as readonly string[]).includes(name) ? (name as Fault) : null;
}

/** The text of the last user turn in any of the three request shapes. */
function lastUserText(protocol: UpstreamProtocol, body: Json): string {
  const turns = (protocol === 'gemini' ? body.contents : body.messages) as Json[] | undefined;
  const last = [...(turns ?? [])].reverse().find((t) => t.role === 'user');
  if (!last) return '';
  const texts: string[] = [];
  const collect = (node: unknown): void => {
    if (typeof node === 'string') texts.push(node);
    else if (Array.isArray(node)) node.forEach(collect);
    else if (node && typeof node === 'object') {
      const record = node as Json;
      if (typeof record.text === 'string') texts.push(record.text);
      else collect(record.content ?? record.parts);
    }
  };
  collect(protocol === 'gemini' ? last.parts : last.content);
  return texts.join('');
}

function split(text: string, pieces: number): string[] {
  const size = Math.max(1, Math.ceil(text.length / pieces));
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length > 0 ? out : [''];
}

const sse = (data: unknown, event?: string) =>
  `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`;

/** Per protocol: a whole answer, the stream's opening, one text piece, and the stream's ending. */
const WIRE: Record<
  UpstreamProtocol,
  {
    whole(model: string, text: string): Json;
    open(model: string): string;
    piece(model: string, text: string): string;
    close(model: string, length: number): string;
    error(status: number, message: string): Json;
  }
> = {
  openai: {
    whole: (model, text) => ({
      id: 'chatcmpl-faulty',
      object: 'chat.completion',
      created: 1,
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1, completion_tokens: text.length, total_tokens: text.length + 1 },
    }),
    open: (model) => sse(openaiChunk(model, { role: 'assistant', content: '' })),
    piece: (model, text) => sse(openaiChunk(model, { content: text })),
    close: (model) => `${sse(openaiChunk(model, {}, 'stop'))}data: [DONE]\n\n`,
    error: (status, message) => ({
      error: { message, type: status === 429 ? 'requests' : 'server_error', code: null, param: null },
    }),
  },
  anthropic: {
    whole: (model, text) => ({
      id: 'msg_faulty',
      type: 'message',
      role: 'assistant',
      model,
      content: [{ type: 'text', text }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 1, output_tokens: text.length },
    }),
    open: (model) =>
      sse(
        {
          type: 'message_start',
          message: {
            id: 'msg_faulty',
            type: 'message',
            role: 'assistant',
            model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: 1, output_tokens: 0 },
          },
        },
        'message_start',
      ) +
      sse(
        { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
        'content_block_start',
      ),
    piece: (_model, text) =>
      sse(
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } },
        'content_block_delta',
      ),
    close: (_model, length) =>
      sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop') +
      sse(
        {
          type: 'message_delta',
          delta: { stop_reason: 'end_turn', stop_sequence: null },
          usage: { output_tokens: length },
        },
        'message_delta',
      ) +
      sse({ type: 'message_stop' }, 'message_stop'),
    error: (status, message) => ({
      type: 'error',
      error: { type: status === 429 ? 'rate_limit_error' : 'api_error', message },
    }),
  },
  gemini: {
    whole: (model, text) => ({
      candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP', index: 0 }],
      usageMetadata: {
        promptTokenCount: 1,
        candidatesTokenCount: text.length,
        totalTokenCount: text.length + 1,
      },
      modelVersion: model,
    }),
    open: () => '',
    piece: (model, text) =>
      sse({ candidates: [{ content: { role: 'model', parts: [{ text }] }, index: 0 }], modelVersion: model }),
    close: (model, length) =>
      sse({
        candidates: [{ content: { role: 'model', parts: [{ text: '' }] }, finishReason: 'STOP', index: 0 }],
        usageMetadata: { promptTokenCount: 1, candidatesTokenCount: length, totalTokenCount: length + 1 },
        modelVersion: model,
      }),
    error: (status, message) => ({
      error: { code: status, message, status: status === 429 ? 'RESOURCE_EXHAUSTED' : 'INTERNAL' },
    }),
  },
};

function openaiChunk(model: string, delta: Json, finish: string | null = null): Json {
  return {
    id: 'chatcmpl-faulty',
    object: 'chat.completion.chunk',
    created: 1,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  };
}

/** Which protocol and call a request is, from its method and path; null for anything else. */
function chatCall(req: IncomingMessage, body: Json): ChatCall | null {
  const path = (req.url ?? '').split('?', 1)[0] ?? '';
  if (req.method !== 'POST') return null;
  if (path === '/v1/chat/completions') {
    return { protocol: 'openai', model: String(body.model), stream: body.stream === true, body };
  }
  if (path === '/v1/messages') {
    return { protocol: 'anthropic', model: String(body.model), stream: body.stream === true, body };
  }
  const gemini = /^\/v1beta\/models\/(.+):(generateContent|streamGenerateContent)$/.exec(path);
  if (gemini?.[1]) {
    return {
      protocol: 'gemini',
      model: decodeURIComponent(gemini[1]),
      stream: gemini[2] === 'streamGenerateContent',
      body,
    };
  }
  return null;
}

const MODEL_LISTS: Record<string, Json> = {
  '/v1/models': {
    object: 'list',
    data: [{ id: 'faulty-model', object: 'model', created: 1, owned_by: 'faulty' }],
  },
  '/v1beta/models': { models: [{ name: 'models/faulty-model' }] },
};

export async function startFaultyUpstream(options: FaultyUpstreamOptions = {}): Promise<FaultyUpstream> {
  const pieces = options.chunks ?? 4;
  const dripMs = options.dripMs ?? 150;
  const sockets = new Set<Socket>();
  const open = new Set<ServerResponse>();
  let received = 0;
  let aborted = 0;
  let held: Array<() => void> = [];
  let abortWaiters: Array<{ count: number; resolve: () => void }> = [];

  const noteAbort = () => {
    aborted += 1;
    abortWaiters = abortWaiters.filter((w) => {
      if (aborted < w.count) return true;
      w.resolve();
      return false;
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> => {
    let body: Json = {};
    try {
      body = raw ? (JSON.parse(raw) as Json) : {};
    } catch {
      // Not JSON: a chat call below will not match.
    }
    const path = (req.url ?? '').split('?', 1)[0] ?? '';
    if (req.method === 'GET' && MODEL_LISTS[path]) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(MODEL_LISTS[path]));
      return;
    }
    const call = chatCall(req, body);
    if (!call) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `no route ${req.method} ${path}` } }));
      return;
    }
    received += 1;
    open.add(res);
    res.once('close', () => {
      open.delete(res);
      if (!res.writableFinished) noteAbort();
    });
    const wire = WIRE[call.protocol];
    const fault = faultOf(call.model);
    const text = `echo: ${lastUserText(call.protocol, call.body)}`;
    const json = { 'content-type': 'application/json' };

    switch (fault) {
      case 'reset-before-headers':
        req.socket.destroy();
        return;
      case 'no-head':
        return;
      case 'invalid-json':
        res.writeHead(200, json);
        res.end('{"choices": [ this is not json');
        return;
      case 'invalid-sse':
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"this is": not json}\n\n');
        res.end('data: <html>oops</html>\n\n');
        return;
      case 'status-429':
      case 'status-500': {
        const status = fault === 'status-429' ? 429 : 500;
        res.writeHead(status, { ...json, 'retry-after': status === 429 ? '7' : '3' });
        res.end(JSON.stringify(wire.error(status, `upstream says ${status}`)));
        return;
      }
      case 'html-502':
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
        return;
      default:
        break;
    }

    const parts = split(text, pieces);
    if (!call.stream) {
      const whole = JSON.stringify(wire.whole(call.model, text));
      if (fault === 'reset-mid-stream' || fault === 'stall-mid-stream') {
        res.writeHead(200, { ...json, 'content-length': String(whole.length) });
        res.write(whole.slice(0, 10));
        if (fault === 'reset-mid-stream') setTimeout(() => req.socket.destroy(), 10);
        return;
      }
      if (fault === 'hold') await new Promise<void>((resolve) => held.push(resolve));
      if (fault === 'drip') await new Promise((resolve) => setTimeout(resolve, dripMs));
      if (res.destroyed) return;
      res.writeHead(200, json);
      res.end(whole);
      return;
    }

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(wire.open(call.model) + wire.piece(call.model, parts[0] ?? ''));
    if (fault === 'reset-mid-stream') {
      setTimeout(() => req.socket.destroy(), 10);
      return;
    }
    if (fault === 'stall-mid-stream') return;
    if (fault === 'endless-line' || fault === 'endless-event') {
      // Written as fast as the reader takes it (backpressure), until the reader goes away.
      const filler = fault === 'endless-line' ? 'x'.repeat(64 * 1024) : 'data: x\n'.repeat(8 * 1024);
      if (fault === 'endless-line') res.write('data: {"text": "');
      while (!res.destroyed) {
        if (res.write(filler)) continue;
        // Both listeners go once either fires: one 'close' listener per drain would pile up.
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done).off('close', done);
            resolve();
          };
          res.on('drain', done).on('close', done);
        });
      }
      return;
    }
    if (fault === 'hold') await new Promise<void>((resolve) => held.push(resolve));
    for (const part of parts.slice(1)) {
      if (fault === 'drip') await new Promise((resolve) => setTimeout(resolve, dripMs));
      if (res.destroyed) return;
      res.write(wire.piece(call.model, part));
    }
    if (fault === 'truncated-stream') {
      res.end();
      return;
    }
    if (fault === 'drip') await new Promise((resolve) => setTimeout(resolve, dripMs));
    if (res.destroyed) return;
    res.end(wire.close(call.model, text.length));
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const resume of held) resume();
      held = [];
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });

  await listen(options.port ?? 0);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get received() {
      return received;
    },
    get aborted() {
      return aborted;
    },
    inFlight: () => open.size,
    connections: () => sockets.size,
    waitForAborts: (count) =>
      aborted >= count ? Promise.resolve() : new Promise((resolve) => abortWaiters.push({ count, resolve })),
    release: () => {
      for (const resume of held) resume();
      held = [];
    },
    down: stop,
    up: () => listen(port),
    close: () => (server.listening ? stop() : Promise.resolve()),
  };
}
