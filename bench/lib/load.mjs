// The load generator: autocannon, in the benchmark's own process (the servers under test are separate
// processes). Latencies are collected per response from autocannon's 'response' event, at full precision.
import autocannon from 'autocannon';
import { LatencySamples } from './stats.mjs';

export const CHAT_PATH = '/v1/chat/completions';

/**
 * A coding agent's turn, as it fills a context: source code quoted in messages (quotes, backslashes and line
 * breaks escaped, as JSON has them), with a little non-ASCII text (a dash, a check mark, an accented name)
 * as tool output and prose hold.
 */
const AGENT_CONTEXT =
  'Here is src/server/lane.ts — please review it ✓ (from José):\n```ts\n' +
  'export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {\n' +
  '  const chunks: Buffer[] = [];\n  let size = 0;\n' +
  '  req.on("data", (chunk) => { size += chunk.length; if (size > limit) throw new Error("too large"); });\n' +
  '  return new Promise((resolve) => req.once("end", () => resolve(Buffer.concat(chunks, size))));\n}\n```\n';

/** A chat request of about `bytes` bytes: the typical small one, padded with agent context (see above). */
function paddedRequestBody({ stream, bytes }) {
  const base = JSON.parse(chatRequestBody({ stream }));
  const room = bytes - Buffer.byteLength(JSON.stringify(base));
  const turns = [];
  let used = 0;
  for (let i = 0; used < room - 64; i++) {
    const text = AGENT_CONTEXT.repeat(Math.max(1, Math.min(12, Math.floor((room - used) / 640))));
    const turn = { role: i % 2 === 0 ? 'user' : 'assistant', content: text };
    turns.push(turn);
    used += Buffer.byteLength(JSON.stringify(turn)) + 1;
  }
  base.messages.splice(1, 0, ...turns);
  return JSON.stringify(base);
}

/** A typical small chat request (~400 bytes), or (with `bytes`) one of about that size. */
export function chatRequestBody({ stream, bytes }) {
  if (bytes !== undefined) return paddedRequestBody({ stream, bytes });
  return JSON.stringify({
    model: 'gpt-4o-mini',
    stream,
    temperature: 0.2,
    messages: [
      { role: 'system', content: 'You are a helpful assistant. Answer briefly and precisely.' },
      {
        role: 'user',
        content:
          'Summarise the trade-offs between connection pooling and per-request connections for an HTTP ' +
          'reverse proxy in two sentences.',
      },
    ],
  });
}

/**
 * A coding agent's request (the sessions-and-guards rows): a shell tool offered (`Bash`), eight earlier tool
 * calls, all different, with their results — so the dangerous-command guard reads the answer and the loop
 * guard looks at the turns, and neither fires — sent with a session id.
 */
export function agentRequestBody({ stream }) {
  const messages = [
    { role: 'system', content: 'You are a coding agent. Use the Bash tool to inspect the repository.' },
    { role: 'user', content: 'Find where the connection pool is configured and summarise it.' },
  ];
  for (let i = 0; i < 8; i++) {
    const id = `call_${i}`;
    messages.push(
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id,
            type: 'function',
            function: { name: 'Bash', arguments: JSON.stringify({ command: `cat src/file${i}.ts` }) },
          },
        ],
      },
      { role: 'tool', tool_call_id: id, content: `export const setting${i} = ${i}; // file ${i}` },
    );
  }
  return JSON.stringify({
    model: 'gpt-4o-mini',
    stream,
    messages,
    tools: [
      {
        type: 'function',
        function: {
          name: 'Bash',
          description: 'Run a shell command',
          parameters: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] },
        },
      },
    ],
  });
}

export const AGENT_SESSION_HEADERS = { 'x-session-id': 'bench-agent-session' };

export const RESPONSES_PATH = '/v1/responses';

/** The same request for the Responses API (`store: false`: the benchmark measures the wire, not state). */
export function responsesRequestBody({ stream, model = 'gpt-4o-mini' }) {
  return JSON.stringify({
    model,
    stream,
    store: false,
    temperature: 0.2,
    instructions: 'You are a helpful assistant. Answer briefly and precisely.',
    input:
      'Summarise the trade-offs between connection pooling and per-request connections for an HTTP ' +
      'reverse proxy in two sentences.',
  });
}

export const ANTHROPIC_PATH = '/anthropic/v1/messages';

/**
 * The same request from an Anthropic client (Claude Code's shape: a system prompt, `max_tokens`), to the
 * default OpenAI backend: the translated path (README, "Reasoning between families"; issue #22).
 */
export function anthropicRequestBody({ stream, model = 'gpt-4o-mini' }) {
  return JSON.stringify({
    model,
    stream,
    max_tokens: 1024,
    temperature: 0.2,
    system: 'You are a helpful assistant. Answer briefly and precisely.',
    messages: [
      {
        role: 'user',
        content:
          'Summarise the trade-offs between connection pooling and per-request connections for an HTTP ' +
          'reverse proxy in two sentences.',
      },
    ],
  });
}

/**
 * The autocannon options shared by every run: chat completions with the target's key (or the target's own
 * `request`: path and body, the Responses API's rows). `headers` adds to
 * the defaults (the attack scenario's clients say who they are in X-Forwarded-For).
 */
export function chatLoad({ origin, key, stream, connections, headers = {}, request, bodyBytes }) {
  return {
    url: `${origin}${request?.path ?? CHAT_PATH}`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: request ? request.body(stream) : chatRequestBody({ stream, bytes: bodyBytes }),
    connections,
    pipelining: 1,
    timeout: 10,
  };
}

/**
 * One autocannon run against origin. Returns throughput, latency and error counts. Throws nothing on
 * error responses: the caller decides (the benchmark fails loudly on any).
 */
export async function measure({ origin, key, stream, connections, durationS, headers, request, bodyBytes }) {
  return measureRun({
    ...chatLoad({ origin, key, stream, connections, headers, request, bodyBytes }),
    duration: durationS,
  });
}

/** One autocannon run of `options`: throughput, latency of the 2xx answers, and error counts. */
export async function measureRun(options) {
  const latencies = new LatencySamples();
  const run = autocannon(options);
  run.on('response', (_client, statusCode, _bytes, ms) => {
    if (statusCode >= 200 && statusCode < 300) latencies.add(ms);
  });
  const result = await run;
  return {
    reqPerSec: result.requests.total / result.duration,
    requests: result.requests.total,
    ...latencies.summary(),
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: Object.keys(result.statusCodeStats).join(','),
  };
}

/** Sends exactly `amount` requests (for the memory benchmark). */
export async function sendAmount({ origin, key, stream, connections, amount }) {
  const result = await autocannon({ ...chatLoad({ origin, key, stream, connections }), amount });
  return {
    reqPerSec: result.requests.total / result.duration,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

/** A run is only worth reporting if every response was a 2xx and nothing failed at the socket level. */
export function failuresOf(stats) {
  const problems = [];
  if (stats.non2xx > 0)
    problems.push(`${stats.non2xx} non-2xx responses (status codes seen: ${stats.statusCodes})`);
  if (stats.errors > 0) problems.push(`${stats.errors} socket errors`);
  if (stats.timeouts > 0) problems.push(`${stats.timeouts} timeouts`);
  return problems;
}
