/**
 * Shared pieces of the reliability suite: building a chat request for each front-end, judging whether an
 * answer is well-formed in its protocol, counting a process's open file descriptors, and running the CLI
 * with a deadline (a startup error must end the process; a silent default would leave it listening).
 */
import { readdirSync } from 'node:fs';
import { connect as connectTcp, createServer } from 'node:net';
import { Agent, request } from 'undici';

export type Front = 'openai' | 'anthropic' | 'gemini' | 'responses';
/** The three provider protocols: front-ends, and the backends of the same names. */
export const FRONTS: readonly Front[] = ['openai', 'anthropic', 'gemini'];
/** Every front-end a client can call: the three, and OpenAI's Responses API (a front-end only). */
export const CLIENT_FRONTS: readonly Front[] = [...FRONTS, 'responses'];

/** A request of `front` passes through to the backend named `back` (Responses: the openai backend). */
export function samePath(front: Front, back: Front): boolean {
  return front === back || (front === 'responses' && back === 'openai');
}

export interface ChatRequest {
  path: string;
  body: string;
}

/** A chat request in `front`'s protocol for `model`, asking for `prompt`. */
export function chatRequest(front: Front, model: string, stream: boolean, prompt = 'ping'): ChatRequest {
  switch (front) {
    case 'openai':
      return {
        path: '/v1/chat/completions',
        body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: prompt }] }),
      };
    case 'anthropic':
      return {
        path: '/anthropic/v1/messages',
        body: JSON.stringify({
          model,
          stream,
          max_tokens: 256,
          messages: [{ role: 'user', content: prompt }],
        }),
      };
    case 'gemini':
      return {
        path: `/v1beta/models/${model}:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`,
        body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: prompt }] }] }),
      };
    case 'responses':
      return { path: '/v1/responses', body: JSON.stringify({ model, stream, input: prompt, store: false }) };
  }
}

/** What a client made of an answer: a complete one, a well-formed error (HTTP or in-stream), or garbage. */
export type Outcome =
  | { kind: 'answer'; status: number; text: string; streamed: boolean }
  | { kind: 'error'; status: number; message: string; streamed: boolean }
  | { kind: 'malformed'; status: number; why: string };

export interface SseEvent {
  event?: string;
  data: string;
}

/** Splits an SSE body into events (enough of the format for what the proxy writes). */
export function parseSseText(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (block.trim() === '') continue;
    const event: SseEvent = { data: '' };
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event:')) event.event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    event.data = data.join('\n');
    events.push(event);
  }
  return events;
}

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The protocol's error envelope, or null when `body` is not one (README, Endpoints). */
export function envelopeMessage(front: Front, body: unknown): string | null {
  if (!isRecord(body) || !isRecord(body.error)) return null;
  const error = body.error;
  if (typeof error.message !== 'string' || error.message === '') return null;
  const wellFormed = {
    openai: typeof error.type === 'string' && 'code' in error,
    responses: typeof error.type === 'string' && 'code' in error,
    anthropic: body.type === 'error' && typeof error.type === 'string',
    gemini: typeof error.code === 'number' && typeof error.status === 'string',
  }[front];
  return wellFormed ? error.message : null;
}

/** Per protocol: the text a stream event adds, and whether it finishes the answer. */
const STREAM_READERS: Record<
  Front,
  (data: Json, event: string | undefined) => { text: string; done: boolean }
> = {
  openai: (data) => {
    const choice = Array.isArray(data.choices) ? (data.choices[0] as Json | undefined) : undefined;
    const delta = isRecord(choice?.delta) ? choice.delta : {};
    return { text: typeof delta.content === 'string' ? delta.content : '', done: false };
  },
  anthropic: (data, event) => {
    const delta = isRecord(data.delta) ? data.delta : {};
    const text = event === 'content_block_delta' && typeof delta.text === 'string' ? delta.text : '';
    return { text, done: event === 'message_stop' };
  },
  responses: (data) => ({
    text: data.type === 'response.output_text.delta' && typeof data.delta === 'string' ? data.delta : '',
    done: data.type === 'response.completed',
  }),
  gemini: (data) => {
    const candidate = Array.isArray(data.candidates) ? (data.candidates[0] as Json | undefined) : undefined;
    const content = isRecord(candidate?.content) ? candidate.content : {};
    const parts = Array.isArray(content.parts) ? (content.parts as Json[]) : [];
    const text = parts.map((p) => (typeof p.text === 'string' ? p.text : '')).join('');
    return { text, done: typeof candidate?.finishReason === 'string' };
  },
};

function wholeText(front: Front, body: Json): string | null {
  if (front === 'openai') {
    const choice = Array.isArray(body.choices) ? (body.choices[0] as Json | undefined) : undefined;
    const message = isRecord(choice?.message) ? choice.message : undefined;
    return typeof message?.content === 'string' ? message.content : null;
  }
  if (front === 'responses') {
    if (body.object !== 'response' || body.status !== 'completed' || !Array.isArray(body.output)) return null;
    return (body.output as Json[])
      .flatMap((item) => (Array.isArray(item.content) ? (item.content as Json[]) : []))
      .map((part) => (typeof part.text === 'string' ? part.text : ''))
      .join('');
  }
  if (front === 'anthropic') {
    if (body.type !== 'message' || !Array.isArray(body.content)) return null;
    return (body.content as Json[]).map((b) => (typeof b.text === 'string' ? b.text : '')).join('');
  }
  const { text, done } = STREAM_READERS.gemini(body, undefined);
  return done ? text : null;
}

function classifyStream(front: Front, status: number, text: string): Outcome {
  const events = parseSseText(text);
  let answer = '';
  let finished = false;
  let sequence = -1;
  for (const [index, event] of events.entries()) {
    const isLast = index === events.length - 1;
    if (front === 'openai' && event.data === '[DONE]') {
      if (!isLast) return { kind: 'malformed', status, why: 'events after [DONE]' };
      finished = true;
      continue;
    }
    const data = parseJson(event.data);
    if (!isRecord(data))
      return { kind: 'malformed', status, why: `event data is not JSON: ${event.data.slice(0, 80)}` };
    // Every Responses event is numbered, the proxy's own error events too, each past the one before.
    if (front === 'responses') {
      const number = data.sequence_number;
      if (typeof number !== 'number' || !Number.isInteger(number) || number <= sequence)
        return { kind: 'malformed', status, why: `sequence_number ${String(number)} after ${sequence}` };
      sequence = number;
    }
    const isError =
      front === 'anthropic' || front === 'responses' ? event.event === 'error' : 'error' in data;
    if (isError) {
      const message =
        front === 'responses'
          ? typeof data.message === 'string' && data.message !== '' && typeof data.code === 'string'
            ? data.message
            : null
          : envelopeMessage(front, data);
      if (message === null) return { kind: 'malformed', status, why: `malformed error event ${event.data}` };
      // A Responses stream closes with response.failed after its error event; nothing else may follow.
      const rest = events.slice(index + 1);
      const closed =
        front === 'responses'
          ? rest.length === 0 ||
            (rest.length === 1 && (parseJson(rest[0]!.data) as Json | undefined)?.type === 'response.failed')
          : isLast;
      if (!closed) return { kind: 'malformed', status, why: 'events after the error event' };
      return { kind: 'error', status, message, streamed: true };
    }
    const read = STREAM_READERS[front](data, event.event);
    answer += read.text;
    if (read.done) finished = true;
  }
  if (!finished)
    return { kind: 'malformed', status, why: `stream ended without finishing: ${text.slice(-200)}` };
  return { kind: 'answer', status, text: answer, streamed: true };
}

/** Judges a raw answer as the client's SDK would see it. */
export function classify(front: Front, status: number, contentType: string, text: string): Outcome {
  if (status >= 200 && status < 300 && contentType.includes('text/event-stream')) {
    return classifyStream(front, status, text);
  }
  const body = parseJson(text);
  if (status >= 400) {
    const message = envelopeMessage(front, body);
    return message === null
      ? { kind: 'malformed', status, why: `not a ${front} error envelope: ${text.slice(0, 200)}` }
      : { kind: 'error', status, message, streamed: false };
  }
  const answer = isRecord(body) ? wholeText(front, body) : null;
  return answer === null
    ? { kind: 'malformed', status, why: `not a ${front} answer: ${text.slice(0, 200)}` }
    : { kind: 'answer', status, text: answer, streamed: false };
}

export interface Exchange {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  outcome: Outcome;
  /** The body ended without HTTP's end (a failed stream toward a Gemini client is cut after its error). */
  cut: boolean;
}

/**
 * Sends one chat request and reads the whole answer. A deadline turns a hang into a failure with a clear
 * message instead of a stuck test.
 */
export async function exchange(
  base: string,
  front: Front,
  req: ChatRequest,
  headers: Record<string, string>,
  options: { dispatcher?: Agent; deadlineMs?: number } = {},
): Promise<Exchange> {
  const signal = AbortSignal.timeout(options.deadlineMs ?? 10_000);
  try {
    const res = await request(`${base}${req.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: req.body,
      signal,
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
    });
    // Read as it comes, so that a body cut after its error event still tells what it said.
    const decoder = new TextDecoder();
    let text = '';
    let cut = false;
    try {
      for await (const chunk of res.body) text += decoder.decode(chunk as Buffer, { stream: true });
    } catch (err) {
      if (signal.aborted) throw err;
      cut = true;
    }
    text += decoder.decode();
    const contentType = String(res.headers['content-type'] ?? '');
    return {
      status: res.statusCode,
      headers: res.headers,
      text,
      outcome: classify(front, res.statusCode, contentType, text),
      cut,
    };
  } catch (err) {
    if (signal.aborted)
      throw new Error(`${front} ${req.path}: no complete answer within the deadline (hang)`, {
        cause: err,
      });
    throw err;
  }
}

/** Open file descriptors of a process (Linux), e.g. to show sockets are not leaked. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** A port nothing listens on: bound once, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `check` until it holds or the deadline passes; returns its last value. */
export async function eventually<T>(
  read: () => T,
  check: (value: T) => boolean,
  deadlineMs = 5_000,
): Promise<T> {
  const until = Date.now() + deadlineMs;
  let value = read();
  while (!check(value) && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    value = read();
  }
  return value;
}

export interface RawAnswer {
  /** Status of the first response on the connection, 0 if the server closed without answering. */
  status: number;
  /** Everything the server wrote. */
  raw: string;
}

/**
 * Writes `bytes` as they are (no client-side validation of header names or values) on a fresh connection,
 * half-closes it, and collects whatever the server answers until it closes.
 */
export function rawExchange(base: string, bytes: Buffer | string, deadlineMs = 5_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connectTcp(Number(port), hostname, () => socket.end(bytes));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`no answer to ${JSON.stringify(String(bytes).slice(0, 120))} within ${deadlineMs} ms`),
      );
    }, deadlineMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(raw)?.[1] ?? 0);
      resolve({ status, raw });
    });
  });
}

/** The env that points all three built-in backends at one fake provider, with placeholder provider keys. */
export function backendsAt(upstreamUrl: string, proxyKey: string): Record<string, string> {
  return {
    LLM_INTERACTIVE_PROXY_API_KEY: proxyKey,
    OPENAI_API_KEY: 'sk-provider-openai-000',
    ANTHROPIC_API_KEY: 'sk-ant-provider-000',
    GEMINI_API_KEY: 'AIza-provider-000',
    OPENAI_API_BASE_URL: `${upstreamUrl}/v1`,
    ANTHROPIC_API_BASE_URL: `${upstreamUrl}/v1`,
    GEMINI_API_BASE_URL: upstreamUrl,
  };
}
