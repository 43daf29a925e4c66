/**
 * A fake Anthropic Messages API on 127.0.0.1 that speaks the real wire format, for backend and end-to-end
 * tests. It echoes the last user text (`Echo: <text>`), or calls the first tool when tools are offered and
 * the last turn is not a tool result, or answers `Tool said: <result>` after a tool result.
 *
 * Triggers, by request `model`:
 * - `fail-<status>` (e.g. `fail-401`, `fail-429`): HTTP <status> with Anthropic's error body.
 * - `fail-midstream`: streams part of the answer, then an `event: error` (overloaded_error).
 * - `cut-midstream`: streams part of the answer, then destroys the connection.
 * A request without `x-api-key` (or with a wrong one when `apiKey` is given) gets 401.
 * Tokens are counted as characters: input = last user text length, output = answer length. `max_tokens`
 * below the answer length truncates it (stop_reason max_tokens); a stop sequence in the answer cuts it there.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

export interface MockUpstream {
  /** Base URL including `/v1`, as ANTHROPIC_API_BASE_URL expects. */
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

function sendError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': 'req_mock' });
  res.end(JSON.stringify({ type: 'error', error: { type: ERROR_TYPES[status] ?? 'api_error', message } }));
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((b: Json) =>
      b.type === 'text' ? String(b.text) : b.type === 'tool_result' ? textOf(b.content) : '',
    )
    .join('');
}

interface Answer {
  text: string;
  tool?: { id: string; name: string; input: Json };
  stopReason: string;
  stopSequence: string | null;
  inputTokens: number;
}

function answer(body: Json): Answer {
  const messages = (body.messages as Json[] | undefined) ?? [];
  const last = messages[messages.length - 1] ?? { content: '' };
  const lastBlocks = Array.isArray(last.content) ? (last.content as Json[]) : [];
  const toolResult = lastBlocks.find((b) => b.type === 'tool_result');
  const userText = textOf(last.content);
  const tools = (body.tools as Json[] | undefined) ?? [];
  const choice = body.tool_choice as Json | undefined;
  if (!toolResult && tools.length && choice?.type !== 'none') {
    const tool = choice?.type === 'tool' ? tools.find((t) => t.name === choice.name) : tools[0];
    return {
      text: '',
      tool: { id: 'toolu_mock_1', name: String(tool?.name), input: { query: userText, units: 'metric' } },
      stopReason: 'tool_use',
      stopSequence: null,
      inputTokens: userText.length,
    };
  }
  let text = toolResult ? `Tool said: ${userText}` : `Echo: ${userText}`;
  let stopReason = 'end_turn';
  let stopSequence: string | null = null;
  for (const seq of (body.stop_sequences as string[] | undefined) ?? []) {
    const at = text.indexOf(seq);
    if (at >= 0) {
      text = text.slice(0, at);
      stopReason = 'stop_sequence';
      stopSequence = seq;
    }
  }
  const max = Number(body.max_tokens);
  if (Number.isFinite(max) && text.length > max) {
    text = text.slice(0, max);
    stopReason = 'max_tokens';
  }
  return { text, stopReason, stopSequence, inputTokens: userText.length };
}

function event(res: ServerResponse, name: string, payload: Json): void {
  res.write(`event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`);
}

function stream(res: ServerResponse, body: Json, a: Answer, failure: 'error' | 'cut' | null): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  event(res, 'message_start', {
    type: 'message_start',
    message: {
      id: 'msg_mock_1',
      type: 'message',
      role: 'assistant',
      model: body.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: a.inputTokens, output_tokens: 1 },
    },
  });
  event(res, 'ping', { type: 'ping' });
  let index = 0;
  if (a.text) {
    event(res, 'content_block_start', {
      type: 'content_block_start',
      index,
      content_block: { type: 'text', text: '' },
    });
    // Small pieces, so multi-byte characters and words straddle deltas the way real streams do.
    const chars = [...a.text];
    for (let i = 0; i < chars.length; i += 4) {
      event(res, 'content_block_delta', {
        type: 'content_block_delta',
        index,
        delta: { type: 'text_delta', text: chars.slice(i, i + 4).join('') },
      });
      if (failure && i >= 4) {
        if (failure === 'cut') {
          res.socket?.destroy();
          return;
        }
        event(res, 'error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
        res.end();
        return;
      }
    }
    event(res, 'content_block_stop', { type: 'content_block_stop', index });
    index++;
  }
  if (a.tool) {
    event(res, 'content_block_start', {
      type: 'content_block_start',
      index,
      content_block: { type: 'tool_use', id: a.tool.id, name: a.tool.name, input: {} },
    });
    const json = JSON.stringify(a.tool.input);
    for (let i = 0; i < json.length; i += 7) {
      event(res, 'content_block_delta', {
        type: 'content_block_delta',
        index,
        delta: { type: 'input_json_delta', partial_json: json.slice(i, i + 7) },
      });
    }
    event(res, 'content_block_stop', { type: 'content_block_stop', index });
  }
  event(res, 'message_delta', {
    type: 'message_delta',
    delta: { stop_reason: a.stopReason, stop_sequence: a.stopSequence },
    usage: { output_tokens: outputTokens(a) },
  });
  event(res, 'message_stop', { type: 'message_stop' });
  res.end();
}

function outputTokens(a: Answer): number {
  return a.tool ? JSON.stringify(a.tool.input).length : a.text.length;
}

function messages(res: ServerResponse, body: Json): void {
  const model = String(body.model ?? '');
  const fail = /^fail-(\d{3})$/.exec(model);
  if (fail) return sendError(res, Number(fail[1]), `Mock failure ${fail[1]} for model ${model}`);
  if (!Array.isArray(body.messages) || typeof body.max_tokens !== 'number') {
    return sendError(res, 400, 'messages and max_tokens are required');
  }
  const a = answer(body);
  if (body.stream === true) {
    const failure = model === 'fail-midstream' ? 'error' : model === 'cut-midstream' ? 'cut' : null;
    return stream(res, body, a, failure);
  }
  if (model === 'fail-midstream' || model === 'cut-midstream') return sendError(res, 500, 'Mock failure');
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      id: 'msg_mock_1',
      type: 'message',
      role: 'assistant',
      model,
      content: [
        ...(a.text ? [{ type: 'text', text: a.text }] : []),
        ...(a.tool ? [{ type: 'tool_use', ...a.tool }] : []),
      ],
      stop_reason: a.stopReason,
      stop_sequence: a.stopSequence,
      usage: { input_tokens: a.inputTokens, output_tokens: outputTokens(a) },
    }),
  );
}

export async function startAnthropicUpstream(opts: { apiKey?: string } = {}): Promise<MockUpstream> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = raw;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        // Recorded as text so a test can see what malformed thing arrived.
      }
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const key = req.headers['x-api-key'];
      if (!key || (opts.apiKey !== undefined && key !== opts.apiKey))
        return sendError(res, 401, 'invalid x-api-key');
      const path = (req.url ?? '').split('?')[0];
      if (req.method === 'GET' && path === '/v1/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            data: [
              {
                type: 'model',
                id: 'claude-mock-1',
                display_name: 'Claude Mock 1',
                created_at: '2025-01-01T00:00:00Z',
              },
              {
                type: 'model',
                id: 'claude-mock-2',
                display_name: 'Claude Mock 2',
                created_at: '2025-01-01T00:00:00Z',
              },
            ],
            has_more: false,
            first_id: 'claude-mock-1',
            last_id: 'claude-mock-2',
          }),
        );
        return;
      }
      if (req.method === 'POST' && path === '/v1/messages') return messages(res, (body ?? {}) as Json);
      sendError(res, 404, `No route ${req.method} ${path}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
