/**
 * The fake LLM provider used by the tests, the benchmark and the soak run: one server on loopback that speaks
 * all three provider protocols, records what it received, and misbehaves on demand (the switchboard of
 * faults). README.md beside this file documents the routes, the normal answers and every fault.
 *
 * Plain JavaScript so that `node bench/…` and `node scripts/…` import it as they are; index.d.mts types it.
 */
import { createServer } from 'node:http';

// --- the switchboard ------------------------------------------------------------------------------------

/** Faults without a parameter, each with what it does (README.md has the same table, with more detail). */
export const FAULTS = {
  'reset-before-headers': 'destroys the connection as soon as the request has arrived',
  'no-head': 'never answers',
  'html-502': '502 with an HTML page, as a load balancer in front of a provider sends',
  'context-length-exceeded': "400: the prompt is too long, in the protocol's error envelope",
  'content-filter': "the prompt was blocked by the provider's safety filter, as the protocol reports it",
  'key-in-error': '401 whose JSON error message echoes the received key, JSON-escaped',
  'key-in-error-text': '500 text/plain that echoes the received key',
  'invalid-json': '200 application/json whose body is not JSON',
  'invalid-sse': '200 text/event-stream whose events hold no JSON',
  'reset-mid-stream': 'the head and a first piece, then the connection is destroyed',
  'stall-mid-stream': 'the head and a first piece, then silence',
  'error-mid-stream': "a stream: first piece, then the protocol's error event; whole: 500",
  'error-before-content':
    "a stream: the protocol's opening (Anthropic's message_start and a ping), then its error event; whole: 500",
  'key-before-content': 'as error-before-content, its message echoing the key the provider received',
  'opening-then-silence': "a stream: the protocol's opening and an SSE comment, then silence; whole: silence",
  'key-in-stream-error': 'a stream: first piece, then an error event echoing the key, written in two cuts',
  'malformed-chunk': 'a stream with one event that is not JSON between good pieces',
  'truncated-stream': 'a stream that ends cleanly without its finish (no [DONE], no message_stop)',
  'endless-line': 'a stream that, after a first piece, sends one line that never ends',
  'endless-event': 'a stream that, after a first piece, sends data lines but never ends the event',
  drip: 'a normal answer whose pieces arrive `dripMs` apart',
  hold: 'a normal answer that waits for release() (streams: after the first piece)',
  'tools-reused-index': 'OpenAI streams only: two tool calls that both carry wire index 0',
  'missing-done': 'a stream complete with its finish and usage, but without [DONE] / message_stop',
  flap: 'every other request to the model (the first included) is a 503, the others answer',
  'rejects-prefill':
    '400 when the last turn is the assistant’s (a model that takes no prefill), else an answer',
  'rate-limited-reset-only': "429 with the provider's x-ratelimit-reset-requests (7s) alone",
  'accepts-prefill':
    'a last turn of the assistant’s is a prefill: the answer goes on from where it stops (the rest only)',
};

/** Faults with a parameter: a pattern and what it reads from the name. */
const PARAMETERISED = [
  {
    pattern: /^status-(\d{3})(?:-retry-after-(\d+))?$/,
    read: (m) => ({ name: 'status', status: Number(m[1]), retryAfter: m[2] }),
  },
  {
    // OpenAI's own form: milliseconds, in `retry-after-ms`, without a `Retry-After`.
    pattern: /^status-(\d{3})-retry-after-ms-(\d+)$/,
    read: (m) => ({ name: 'status', status: Number(m[1]), retryAfterMs: m[2] }),
  },
  {
    pattern: /^slow-first-byte(?:-(\d+))?$/,
    read: (m) => ({ name: 'slow-first-byte', ms: m[1] && Number(m[1]) }),
  },
  {
    // The head at once, the first piece (or the whole answer) only after `ms`.
    pattern: /^slow-first-token(?:-(\d+))?$/,
    read: (m) => ({ name: 'slow-first-token', ms: m[1] && Number(m[1]) }),
  },
  {
    // Another fault for the first n requests naming this exact model, normal answers after.
    pattern: /^first-(\d+)-(.+)$/,
    read: (m) => {
      const inner = parseFault(m[2]);
      return inner && { name: 'first', count: Number(m[1]), inner };
    },
  },
];

/** A fault's name as written (`status-429-retry-after-7`) as what it does; null for no known fault. */
export function parseFault(spec) {
  if (Object.hasOwn(FAULTS, spec)) return { name: spec };
  for (const { pattern, read } of PARAMETERISED) {
    const match = pattern.exec(spec);
    if (match) return read(match);
  }
  return null;
}

/** The fault a model name asks for: `fault-<spec>` anywhere in it (`openai:fault-no-head` works too), a label may follow. */
export function faultInModel(model) {
  const match = /fault-([a-z0-9-]+)/.exec(model);
  // A label may follow the fault (`fault-hold-shutdown`), to tell calls apart: the longest known name wins.
  for (let spec = match?.[1]; spec; spec = spec.includes('-') ? spec.slice(0, spec.lastIndexOf('-')) : '') {
    const fault = parseFault(spec);
    if (fault) return fault;
  }
  return null;
}

// --- what a normal answer says -----------------------------------------------------------------------------

/**
 * A Responses request's tools as OpenAI reads them: `tools`, and those of Codex's `additional_tools` input
 * items, whose `namespace` entries hold tools (the `functions` namespace's called by their bare names).
 */
const responsesTools = (body) =>
  [
    ...(body.tools ?? []),
    ...(Array.isArray(body.input) ? body.input : []).flatMap((item) =>
      item?.type === 'additional_tools' ? (item.tools ?? []) : [],
    ),
  ].flatMap((t) =>
    t?.type === 'namespace'
      ? (t.tools ?? []).map((inner) =>
          t.name === 'functions' ? inner : { ...inner, name: `${t.name}.${inner.name}` },
        )
      : [t],
  );

/** Per protocol: where the turns are, how a tool is offered and answered, and the answer's length limit. */
const READ = {
  openai: {
    turns: (body) => body.messages,
    userText: (turn) => textOf(turn.content),
    toolResult: (turn) => (turn.role === 'tool' ? textOf(turn.content) : null),
    tools: (body) => (body.tools ?? []).map((t) => t.function?.name),
    toolChoice: (body) => (body.tool_choice === 'none' ? 'none' : (body.tool_choice?.function?.name ?? null)),
    // OpenAI's limit is not applied: translated clients often send small ones, and no test needs it.
    limit: () => undefined,
    stopSequences: () => [],
  },
  anthropic: {
    turns: (body) => body.messages,
    userText: (turn) => textOf(turn.content),
    toolResult: (turn) => {
      const result = Array.isArray(turn.content) && turn.content.find((b) => b.type === 'tool_result');
      return result ? textOf(result.content) : null;
    },
    tools: (body) => (body.tools ?? []).map((t) => t.name),
    toolChoice: (body) =>
      body.tool_choice?.type === 'none'
        ? 'none'
        : body.tool_choice?.type === 'tool'
          ? body.tool_choice.name
          : null,
    limit: (body) => body.max_tokens,
    stopSequences: (body) => body.stop_sequences ?? [],
  },
  responses: {
    // Input items: a string is one user message; function_call items and outputs have no role.
    turns: (body) =>
      typeof body.input === 'string' ? [{ role: 'user', content: body.input }] : (body.input ?? []),
    userText: (turn) => textOf(turn.content),
    toolResult: (turn) =>
      turn.type === 'function_call_output' || turn.type === 'custom_tool_call_output'
        ? textOf(turn.output)
        : null,
    tools: (body) =>
      responsesTools(body).map((t) => (t.type === 'function' || t.type === 'custom' ? t.name : null)),
    toolChoice: (body) => (body.tool_choice === 'none' ? 'none' : (body.tool_choice?.name ?? null)),
    limit: () => undefined,
    stopSequences: () => [],
  },
  gemini: {
    turns: (body) => body.contents,
    userText: (turn) => textOf(turn.parts),
    toolResult: (turn) => {
      const part = (turn.parts ?? []).find((p) => p.functionResponse);
      return part ? JSON.stringify(part.functionResponse.response) : null;
    },
    tools: (body) => (body.tools ?? []).flatMap((t) => (t.functionDeclarations ?? []).map((d) => d.name)),
    toolChoice: (body) => {
      const config = body.toolConfig?.functionCallingConfig;
      return config?.mode === 'NONE' ? 'none' : (config?.allowedFunctionNames?.[0] ?? null);
    },
    limit: (body) => body.generationConfig?.maxOutputTokens,
    stopSequences: (body) => body.generationConfig?.stopSequences ?? [],
  },
};

/**
 * The shell tools of the coding agents, with the arguments of a harmless call (`echo hi`): when one is
 * offered, the tool call goes to it, so that a real agent runs it and sends its result back.
 */
export const SHELL_TOOLS = {
  Bash: { command: 'echo hi', description: 'Print hi' }, // Claude Code
  run_shell_command: { command: 'echo hi', description: 'Print hi' }, // Gemini CLI
  bash: { command: 'echo hi', description: 'Print hi' }, // opencode
  shell: { command: ['echo', 'hi'] }, // Codex (function tool, argv)
  shell_command: { command: 'echo hi' }, // Codex (string command)
  exec_command: { cmd: 'echo hi' }, // Codex (unified exec)
};

/** The text in a content value of any of the three shapes (string, blocks, parts). */
function textOf(node) {
  if (typeof node === 'string') return node;
  if (Array.isArray(node)) return node.map(textOf).join('');
  if (node && typeof node === 'object') {
    if (typeof node.text === 'string') return node.text;
    if (node.type === 'tool_result' || node.functionResponse) return '';
    return textOf(node.content ?? node.parts ?? '');
  }
  return '';
}

/** The text of the last user turn, whatever the protocol: what a normal answer echoes. */
function lastUserText(protocol, body) {
  const read = READ[protocol];
  const turns = read.turns(body) ?? [];
  // Gemini's turns may lack a role; Responses items other than messages (tool calls, outputs) carry a type.
  const last = [...turns]
    .reverse()
    .find((t) => t.role === 'user' || (t.role === undefined && (t.type ?? 'message') === 'message'));
  return last ? read.userText(last) : '';
}

/**
 * What the provider answers: `echo: <last user text>`; a call of the first offered tool (arguments
 * `{query: <text>, units: "metric"}`), or of an agent's shell tool (SHELL_TOOLS) if one is offered, when tools are offered and the last turn is no tool result; `Tool
 * said: <result>` after one. Tokens are counted as characters; a stop sequence or a length limit cuts the
 * text (Anthropic and Gemini).
 */
function answerFor(protocol, body, model = '') {
  const read = READ[protocol];
  const turns = read.turns(body) ?? [];
  const last = turns[turns.length - 1] ?? {};
  const result = read.toolResult(last);
  const userText = result === null ? lastUserText(protocol, body) : '';
  const inputTokens = userText.length;
  const tools = read.tools(body).filter(Boolean);
  const choice = read.toolChoice(body);
  // `tool-loop` in the model: the same call again and again, whatever the tool said (a stuck agent).
  const looping = model.includes('tool-loop') && tools.length > 0;
  if ((result === null || looping) && tools.length > 0 && choice !== 'none') {
    const first = turns.find((t) => t.role === 'user' || t.role === undefined);
    const shell = choice ? undefined : tools.find((name) => Object.hasOwn(SHELL_TOOLS, name));
    // `shell-call` in the model: a shell tool's call running the user's text as its command;
    // `shell-calls`: parallel calls, one per line of the user's text.
    const inputs = looping
      ? [{ query: first ? read.userText(first) : '', units: 'metric' }]
      : model.includes('shell-calls')
        ? userText.split('\n').map((command) => ({ command }))
        : model.includes('shell-call')
          ? [{ command: userText }]
          : shell
            ? [SHELL_TOOLS[shell]]
            : [{ query: userText, units: 'metric' }];
    const name = choice ?? shell ?? tools[0];
    const calls = inputs.map((input, i) => ({ id: `call_fake_${i + 1}`, name, input }));
    // `cut-call` in the model: the output limit stops the model inside the (last) call's arguments.
    const cut = model.includes('cut-call');
    return {
      text: '',
      tools: calls,
      stop: cut ? 'length' : 'tool',
      cutCall: cut,
      stopSequence: null,
      inputTokens,
      outputTokens: inputs.reduce((sum, input) => sum + JSON.stringify(input).length, 0),
    };
  }
  let text = result === null ? `echo: ${userText}` : `Tool said: ${result}`;
  let stop = 'end';
  let stopSequence = null;
  for (const sequence of read.stopSequences(body)) {
    const at = text.indexOf(sequence);
    if (at >= 0) {
      text = text.slice(0, at);
      stop = 'stop-sequence';
      stopSequence = sequence;
    }
  }
  const limit = Number(read.limit(body));
  if (Number.isFinite(limit) && text.length > limit) {
    text = text.slice(0, limit);
    stop = 'length';
  }
  return { text, tools: [], stop, stopSequence, inputTokens, outputTokens: text.length };
}

/**
 * A call's arguments as the wire writes them: the JSON text, or, when the output limit cut the answer
 * (`cutCall`), the last call's first half (a whole Anthropic answer still gives its input as an object).
 */
function argumentsOf(a, tool) {
  const text = JSON.stringify(tool.input);
  return a.cutCall && tool === a.tools.at(-1) ? text.slice(0, Math.floor(text.length / 2)) : text;
}

/** `accepts-prefill`: after an assistant's last turn, the answer is what follows that text (when it fits). */
function continuePrefill(protocol, body, answer) {
  const read = READ[protocol];
  const turns = read.turns(body) ?? [];
  const last = turns[turns.length - 1];
  if (!last || (last.role !== 'assistant' && last.role !== 'model') || answer.tools.length > 0) return;
  const prefill = read.userText(last);
  if (!answer.text.startsWith(prefill)) return;
  answer.text = answer.text.slice(prefill.length);
  answer.outputTokens = answer.text.length;
}

/** `text` in `count` pieces, cut between code points (so multi-byte characters stay whole). */
function split(text, count) {
  const chars = [...text];
  const size = Math.max(1, Math.ceil(chars.length / count));
  const pieces = [];
  for (let i = 0; i < chars.length; i += size) pieces.push(chars.slice(i, i + size).join(''));
  return pieces;
}

// --- each protocol's wire format ---------------------------------------------------------------------------

const sse = (data, event) => `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
/** Gemini ends its events with CRLF pairs, as Google's servers do. */
const geminiSse = (data) => `data: ${JSON.stringify(data)}\r\n\r\n`;

const OPENAI_FINISH = { end: 'stop', 'stop-sequence': 'stop', length: 'length', tool: 'tool_calls' };
const ANTHROPIC_STOP = {
  end: 'end_turn',
  'stop-sequence': 'stop_sequence',
  length: 'max_tokens',
  tool: 'tool_use',
};
const GEMINI_FINISH = { end: 'STOP', 'stop-sequence': 'STOP', length: 'MAX_TOKENS', tool: 'STOP' };

const ANTHROPIC_ERROR_TYPES = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  529: 'overloaded_error',
};
const GEMINI_STATUSES = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};
const OPENAI_ERROR_TYPES = { 400: 'invalid_request_error', 401: 'invalid_request_error', 429: 'requests' };

const openaiChunk = (model, delta, finish = null) => ({
  id: 'chatcmpl-fake',
  object: 'chat.completion.chunk',
  created: 1,
  model,
  choices: [{ index: 0, delta, finish_reason: finish }],
});
const geminiChunk = (model, parts, extra = {}, candidateExtra = {}) => ({
  candidates: [{ content: { role: 'model', parts }, ...candidateExtra, index: 0 }],
  ...extra,
  modelVersion: model,
  responseId: 'fakeResponse1',
});
const geminiUsage = (a) => ({
  promptTokenCount: a.inputTokens,
  candidatesTokenCount: a.outputTokens,
  totalTokenCount: a.inputTokens + a.outputTokens,
});

// --- thinking: reasoning with signatures the provider made, checked byte for byte when they come back ------

/**
 * Gemini's parts with a thought: the thought first (when it has text), the signature on the last part (a
 * call, or the text), as Gemini 3 gives it.
 */
function geminiThinking(a, parts) {
  if (!a.thinking) return parts;
  const signed = parts.map((p, i) =>
    i === parts.length - 1 ? { ...p, thoughtSignature: a.thinking.signature } : p,
  );
  return [...(a.thinking.text ? [{ text: a.thinking.text, thought: true }] : []), ...signed];
}

/** Gemini's documented value for a function call whose signature was lost (history from elsewhere). */
const GEMINI_SENTINEL = 'skip_thought_signature_validator';

/**
 * `thinking` in the model: answers carry reasoning signed by the provider, and a request that gives one back
 * must give it byte for byte, as the real APIs check (Anthropic: every thinking block, and a tool loop's last
 * assistant turn starts with one when thinking is on; Gemini: the first function call of each model turn).
 */
const THINKING_CHECKS = {
  anthropic: (body, issued, thoughts) => {
    const messages = Array.isArray(body.messages) ? body.messages : [];
    // The latest assistant turn's thinking must come back unchanged, its text included.
    const latest = messages.findLastIndex((m) => m.role === 'assistant');
    for (const [j, b] of (Array.isArray(messages[latest]?.content)
      ? messages[latest].content
      : []
    ).entries()) {
      if (b.type === 'thinking' && thoughts.has(b.signature) && thoughts.get(b.signature) !== b.thinking)
        return `messages.${latest}.content.${j}: \`thinking\` or \`redacted_thinking\` blocks in the latest assistant message cannot be modified. These blocks must remain as they were in the original response.`;
    }
    for (const [i, m] of messages.entries()) {
      if (m.role !== 'assistant' || !Array.isArray(m.content)) continue;
      for (const [j, b] of m.content.entries()) {
        const value =
          b.type === 'thinking' ? b.signature : b.type === 'redacted_thinking' ? b.data : undefined;
        if (b.type === 'thinking' || b.type === 'redacted_thinking') {
          if (!issued.has(value))
            return `messages.${i}.content.${j}: Invalid \`signature\` in \`thinking\` block`;
        }
      }
    }
    const last = messages.findLast((m) => m.role === 'assistant');
    const loop =
      messages.at(-1)?.role === 'user' &&
      Array.isArray(messages.at(-1).content) &&
      messages.at(-1).content.some((b) => b.type === 'tool_result');
    const first = Array.isArray(last?.content) ? last.content[0]?.type : undefined;
    if (body.thinking?.type === 'enabled' && loop && first !== 'thinking' && first !== 'redacted_thinking')
      return `Expected \`thinking\` or \`redacted_thinking\`, but found \`${first}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block.`;
    return null;
  },
  gemini: (body, issued) => {
    for (const [i, c] of (Array.isArray(body.contents) ? body.contents : []).entries()) {
      if (c.role !== 'model' || !Array.isArray(c.parts)) continue;
      for (const [j, p] of c.parts.entries()) {
        const given = p.thoughtSignature;
        if (given !== undefined && given !== GEMINI_SENTINEL && !issued.has(given))
          return `contents[${i}].parts[${j}]: Corrupted thought signature.`;
      }
      const call = c.parts.find((p) => p.functionCall);
      if (call && call.thoughtSignature === undefined)
        return `Function call is missing a thought_signature in functionCall parts. contents[${i}]`;
    }
    return null;
  },
};

/**
 * Per protocol: the whole answer, a stream as a list of writes (the opening first, the finish last, the
 * pieces between), an error body, an error event inside a stream, and the two filter-style refusals.
 */
const WIRE = {
  openai: {
    error: (status, message, code = null) => ({
      error: { message, type: OPENAI_ERROR_TYPES[status] ?? 'server_error', param: null, code },
    }),
    streamError: (message) => sse({ error: { message, type: 'server_error', param: null, code: null } }),
    contextLength: () => ({
      status: 400,
      body: WIRE.openai.error(
        400,
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 128001 tokens.",
        'context_length_exceeded',
      ),
    }),
    contentFilter: () => ({
      status: 400,
      body: WIRE.openai.error(
        400,
        "The response was filtered due to the prompt triggering the provider's content management policy.",
        'content_filter',
      ),
    }),
    whole: (model, a) => ({
      id: 'chatcmpl-fake',
      object: 'chat.completion',
      created: 1,
      model,
      choices: [
        {
          index: 0,
          message: {
            ...(a.tools.length > 0
              ? {
                  role: 'assistant',
                  content: null,
                  tool_calls: a.tools.map((tool) => ({
                    id: tool.id,
                    type: 'function',
                    function: { name: tool.name, arguments: argumentsOf(a, tool) },
                  })),
                }
              : { role: 'assistant', content: a.text }),
            ...(a.thinking ? { reasoning_content: a.thinking.text } : {}),
          },
          finish_reason: OPENAI_FINISH[a.stop],
        },
      ],
      usage: openaiUsage(a),
      // A field the proxy does not know: a same-protocol answer must keep it.
      extra_field_from_upstream: 'kept',
    }),
    stream: (model, a, pieces, body) => {
      // No opening of its own: the role comes with the first piece, as OpenAI's first chunk carries it.
      const writes = [''];
      if (a.thinking) {
        writes.push(
          ...split(a.thinking.text, 2).map((part) =>
            sse(openaiChunk(model, { role: 'assistant', content: null, reasoning_content: part })),
          ),
        );
      }
      if (a.tools.length > 0) {
        a.tools.forEach((tool, index) => {
          const head = { index, id: tool.id, type: 'function', function: { name: tool.name, arguments: '' } };
          writes.push(
            sse(
              openaiChunk(
                model,
                index === 0
                  ? { role: 'assistant', content: null, tool_calls: [head] }
                  : { tool_calls: [head] },
              ),
            ),
            ...split(argumentsOf(a, tool), pieces).map((part) =>
              sse(openaiChunk(model, { tool_calls: [{ index, function: { arguments: part } }] })),
            ),
          );
        });
      } else {
        const parts = split(a.text, pieces);
        writes.push(
          ...(parts.length > 0 ? parts : ['']).map((part, i) =>
            sse(openaiChunk(model, i === 0 ? { role: 'assistant', content: part } : { content: part })),
          ),
        );
      }
      const usage = body.stream_options?.include_usage
        ? sse({ ...openaiChunk(model, {}), choices: [], usage: openaiUsage(a) })
        : '';
      writes.push(`${sse(openaiChunk(model, {}, OPENAI_FINISH[a.stop]))}${usage}data: [DONE]\n\n`);
      return writes;
    },
  },
  anthropic: {
    error: (status, message) => ({
      type: 'error',
      error: { type: ANTHROPIC_ERROR_TYPES[status] ?? 'api_error', message },
    }),
    streamError: (message) => sse({ type: 'error', error: { type: 'overloaded_error', message } }, 'error'),
    contextLength: () => ({
      status: 400,
      body: WIRE.anthropic.error(400, 'prompt is too long: 200001 tokens > 200000 maximum'),
    }),
    contentFilter: () => ({
      status: 400,
      body: WIRE.anthropic.error(400, 'Output blocked by content filtering policy'),
    }),
    whole: (model, a) => ({
      id: 'msg_fake_1',
      type: 'message',
      role: 'assistant',
      model,
      content: [
        ...(a.thinking
          ? [{ type: 'thinking', thinking: a.thinking.text, signature: a.thinking.signature }]
          : []),
        ...(a.text ? [{ type: 'text', text: a.text }] : []),
        ...a.tools.map((tool) => ({ type: 'tool_use', ...tool })),
      ],
      stop_reason: ANTHROPIC_STOP[a.stop],
      stop_sequence: a.stopSequence,
      usage: { input_tokens: a.inputTokens, output_tokens: a.outputTokens },
    }),
    stream: (model, a, pieces) => {
      const opening =
        sse(
          {
            type: 'message_start',
            message: {
              id: 'msg_fake_1',
              type: 'message',
              role: 'assistant',
              model,
              content: [],
              stop_reason: null,
              stop_sequence: null,
              usage: { input_tokens: a.inputTokens, output_tokens: 1 },
            },
          },
          'message_start',
        ) + sse({ type: 'ping' }, 'ping');
      // One block: the block's start goes with its first delta, its stop with its last.
      const block = (index, start, deltas) =>
        deltas.map(
          (delta, i) =>
            (i === 0
              ? sse({ type: 'content_block_start', index, content_block: start }, 'content_block_start')
              : '') +
            sse({ type: 'content_block_delta', index, delta }, 'content_block_delta') +
            (i === deltas.length - 1 ? sse({ type: 'content_block_stop', index }, 'content_block_stop') : ''),
        );
      const writes = [opening];
      const first = a.thinking ? 1 : 0;
      if (a.thinking) {
        const deltas = [
          ...split(a.thinking.text, 2).map((thinking) => ({ type: 'thinking_delta', thinking })),
          { type: 'signature_delta', signature: a.thinking.signature },
        ];
        writes.push(...block(0, { type: 'thinking', thinking: '', signature: '' }, deltas));
      }
      if (a.text) {
        const deltas = split(a.text, pieces).map((text) => ({ type: 'text_delta', text }));
        writes.push(...block(first, { type: 'text', text: '' }, deltas));
      }
      a.tools.forEach((tool, i) => {
        const deltas = split(argumentsOf(a, tool), pieces).map((partial_json) => ({
          type: 'input_json_delta',
          partial_json,
        }));
        const start = { type: 'tool_use', id: tool.id, name: tool.name, input: {} };
        writes.push(...block(first + (a.text ? 1 : 0) + i, start, deltas));
      });
      writes.push(
        sse(
          {
            type: 'message_delta',
            delta: { stop_reason: ANTHROPIC_STOP[a.stop], stop_sequence: a.stopSequence },
            usage: { output_tokens: a.outputTokens },
          },
          'message_delta',
        ) + sse({ type: 'message_stop' }, 'message_stop'),
      );
      return writes;
    },
  },
  gemini: {
    error: (status, message) => ({
      error: { code: status, message, status: GEMINI_STATUSES[status] ?? 'UNKNOWN' },
    }),
    streamError: (message) => geminiSse(WIRE.gemini.error(503, message)),
    contextLength: () => ({
      status: 400,
      body: WIRE.gemini.error(
        400,
        'The input token count (1048577) exceeds the maximum number of tokens allowed (1048576).',
      ),
    }),
    // Gemini answers a blocked prompt with 200 and no candidate, only the reason.
    contentFilter: () => ({
      status: 200,
      body: {
        promptFeedback: { blockReason: 'SAFETY' },
        usageMetadata: { promptTokenCount: 1, totalTokenCount: 1 },
      },
    }),
    whole: (model, a) =>
      geminiChunk(
        model,
        geminiThinking(a, [
          ...(a.text ? [{ text: a.text }] : []),
          ...a.tools.map((tool) => ({ functionCall: { name: tool.name, args: tool.input } })),
        ]),
        { usageMetadata: geminiUsage(a) },
        { finishReason: GEMINI_FINISH[a.stop] },
      ),
    stream: (model, a, pieces) => [
      // Gemini has no opening event: the first piece opens the stream.
      '',
      ...(a.thinking
        ? [
            geminiSse(
              geminiChunk(model, [{ text: a.thinking.text, thought: true }], {
                usageMetadata: { promptTokenCount: a.inputTokens },
              }),
            ),
          ]
        : []),
      ...split(a.text, pieces).map((text) =>
        geminiSse(geminiChunk(model, [{ text }], { usageMetadata: { promptTokenCount: a.inputTokens } })),
      ),
      geminiSse(
        geminiChunk(
          model,
          geminiThinking(
            { ...a, thinking: a.thinking && { signature: a.thinking.signature } },
            a.tools.length > 0
              ? a.tools.map((tool) => ({ functionCall: { name: tool.name, args: tool.input } }))
              : [{ text: '' }],
          ),
          { usageMetadata: geminiUsage(a) },
          { finishReason: GEMINI_FINISH[a.stop] },
        ),
      ),
    ],
  },
};

/** The Responses API's answer: its output items, the whole Response, and the typed event stream. */
const responseOf = (model, a, body, status, output) => ({
  id: a.responseId,
  object: 'response',
  created_at: 1,
  status,
  error: null,
  incomplete_details: null,
  instructions: body.instructions ?? null,
  model,
  output,
  parallel_tool_calls: true,
  previous_response_id: body.previous_response_id ?? null,
  store: body.store ?? true,
  tool_choice: body.tool_choice ?? 'auto',
  tools: body.tools ?? [],
  usage:
    status === 'completed'
      ? {
          input_tokens: a.inputTokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: a.outputTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: a.inputTokens + a.outputTokens,
        }
      : null,
  // A field the proxy does not know: a same-protocol answer must keep it.
  extra_field_from_upstream: 'kept',
});
const isCustomTool = (body, name) => responsesTools(body).some((t) => t.type === 'custom' && t.name === name);
/** The Responses API's output items: the text's message, or one item per call (numbered from 1). */
const responsesItems = (a, body) => {
  if (a.tools.length === 0) {
    return [
      {
        id: 'msg_fake_1',
        type: 'message',
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: a.text, annotations: [] }],
      },
    ];
  }
  // A freeform tool takes the user's text itself as its input.
  return a.tools.map((tool, i) =>
    isCustomTool(body, tool.name)
      ? {
          id: `ctc_fake_${i + 1}`,
          type: 'custom_tool_call',
          status: 'completed',
          call_id: tool.id,
          name: tool.name,
          input: tool.input.query ?? tool.input.command,
        }
      : {
          id: `fc_fake_${i + 1}`,
          type: 'function_call',
          status: 'completed',
          call_id: tool.id,
          name: tool.name,
          arguments: argumentsOf(a, tool),
        },
  );
};
WIRE.responses = {
  error: WIRE.openai.error,
  streamError: (message) =>
    sse({ type: 'error', code: 'server_error', message, param: null, sequence_number: 99 }, 'error'),
  contextLength: WIRE.openai.contextLength,
  contentFilter: WIRE.openai.contentFilter,
  whole: (model, a, body) => responseOf(model, a, body, 'completed', responsesItems(a, body)),
  stream: (model, a, pieces, body) => {
    let sequence = 0;
    const event = (type, data) => sse({ type, sequence_number: sequence++, ...data }, type);
    // The first output item opens with the response, so that the first piece a fault lets through
    // (`reset-mid-stream`, `stall-mid-stream`) is the first piece of its text, as in the other protocols; each
    // item's closing goes with the next one's opening.
    let lead =
      event('response.created', { response: responseOf(model, a, body, 'in_progress', []) }) +
      event('response.in_progress', { response: responseOf(model, a, body, 'in_progress', []) });
    const writes = [];
    responsesItems(a, body).forEach((item, output_index) => {
      const at = { item_id: item.id, output_index };
      let closing;
      if (item.type === 'message') {
        const part = { type: 'output_text', text: '', annotations: [] };
        writes.push(
          lead +
            event('response.output_item.added', {
              output_index,
              item: { ...item, status: 'in_progress', content: [] },
            }) +
            event('response.content_part.added', { ...at, content_index: 0, part }),
          ...split(a.text, pieces).map((delta) =>
            event('response.output_text.delta', { ...at, content_index: 0, delta, logprobs: [] }),
          ),
        );
        closing =
          event('response.output_text.done', { ...at, content_index: 0, text: a.text, logprobs: [] }) +
          event('response.content_part.done', { ...at, content_index: 0, part: item.content[0] });
      } else {
        const custom = item.type === 'custom_tool_call';
        const text = custom ? item.input : item.arguments;
        const kind = custom ? 'custom_tool_call_input' : 'function_call_arguments';
        writes.push(
          lead +
            event('response.output_item.added', {
              output_index,
              item: { ...item, status: 'in_progress', ...(custom ? { input: '' } : { arguments: '' }) },
            }),
          ...split(text, pieces).map((delta) => event(`response.${kind}.delta`, { ...at, delta })),
        );
        closing = event(`response.${kind}.done`, {
          ...at,
          ...(custom ? { input: text } : { arguments: text }),
        });
      }
      lead = closing + event('response.output_item.done', { output_index, item });
    });
    writes.push(lead + event('response.completed', { response: WIRE.responses.whole(model, a, body) }));
    return writes;
  },
};

function openaiUsage(a) {
  return {
    prompt_tokens: a.inputTokens,
    completion_tokens: a.outputTokens,
    total_tokens: a.inputTokens + a.outputTokens,
  };
}

/** OpenAI's scripted `tools-reused-index` stream: two calls both at wire index 0, told apart by their ids. */
function reusedIndexStream(model) {
  const call = (id, name, args) => ({
    tool_calls: [{ index: 0, id, type: 'function', function: { name, arguments: args } }],
  });
  return [
    '',
    sse(openaiChunk(model, { role: 'assistant', content: null, ...call('call_city', 'weather', '') })),
    sse(openaiChunk(model, { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] })),
    sse(openaiChunk(model, { tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] })),
    sse(openaiChunk(model, call('call_tz', 'clock', '{"tz":"CET"}'))),
    `${sse(openaiChunk(model, {}, 'tool_calls'))}data: [DONE]\n\n`,
  ];
}

/** Each protocol's key, read from the header its API uses. */
const KEY_OF = {
  openai: (headers) => headers.authorization?.replace(/^Bearer /, ''),
  responses: (headers) => headers.authorization?.replace(/^Bearer /, ''),
  anthropic: (headers) => headers['x-api-key'],
  gemini: (headers) => headers['x-goog-api-key'],
};

/** JSON that a decoder reads as `text`, with every character escaped: only a decoder sees the key. */
const escapeAll = (text) =>
  [...text].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
/** How a provider echoes a wrong key in an error message (raw JSON text, decoded it names the key twice). */
const keyEcho = (key) => `Incorrect API key provided: ${key.replaceAll('-', '\\u002d')} (${escapeAll(key)})`;

const DEFAULT_MODELS = {
  openai: { object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model', created: 1, owned_by: 'openai' }] },
  anthropic: {
    data: ['claude-mock-1', 'claude-mock-2'].map((id, i) => ({
      type: 'model',
      id,
      display_name: `Claude Mock ${i + 1}`,
      created_at: '2025-01-01T00:00:00Z',
    })),
    has_more: false,
    first_id: 'claude-mock-1',
    last_id: 'claude-mock-2',
  },
  gemini: {
    models: ['gemini-mock-flash', 'gemini-mock-pro'].map((id) => ({
      name: `models/${id}`,
      displayName: id,
      supportedGenerationMethods: ['generateContent', 'streamGenerateContent'],
    })),
  },
};

// --- routes ------------------------------------------------------------------------------------------------

const GEMINI_CHAT = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent|countTokens)$/;

/** A Responses request's input as OpenAI keeps it: items, each with an id (`in_<response>_<n>`). */
function storedInput(input, responseId) {
  const items = typeof input === 'string' ? [{ type: 'message', role: 'user', content: input }] : input;
  return (Array.isArray(items) ? items : []).map((item, i) => ({ id: `in_${responseId}_${i}`, ...item }));
}

/** One page of `GET /v1/responses/{id}/input_items`: `after`, `limit` (default 20), `order` (default desc). */
function inputItemsPage(items, params) {
  const listed = params.get('order') === 'asc' ? [...items] : [...items].reverse();
  const after = params.get('after');
  const start = after ? listed.findIndex((item) => item.id === after) + 1 : 0;
  const limit = Number(params.get('limit') ?? 20);
  const data = listed.slice(start, start + limit);
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: start + limit < listed.length,
  };
}

/** What a request is: a chat call or a model list of one protocol, or nothing known (404). */
function route(req) {
  const url = new URL(req.url ?? '/', 'http://fake');
  const path = url.pathname;
  if (req.method === 'GET' && path === '/v1/models') {
    // OpenAI and Anthropic share the path; Anthropic's clients always send their API version.
    return { kind: 'models', protocol: req.headers['anthropic-version'] ? 'anthropic' : 'openai', url };
  }
  if (req.method === 'GET' && path === '/v1beta/models') return { kind: 'models', protocol: 'gemini', url };
  const stored = /^\/v1\/responses\/([^/]+)$/.exec(path);
  if (stored && (req.method === 'GET' || req.method === 'DELETE'))
    return { kind: 'stored', protocol: 'responses', url, id: decodeURIComponent(stored[1]) };
  const items = /^\/v1\/responses\/([^/]+)\/input_items$/.exec(path);
  if (items && req.method === 'GET')
    return { kind: 'input_items', protocol: 'responses', url, id: decodeURIComponent(items[1]) };
  if (req.method !== 'POST') return null;
  if (path === '/v1/chat/completions') return { kind: 'chat', protocol: 'openai', url };
  if (path === '/v1/responses') return { kind: 'chat', protocol: 'responses', url };
  if (path === '/v1/messages') return { kind: 'chat', protocol: 'anthropic', url };
  if (path === '/v1/messages/count_tokens') return { kind: 'count', protocol: 'anthropic', url };
  const gemini = GEMINI_CHAT.exec(path);
  if (gemini) {
    const kind = gemini[2] === 'countTokens' ? 'count' : 'chat';
    return { kind, protocol: 'gemini', url, model: decodeURIComponent(gemini[1]), method: gemini[2] };
  }
  return null;
}

/** A request the protocol itself refuses, with its status and message; null when well-formed. */
const REFUSALS = {
  openai: (body) => (Array.isArray(body.messages) ? null : [400, "'messages' is a required property"]),
  responses: (body) =>
    typeof body.input === 'string' || Array.isArray(body.input)
      ? null
      : [400, "Missing required parameter: 'input'."],
  anthropic: (body) =>
    Array.isArray(body.messages) && typeof body.max_tokens === 'number'
      ? null
      : [400, 'messages and max_tokens are required'],
  gemini: (body, r) =>
    !Array.isArray(body.contents)
      ? [400, '* GenerateContentRequest.contents: contents is not specified']
      : r.method === 'streamGenerateContent' && r.url.searchParams.get('alt') !== 'sse'
        ? [400, 'this fake provider streams with alt=sse only']
        : null,
};

// --- the bench's canned answers ----------------------------------------------------------------------------

/**
 * The benchmark's request handler: OpenAI chat completions only, every answer built once here, nothing read
 * from the request but whether it asks for a stream, nothing recorded. The benchmark measures the proxy, so
 * this path must cost as little as node:http allows.
 */
function cannedHandler({ marker, streamChunks }) {
  const streaming = /"stream"\s*:\s*true/;
  const answerText =
    `${marker}: ` +
    'Here is a short answer, long enough to make the response about one kilobyte like a typical small chat ' +
    'completion. '.repeat(6);
  // The text of a stream's piece i, the same in every protocol.
  const piece = (i) => (i === 0 ? `${marker} ` : `tok${i} `);
  const completion = Buffer.from(
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
  const chunk = (index) =>
    Buffer.from(
      sse({
        id: 'chatcmpl-bench0000000000000000000000',
        object: 'chat.completion.chunk',
        created: 1_730_000_000,
        model: 'gpt-4o-mini-2024-07-18',
        choices: [
          {
            index: 0,
            delta: index === 0 ? { role: 'assistant', content: `${marker} ` } : { content: `tok${index} ` },
            logprobs: null,
            finish_reason: index === streamChunks - 1 ? 'stop' : null,
          },
        ],
      }),
    );
  const chunks = [
    ...Array.from({ length: streamChunks }, (_, i) => chunk(i)),
    Buffer.from('data: [DONE]\n\n'),
  ];
  const models = Buffer.from(
    JSON.stringify({
      object: 'list',
      data: [{ id: 'gpt-4o-mini', object: 'model', created: 0, owned_by: 'bench' }],
    }),
  );
  // The Responses API's answer, whole and streamed: the same text, and as many text deltas.
  const responseObject = (status, output) => ({
    id: 'resp_bench0000000000000000000000',
    object: 'response',
    created_at: 1_730_000_000,
    status,
    error: null,
    incomplete_details: null,
    model: 'gpt-4o-mini-2024-07-18',
    output,
    usage: status === 'completed' ? { input_tokens: 42, output_tokens: 180, total_tokens: 222 } : null,
  });
  const message = {
    id: 'msg_bench',
    type: 'message',
    status: 'completed',
    role: 'assistant',
    content: [{ type: 'output_text', text: answerText, annotations: [] }],
  };
  const response = Buffer.from(JSON.stringify(responseObject('completed', [message])));
  const at = { item_id: 'msg_bench', output_index: 0, content_index: 0 };
  const responseChunks = [
    sse(
      { type: 'response.created', sequence_number: 0, response: responseObject('in_progress', []) },
      'response.created',
    ),
    ...Array.from({ length: streamChunks }, (_, i) =>
      sse(
        {
          type: 'response.output_text.delta',
          sequence_number: i + 1,
          ...at,
          delta: i === 0 ? `${marker} ` : `tok${i} `,
        },
        'response.output_text.delta',
      ),
    ),
    sse(
      {
        type: 'response.completed',
        sequence_number: streamChunks + 1,
        response: responseObject('completed', [message]),
      },
      'response.completed',
    ),
  ].map((text) => Buffer.from(text));
  // Anthropic's Messages API, whole and streamed with the real event sequence (message_start,
  // content_block_start, ping, the text deltas, content_block_stop, message_delta, message_stop).
  const anthropicModel = 'claude-3-5-haiku-20241022';
  const anthropicMessage = (content, stopReason, outputTokens) => ({
    id: 'msg_bench000000000000000000',
    type: 'message',
    role: 'assistant',
    model: anthropicModel,
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    usage: { input_tokens: 42, output_tokens: outputTokens },
  });
  const anthropicWhole = Buffer.from(
    JSON.stringify(anthropicMessage([{ type: 'text', text: answerText }], 'end_turn', 180)),
  );
  const anthropicChunks = [
    sse({ type: 'message_start', message: anthropicMessage([], null, 1) }, 'message_start'),
    sse(
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      'content_block_start',
    ),
    sse({ type: 'ping' }, 'ping'),
    ...Array.from({ length: streamChunks }, (_, i) =>
      sse(
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: piece(i) } },
        'content_block_delta',
      ),
    ),
    sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop'),
    sse(
      {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: 180 },
      },
      'message_delta',
    ),
    sse({ type: 'message_stop' }, 'message_stop'),
  ].map((text) => Buffer.from(text));
  // Gemini, whole and streamed (`alt=sse`): the last piece carries the finish reason and the usage.
  const geminiModel = 'gemini-2.0-flash';
  const geminiUsageAll = { promptTokenCount: 42, candidatesTokenCount: 180, totalTokenCount: 222 };
  const geminiWhole = Buffer.from(
    JSON.stringify(
      geminiChunk(
        geminiModel,
        [{ text: answerText }],
        { usageMetadata: geminiUsageAll },
        { finishReason: 'STOP' },
      ),
    ),
  );
  const geminiChunks = Array.from({ length: streamChunks }, (_, i) =>
    Buffer.from(
      geminiSse(
        i === streamChunks - 1
          ? geminiChunk(
              geminiModel,
              [{ text: piece(i) }],
              { usageMetadata: geminiUsageAll },
              { finishReason: 'STOP' },
            )
          : geminiChunk(geminiModel, [{ text: piece(i) }], { usageMetadata: { promptTokenCount: 42 } }),
      ),
    ),
  );
  const anthropicHeaders = { 'content-type': 'application/json', 'content-length': anthropicWhole.length };
  const geminiHeaders = { 'content-type': 'application/json', 'content-length': geminiWhole.length };
  const responseHeaders = { 'content-type': 'application/json', 'content-length': response.length };
  const jsonHeaders = { 'content-type': 'application/json', 'content-length': completion.length };
  const modelsHeaders = { 'content-type': 'application/json', 'content-length': models.length };
  const sseHeaders = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };

  // Per protocol: the whole answer with its headers, and the stream's writes.
  const ANSWERS = {
    openai: { headers: jsonHeaders, whole: completion, chunks },
    responses: { headers: responseHeaders, whole: response, chunks: responseChunks },
    anthropic: { headers: anthropicHeaders, whole: anthropicWhole, chunks: anthropicChunks },
    gemini: { headers: geminiHeaders, whole: geminiWhole, chunks: geminiChunks },
  };

  // `stream`: true or false from the URL (Gemini), undefined to read it from the body.
  const answerChat = (req, res, answer, stream) => {
    const parts = [];
    req.on('data', (part) => parts.push(part));
    req.on('end', () => {
      const body = parts.length === 1 ? parts[0].toString('latin1') : Buffer.concat(parts).toString('latin1');
      if (!(stream ?? streaming.test(body))) {
        res.writeHead(200, answer.headers);
        res.end(answer.whole);
        return;
      }
      // One write per chunk, as a real server flushes each token: the proxy sees separate chunks.
      res.writeHead(200, sseHeaders);
      for (const part of answer.chunks) res.write(part);
      res.end();
    });
  };
  return (req, res) => {
    const url = req.url;
    if (req.method === 'POST' && url === '/v1/chat/completions') return answerChat(req, res, ANSWERS.openai);
    if (req.method === 'POST' && url === '/v1/responses') return answerChat(req, res, ANSWERS.responses);
    if (req.method === 'POST' && url === '/v1/messages') return answerChat(req, res, ANSWERS.anthropic);
    if (req.method === 'POST' && url.startsWith('/v1beta/models/')) {
      if (url.endsWith(':generateContent')) return answerChat(req, res, ANSWERS.gemini, false);
      if (url.endsWith(':streamGenerateContent?alt=sse')) return answerChat(req, res, ANSWERS.gemini, true);
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.writeHead(200, modelsHeaders);
      res.end(models);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":{"message":"not found"}}');
  };
}

// --- the server ----------------------------------------------------------------------------------------------

/** Waits until `res` can take more, or is gone. Both listeners go once either fires. */
const drained = (res) =>
  new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts the fake provider on 127.0.0.1; see index.d.mts for the options and what it returns. */
export async function startFakeProvider(options = {}) {
  const pieces = options.chunks ?? 4;
  const dripMs = options.dripMs ?? 150;
  const pieceGapMs = options.pieceGapMs ?? 0;
  const record = options.record ?? true;
  const keys = options.keys ?? {};
  const keyFaults = Object.fromEntries(
    Object.entries(options.keyFaults ?? {}).map(([key, spec]) => {
      const fault = parseFault(spec);
      if (!fault) throw new Error(`fake provider: no fault named ${JSON.stringify(spec)}`);
      return [key, fault];
    }),
  );
  const models = { ...DEFAULT_MODELS, ...options.models };
  const sockets = new Set();
  /** The most TCP connections open at once since start (or the last resetPeak). */
  let peakSockets = 0;
  const open = new Set();
  const requests = [];
  /** Responses API: what `GET /v1/responses/{id}` (and its `input_items`) finds, by id: {response, input}. */
  const storedResponses = new Map();
  const responseIdPrefix = options.responseIdPrefix ?? 'resp_fake_';
  let received = 0;
  let aborted = 0;
  let held = [];
  let abortWaiters = [];
  /** Set by setFault: applies to every request, before any fault a model name asks for. */
  let programmed = null;
  const early = new Map();
  /** Requests seen per model name: what `first-<n>-…` and `flap` count. */
  const perModel = new Map();
  /** Reasoning signatures given in answers (`thinking` models): a replayed one must be one of them. */
  const issuedSignatures = new Set();
  /** The reasoning text each signature was issued with (Anthropic checks that it comes back unchanged). */
  const issuedThoughts = new Map();

  const closedEarlyEntry = (text) => {
    let entry = early.get(text);
    if (!entry) {
      let resolve;
      const closed = new Promise((r) => (resolve = r));
      entry = { closed, resolve };
      early.set(text, entry);
    }
    return entry;
  };
  const noteAbort = () => {
    aborted += 1;
    abortWaiters = abortWaiters.filter((waiter) => {
      if (aborted < waiter.count) return true;
      waiter.resolve();
      return false;
    });
  };
  const release = () => {
    for (const resume of held) resume();
    held = [];
  };
  const holdHere = () => new Promise((resolve) => held.push(resolve));
  const takeProgrammed = () => {
    if (!programmed) return null;
    const fault = programmed.fault;
    if (programmed.times !== undefined && --programmed.times <= 0) programmed = null;
    return fault;
  };

  const json = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  /**
   * Faults decided before any answer: true when handled (the request is then done, or left on purpose).
   * Also used for model lists, where only these faults mean anything.
   */
  const headFault = async (fault, protocol, req, res, stream) => {
    const wire = WIRE[protocol];
    switch (fault?.name) {
      case 'reset-before-headers':
        req.socket.destroy();
        return true;
      case 'no-head':
        return true;
      case 'slow-first-byte':
        await sleep(fault.ms ?? dripMs);
        return res.destroyed;
      case 'status':
        json(res, fault.status, wire.error(fault.status, `upstream says ${fault.status}`), {
          ...(fault.retryAfter ? { 'retry-after': fault.retryAfter } : {}),
          ...(fault.retryAfterMs ? { 'retry-after-ms': fault.retryAfterMs } : {}),
        });
        return true;
      case 'rate-limited-reset-only':
        json(res, 429, wire.error(429, 'upstream says 429'), { 'x-ratelimit-reset-requests': '7s' });
        return true;
      case 'html-502':
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
        return true;
      case 'context-length-exceeded': {
        const { status, body } = wire.contextLength();
        json(res, status, body);
        return true;
      }
      case 'content-filter': {
        const { status, body } = wire.contentFilter();
        if (status === 200 && stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.end(geminiSse(body));
        } else json(res, status, body);
        return true;
      }
      case 'key-in-error':
        // Raw JSON text: the escapes are the point, JSON.stringify would undo them.
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify(wire.error(401, '@')).replace(
            '"@"',
            `"${keyEcho(KEY_OF[protocol](req.headers) ?? '')}"`,
          ),
        );
        return true;
      case 'key-in-error-text':
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`upstream broke while checking ${KEY_OF[protocol](req.headers) ?? ''}`);
        return true;
      case 'invalid-json':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"choices": [ this is not json');
        return true;
      case 'invalid-sse':
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"this is": not json}\n\n');
        res.end('data: <html>oops</html>\n\n');
        return true;
      default:
        return false;
    }
  };

  const answerWhole = async (fault, protocol, model, answer, call, req, res) => {
    if (fault?.name === 'opening-then-silence') return;
    if (fault?.name === 'error-mid-stream' || fault?.name === 'error-before-content') {
      json(res, 500, WIRE[protocol].error(500, 'upstream failed'));
      return;
    }
    const body = JSON.stringify(WIRE[protocol].whole(model, answer, call));
    if (fault?.name === 'reset-mid-stream' || fault?.name === 'stall-mid-stream') {
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      });
      res.write(body.slice(0, 10));
      if (fault.name === 'reset-mid-stream') setTimeout(() => req.socket.destroy(), 10);
      return;
    }
    if (fault?.name === 'hold') await holdHere();
    if (fault?.name === 'drip') await sleep(dripMs);
    if (fault?.name === 'slow-first-token') await sleep(fault.ms ?? dripMs);
    if (res.destroyed) return;
    res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
    res.end(body);
  };

  const answerStream = async (fault, protocol, model, answer, body, req, res) => {
    const wire = WIRE[protocol];
    const writes =
      fault?.name === 'tools-reused-index' && protocol === 'openai'
        ? reusedIndexStream(model)
        : wire.stream(model, answer, pieces, body);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    if (fault?.name === 'slow-first-token') {
      res.flushHeaders();
      await sleep(fault.ms ?? dripMs);
      if (res.destroyed) return;
    }
    // Before any answer: the opening only (`writes[0]`: Anthropic's message_start and ping, a Responses
    // backend's response.created; nothing for OpenAI and Gemini), then the error event, or silence.
    if (fault?.name === 'error-before-content' || fault?.name === 'key-before-content') {
      const message =
        fault.name === 'error-before-content'
          ? 'overloaded before the answer'
          : `this key is overloaded: ${KEY_OF[protocol](req.headers) ?? ''}`;
      res.end(writes[0] + wire.streamError(message));
      return;
    }
    if (fault?.name === 'opening-then-silence') {
      res.write(`${writes[0]}: keep-alive\n\n`);
      return;
    }
    let finish = writes.pop();
    if (fault?.name === 'missing-done')
      finish = finish.replace('data: [DONE]\n\n', '').replace(/event: message_stop\n.*\n\n$/, '');
    // The opening and the first piece: every fault below happens after the stream has begun.
    res.write(writes[0] + (writes[1] ?? ''));
    const rest = writes.slice(2);
    switch (fault?.name) {
      case 'reset-mid-stream':
        setTimeout(() => req.socket.destroy(), 10);
        return;
      case 'stall-mid-stream':
        return;
      case 'error-mid-stream':
        res.end(wire.streamError('upstream failed mid-stream'));
        return;
      case 'key-in-stream-error': {
        // Cut inside an escape, so that only a reader that joins the pieces before decoding sees the key.
        const error = wire
          .streamError('@')
          .replace('"@"', `"${keyEcho(KEY_OF[protocol](req.headers) ?? '')}"`);
        const cut = error.indexOf('\\u') + 20;
        res.write(error.slice(0, cut), () => res.end(error.slice(cut)));
        return;
      }
      case 'endless-line':
      case 'endless-event': {
        // Written as fast as the reader takes it (backpressure), until the reader goes away.
        const filler = fault.name === 'endless-line' ? 'x'.repeat(64 * 1024) : 'data: x\n'.repeat(8 * 1024);
        if (fault.name === 'endless-line') res.write('data: {"text": "');
        while (!res.destroyed) if (!res.write(filler)) await drained(res);
        return;
      }
      case 'malformed-chunk':
        res.write('data: {"this is": not json}\n\n');
        break;
      case 'hold':
        await holdHere();
        break;
      default:
        break;
    }
    const gap = fault?.name === 'drip' ? dripMs : pieceGapMs;
    for (const write of rest) {
      if (gap > 0) await sleep(gap);
      if (res.destroyed) return;
      res.write(write);
    }
    if (fault?.name === 'truncated-stream') {
      res.end();
      return;
    }
    if (gap > 0) await sleep(gap);
    if (!res.destroyed) res.end(finish);
  };

  const handle = async (req, res, raw) => {
    let body;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = raw; // recorded as text, so a test sees what malformed thing arrived
    }
    const r = route(req);
    if (record) {
      const model = r?.model ?? (typeof body === 'object' && body !== null ? body.model : undefined);
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        model,
        at: performance.now(),
      });
    }
    if (!r) {
      json(res, 404, {
        error: { message: `no route ${req.method} ${req.url}`, type: 'invalid_request_error' },
      });
      return;
    }
    const wire = WIRE[r.protocol];
    // Gemini's key goes in a header; a key in the URL would end up in logs, so the fake refuses it.
    if (r.protocol === 'gemini' && r.url.searchParams.has('key')) {
      json(res, 400, wire.error(400, 'API key must not be sent in the URL'));
      return;
    }
    // A key with a fault of its own (`keyFaults`): that key's calls get it, whatever they ask for.
    const keyFault = keyFaults[KEY_OF[r.protocol](req.headers) ?? ''];
    if (
      keyFault !== undefined &&
      r.kind === 'chat' &&
      (await headFault(keyFault, r.protocol, req, res, false))
    )
      return;
    // The Responses API is OpenAI's: the OpenAI key, unless one is given for it.
    const expected = keys[r.protocol] ?? (r.protocol === 'responses' ? keys.openai : undefined);
    if (expected !== undefined && KEY_OF[r.protocol](req.headers) !== expected) {
      json(res, 401, wire.error(401, 'invalid api key'));
      return;
    }
    if (r.kind === 'count') {
      // A count that cannot be mistaken for the proxy's estimate: 1000 + the characters of the turns' text.
      const call = typeof body === 'object' && body !== null ? body : {};
      const tokens = 1000 + textOf(READ[r.protocol].turns(call) ?? []).length;
      json(res, 200, r.protocol === 'anthropic' ? { input_tokens: tokens } : { totalTokens: tokens });
      return;
    }
    if (r.kind === 'stored') {
      const kept = storedResponses.get(r.id);
      if (!kept) json(res, 404, wire.error(404, `Response with id '${r.id}' not found.`));
      else if (req.method === 'DELETE') {
        storedResponses.delete(r.id);
        json(res, 200, { id: r.id, object: 'response', deleted: true });
      } else json(res, 200, kept.response);
      return;
    }
    if (r.kind === 'input_items') {
      const kept = storedResponses.get(r.id);
      if (!kept) json(res, 404, wire.error(404, `Response with id '${r.id}' not found.`));
      else json(res, 200, inputItemsPage(kept.input, r.url.searchParams));
      return;
    }
    if (r.kind === 'models') {
      if (await headFault(takeProgrammed(), r.protocol, req, res, false)) return;
      json(res, 200, models[r.protocol]);
      return;
    }

    const call = typeof body === 'object' && body !== null ? body : {};
    const model = r.model ?? String(call.model);
    const stream = r.protocol === 'gemini' ? r.method === 'streamGenerateContent' : call.stream === true;
    received += 1;
    const said = lastUserText(r.protocol, call);
    open.add(res);
    res.once('close', () => {
      open.delete(res);
      if (!res.writableFinished) {
        noteAbort();
        closedEarlyEntry(said).resolve();
      }
    });
    const seen = (perModel.get(model) ?? 0) + 1;
    perModel.set(model, seen);
    let fault = takeProgrammed() ?? faultInModel(model);
    if (fault?.name === 'first') fault = seen <= fault.count ? fault.inner : null;
    if (fault?.name === 'flap' && seen % 2 === 0) fault = null;
    if (fault?.name === 'flap') fault = { name: 'status', status: 503 };
    if (fault?.name === 'rejects-prefill') {
      const turns = READ[r.protocol].turns(call) ?? [];
      const lastRole = turns[turns.length - 1]?.role;
      if (lastRole === 'assistant' || lastRole === 'model') {
        json(res, 400, wire.error(400, 'This model does not support assistant message prefill'));
        return;
      }
    }
    if (await headFault(fault, r.protocol, req, res, stream)) return;
    const refusal = REFUSALS[r.protocol](call, r);
    if (refusal) {
      json(res, refusal[0], wire.error(refusal[0], refusal[1]));
      return;
    }
    const answer = { ...answerFor(r.protocol, call, model), responseId: `${responseIdPrefix}${received}` };
    if (fault?.name === 'accepts-prefill') continuePrefill(r.protocol, call, answer);
    if (model.includes('thinking')) {
      const wrong = THINKING_CHECKS[r.protocol]?.(call, issuedSignatures, issuedThoughts);
      if (wrong) {
        json(res, 400, wire.error(400, wrong));
        return;
      }
      // A signature with the bytes a careless copy would change (`+`, `/`, `=`), one per answer.
      const signature = `${r.protocol}Sig+/${received}${'A'.repeat(received % 3)}==`;
      issuedSignatures.add(signature);
      answer.thinking = { text: `Thinking about ${said || 'the tool result'}.`, signature };
      issuedThoughts.set(signature, answer.thinking.text);
    }
    if (r.protocol === 'responses' && call.store !== false) {
      storedResponses.set(answer.responseId, {
        response: WIRE.responses.whole(model, answer, call),
        input: storedInput(call.input, answer.responseId),
      });
    }
    if (stream) await answerStream(fault, r.protocol, model, answer, call, req, res);
    else await answerWhole(fault, r.protocol, model, answer, call, req, res);
  };

  const server = createServer(
    { keepAliveTimeout: options.keepAliveTimeout ?? 30_000 },
    options.canned
      ? cannedHandler(options.canned)
      : (req, res) => {
          const chunks = [];
          req.on('data', (c) => chunks.push(c));
          req.on('end', () => void handle(req, res, Buffer.concat(chunks).toString('utf8')));
        },
  );
  server.on('connection', (socket) => {
    sockets.add(socket);
    peakSockets = Math.max(peakSockets, sockets.size);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = (port) =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = () =>
    new Promise((resolve) => {
      release();
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });

  await listen(options.port ?? 0);
  const { port } = server.address();
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    baseUrls: { openai: `${url}/v1`, anthropic: `${url}/v1`, gemini: url, responses: `${url}/v1` },
    requests,
    issuedSignatures,
    get received() {
      return received;
    },
    get aborted() {
      return aborted;
    },
    inFlight: () => open.size,
    connections: () => sockets.size,
    peakConnections: () => peakSockets,
    resetPeak: () => {
      peakSockets = sockets.size;
    },
    waitForAborts: (count) =>
      aborted >= count ? Promise.resolve() : new Promise((resolve) => abortWaiters.push({ count, resolve })),
    closedEarly: (text) => closedEarlyEntry(text).closed,
    setFault: (spec, { times } = {}) => {
      if (spec === null) {
        programmed = null;
        return;
      }
      const fault = parseFault(spec);
      if (!fault) throw new Error(`fake provider: no fault named ${JSON.stringify(spec)}`);
      programmed = { fault, times };
    },
    release,
    down: stop,
    up: () => listen(port),
    close: () => (server.listening ? stop() : Promise.resolve()),
  };
}
