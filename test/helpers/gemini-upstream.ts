/**
 * A fake Gemini API (v1beta) on 127.0.0.1 that speaks the real wire format, for backend and end-to-end tests.
 * It echoes the last user text (`Echo: <text>`), or calls the first declared function when tools are offered
 * and the last turn is not a functionResponse, or answers `Tool said: <response>` after one.
 *
 * Triggers, by model in the URL (`/v1beta/models/<model>:generateContent`):
 * - `fail-<status>` (e.g. `fail-401`, `fail-429`): HTTP <status> with Gemini's error body.
 * - `fail-midstream`: streams part of the answer, then a `data: {"error": …}` chunk (503 UNAVAILABLE).
 * - `cut-midstream`: streams part of the answer, then destroys the connection.
 * A request without `x-goog-api-key` (or a wrong one when `apiKey` is given), or with `?key=` in the URL,
 * gets 401/400. Tokens are counted as characters, as in the Anthropic mock; `maxOutputTokens` below the
 * answer length truncates it (MAX_TOKENS).
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
  /** Host root, as GEMINI_API_BASE_URL expects (no `/v1beta`). */
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

function errorBody(code: number, message: string): Json {
  return { error: { code, message, status: STATUS_NAMES[code] ?? 'UNKNOWN' } };
}

function sendError(res: ServerResponse, code: number, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(errorBody(code, message)));
}

interface Answer {
  text: string;
  call?: { name: string; args: Json };
  finishReason: string;
  promptTokens: number;
}

function answer(body: Json): Answer {
  const contents = (body.contents as Json[] | undefined) ?? [];
  const parts = ((contents[contents.length - 1]?.parts as Json[] | undefined) ?? []) as Json[];
  const response = parts.find((p) => p.functionResponse) as
    { functionResponse: { response: unknown } } | undefined;
  const userText = parts.map((p) => (typeof p.text === 'string' ? p.text : '')).join('');
  const declarations = ((body.tools as Json[] | undefined) ?? []).flatMap(
    (t) => (t.functionDeclarations as Json[] | undefined) ?? [],
  );
  const config = (
    body.toolConfig as { functionCallingConfig?: { mode?: string; allowedFunctionNames?: string[] } }
  )?.functionCallingConfig;
  if (!response && declarations.length && config?.mode !== 'NONE') {
    const name = config?.allowedFunctionNames?.[0] ?? String(declarations[0]?.name);
    return {
      text: '',
      call: { name, args: { query: userText, units: 'metric' } },
      finishReason: 'STOP',
      promptTokens: userText.length,
    };
  }
  let text = response
    ? `Tool said: ${JSON.stringify(response.functionResponse.response)}`
    : `Echo: ${userText}`;
  let finishReason = 'STOP';
  const gen = (body.generationConfig as Json | undefined) ?? {};
  for (const seq of (gen.stopSequences as string[] | undefined) ?? []) {
    const at = text.indexOf(seq);
    if (at >= 0) text = text.slice(0, at);
  }
  const max = Number(gen.maxOutputTokens);
  if (Number.isFinite(max) && text.length > max) {
    text = text.slice(0, max);
    finishReason = 'MAX_TOKENS';
  }
  return { text, finishReason, promptTokens: userText.length };
}

function usage(a: Answer): Json {
  const out = a.call ? JSON.stringify(a.call.args).length : a.text.length;
  return {
    promptTokenCount: a.promptTokens,
    candidatesTokenCount: out,
    totalTokenCount: a.promptTokens + out,
  };
}

function chunk(model: string, parts: Json[], extra: Json = {}, candidateExtra: Json = {}): Json {
  return {
    candidates: [{ content: { parts, role: 'model' }, ...candidateExtra, index: 0 }],
    ...extra,
    modelVersion: model,
    responseId: 'mockResponse1',
  };
}

function stream(res: ServerResponse, model: string, a: Answer, failure: 'error' | 'cut' | null): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const send = (payload: Json): boolean => res.write(`data: ${JSON.stringify(payload)}\r\n\r\n`);
  const chars = [...a.text];
  for (let i = 0; i < chars.length; i += 5) {
    send(
      chunk(model, [{ text: chars.slice(i, i + 5).join('') }], {
        usageMetadata: { promptTokenCount: a.promptTokens },
      }),
    );
    if (failure && i >= 5) {
      if (failure === 'cut') {
        res.socket?.destroy();
        return;
      }
      send(errorBody(503, 'The model is overloaded. Please try again later.'));
      res.end();
      return;
    }
  }
  const last = a.call ? [{ functionCall: a.call }] : [{ text: '' }];
  send(chunk(model, last, { usageMetadata: usage(a) }, { finishReason: a.finishReason }));
  res.end();
}

function generate(res: ServerResponse, model: string, method: string, body: Json): void {
  const fail = /^fail-(\d{3})$/.exec(model);
  if (fail) return sendError(res, Number(fail[1]), `Mock failure ${fail[1]} for model ${model}`);
  if (!Array.isArray(body.contents))
    return sendError(res, 400, '* GenerateContentRequest.contents: contents is not specified');
  const a = answer(body);
  if (method === 'streamGenerateContent') {
    const failure = model === 'fail-midstream' ? 'error' : model === 'cut-midstream' ? 'cut' : null;
    return stream(res, model, a, failure);
  }
  if (model === 'fail-midstream' || model === 'cut-midstream') return sendError(res, 500, 'Mock failure');
  const parts = [...(a.text ? [{ text: a.text }] : []), ...(a.call ? [{ functionCall: a.call }] : [])];
  res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(chunk(model, parts, { usageMetadata: usage(a) }, { finishReason: a.finishReason })));
}

const GENERATE_PATH = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/;

export async function startGeminiUpstream(opts: { apiKey?: string } = {}): Promise<MockUpstream> {
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
      const url = new URL(req.url ?? '/', 'http://mock');
      if (url.searchParams.has('key')) return sendError(res, 400, 'API key must not be sent in the URL');
      const key = req.headers['x-goog-api-key'];
      if (!key || (opts.apiKey !== undefined && key !== opts.apiKey))
        return sendError(res, 401, 'API key not valid.');
      if (req.method === 'GET' && url.pathname === '/v1beta/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            models: ['gemini-mock-flash', 'gemini-mock-pro'].map((id) => ({
              name: `models/${id}`,
              displayName: id,
              supportedGenerationMethods: ['generateContent', 'streamGenerateContent'],
            })),
          }),
        );
        return;
      }
      const route = GENERATE_PATH.exec(url.pathname);
      if (req.method === 'POST' && route) {
        const isSse = url.searchParams.get('alt') === 'sse';
        if (route[2] === 'streamGenerateContent' && !isSse)
          return sendError(res, 400, 'mock supports alt=sse only');
        return generate(
          res,
          decodeURIComponent(route[1] as string),
          route[2] as string,
          (body ?? {}) as Json,
        );
      }
      sendError(res, 404, `No route ${req.method} ${url.pathname}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
