/**
 * Tool calls in a backend's answer, judged one by one and replaced when condemned (README, "Agent
 * guardrails"): in each protocol's own wire shape, for whole answers and for streams, so that everything
 * the guard does not touch reaches the client as the backend sent it. A replaced call becomes a text part
 * at its place, and an answer left with no tool call ends as a finished turn instead of a tool turn.
 */
import type { SseMessage } from './codec.js';
import { errorEnvelope } from './error-envelopes.js';
import { flattenTools } from './responses/tool-namespaces.js';
import type { Protocol } from './types.js';

type Json = Record<string, unknown>;

/** What to do with one tool call: nothing (undefined), replace it by a text, or refuse the whole answer. */
export type ToolVerdict = { kind: 'replace'; text: string } | { kind: 'refuse'; message: string };
export type ToolJudge = (name: string, args: string) => ToolVerdict | undefined;

/** Thrown out of a whole answer's rewrite when a call is refused: the pipeline answers it as an error. */
export class RefusedToolCall extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedToolCall';
  }
}

/** A stateful filter over one stream's SSE messages. */
export interface ToolCallStreamFilter {
  push(message: SseMessage): SseMessage[];
  /**
   * Whether the next message must come through `push` whatever it holds: a call is held, or the filter has
   * changed the stream (refused it, or renumbered its events). Otherwise only messages that start or carry a
   * tool call need to.
   */
  busy(): boolean;
  /** The source ended: whatever is still held. */
  end(): SseMessage[];
}

export interface ToolCallGuard {
  /** The names of the tools a request offers (what decides whether an answer needs a look at all). */
  toolNames(body: Json): string[];
  /** A whole answer with condemned calls replaced; undefined when nothing changed. */
  rewriteWhole(body: Json, judge: ToolJudge): Json | undefined;
  createStreamFilter(judge: ToolJudge): ToolCallStreamFilter;
}

function isJson(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function listOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function parse(data: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(data);
    return isJson(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

const message = (data: Json, event?: string): SseMessage =>
  event === undefined ? { data: JSON.stringify(data) } : { event, data: JSON.stringify(data) };

function errorMessage(protocol: Protocol, text: string): SseMessage {
  const body = errorEnvelope(protocol, { status: 400, message: text, code: 'dangerous_command' });
  return protocol === 'anthropic' ? message(body as Json, 'error') : message(body as Json);
}

// --- Anthropic: content blocks with explicit start / delta / stop -----------------------------------

const anthropic: ToolCallGuard = {
  toolNames: (body) =>
    listOf(body.tools).flatMap((t) => (isJson(t) && typeof t.name === 'string' ? [t.name] : [])),
  rewriteWhole(body, judge) {
    let changed = false;
    let calls = 0;
    const content = listOf(body.content).map((block) => {
      if (!isJson(block) || block.type !== 'tool_use' || typeof block.name !== 'string') return block;
      const verdict = judge(block.name, JSON.stringify(block.input ?? {}));
      if (verdict?.kind === 'refuse') throw new RefusedToolCall(verdict.message);
      if (verdict === undefined) {
        calls++;
        return block;
      }
      changed = true;
      return { type: 'text', text: verdict.text };
    });
    if (!changed) return undefined;
    const stop = calls === 0 && body.stop_reason === 'tool_use' ? 'end_turn' : body.stop_reason;
    return { ...body, content, stop_reason: stop };
  },
  createStreamFilter(judge) {
    /** Tool-use blocks being held, by index: their start event and the arguments so far. */
    const held = new Map<number, { name: string; events: SseMessage[]; json: string }>();
    let calls = 0;
    let refused = false;
    return {
      push(msg) {
        if (refused) return [];
        const event = parse(msg.data);
        if (event === undefined) return [msg];
        const index = typeof event.index === 'number' ? event.index : -1;
        if (event.type === 'content_block_start' && isJson(event.content_block)) {
          const block = event.content_block;
          if (block.type === 'tool_use' && typeof block.name === 'string') {
            held.set(index, { name: block.name, events: [msg], json: '' });
            return [];
          }
        }
        const holding = held.get(index);
        if (holding !== undefined && event.type === 'content_block_delta') {
          const delta = isJson(event.delta) ? event.delta : {};
          if (typeof delta.partial_json === 'string') holding.json += delta.partial_json;
          holding.events.push(msg);
          return [];
        }
        if (holding !== undefined && event.type === 'content_block_stop') {
          held.delete(index);
          const verdict = judge(holding.name, holding.json === '' ? '{}' : holding.json);
          if (verdict === undefined) {
            calls++;
            return [...holding.events, msg];
          }
          if (verdict.kind === 'refuse') {
            refused = true;
            return [errorMessage('anthropic', verdict.message)];
          }
          return [
            message(
              { type: 'content_block_start', index, content_block: { type: 'text', text: '' } },
              'content_block_start',
            ),
            message(
              { type: 'content_block_delta', index, delta: { type: 'text_delta', text: verdict.text } },
              'content_block_delta',
            ),
            msg,
          ];
        }
        if (
          event.type === 'message_delta' &&
          isJson(event.delta) &&
          event.delta.stop_reason === 'tool_use' &&
          calls === 0
        ) {
          return [message({ ...event, delta: { ...event.delta, stop_reason: 'end_turn' } }, msg.event)];
        }
        return [msg];
      },
      busy: () => refused || held.size > 0,
      // A block never stopped is a cut stream: what was held is not a call to pass on.
      end: () => [],
    };
  },
};

// --- OpenAI chat completions: tool calls in deltas, keyed by index, ended by the finish ------------------

interface HeldCall {
  name: string;
  args: string;
}

function openaiToolCalls(chunk: Json): unknown[] {
  const choice = listOf(chunk.choices)[0];
  const delta = isJson(choice) && isJson(choice.delta) ? choice.delta : undefined;
  return delta ? listOf(delta.tool_calls) : [];
}

const openai: ToolCallGuard = {
  toolNames: (body) =>
    listOf(body.tools).flatMap((t) =>
      isJson(t) && isJson(t.function) && typeof t.function.name === 'string' ? [t.function.name] : [],
    ),
  rewriteWhole(body, judge) {
    const choice = listOf(body.choices)[0];
    if (!isJson(choice) || !isJson(choice.message)) return undefined;
    const texts: string[] = [];
    const kept = listOf(choice.message.tool_calls).filter((call) => {
      const fn = isJson(call) && isJson(call.function) ? call.function : undefined;
      if (fn === undefined || typeof fn.name !== 'string') return true;
      const verdict = judge(fn.name, typeof fn.arguments === 'string' ? fn.arguments : '{}');
      if (verdict?.kind === 'refuse') throw new RefusedToolCall(verdict.message);
      if (verdict !== undefined) texts.push(verdict.text);
      return verdict === undefined;
    });
    if (texts.length === 0) return undefined;
    const { tool_calls: _calls, ...rest } = choice.message;
    const before = typeof rest.content === 'string' && rest.content !== '' ? [rest.content] : [];
    const messageOut = {
      ...rest,
      content: [...before, ...texts].join('\n\n'),
      ...(kept.length > 0 ? { tool_calls: kept } : {}),
    };
    const finish = kept.length === 0 && choice.finish_reason === 'tool_calls' ? 'stop' : choice.finish_reason;
    return {
      ...body,
      choices: [{ ...choice, message: messageOut, finish_reason: finish }, ...listOf(body.choices).slice(1)],
    };
  },
  createStreamFilter(judge) {
    // From the first tool call on, every chunk is held until the finish: calls are judged whole, then the
    // held chunks go out without the condemned calls' fragments, their texts in one content chunk.
    let holding = false;
    const held: Json[] = [];
    const calls = new Map<number, HeldCall>();
    let refused = false;
    const release = (finish: Json | undefined): SseMessage[] => {
      holding = false;
      const condemned = new Map<number, string>();
      for (const [index, call] of calls) {
        const verdict = judge(call.name, call.args === '' ? '{}' : call.args);
        if (verdict?.kind === 'refuse') {
          refused = true;
          return [errorMessage('openai', verdict.message)];
        }
        if (verdict !== undefined) condemned.set(index, verdict.text);
      }
      // The kept calls are numbered again from 0, in the order they came: the SDKs assemble calls into an
      // array by index, and a gap (index 1 without 0) is a hole that breaks the assembly.
      const renumbered = new Map<number, number>();
      for (const index of calls.keys()) if (!condemned.has(index)) renumbered.set(index, renumbered.size);
      const kept = renumbered.size;
      calls.clear();
      const chunks = held.splice(0);
      if (condemned.size === 0) return [...chunks, ...(finish ? [finish] : [])].map((c) => message(c));
      const out: SseMessage[] = [];
      for (const chunk of chunks) {
        const choice = listOf(chunk.choices)[0] as Json;
        const keptCalls = openaiToolCalls(chunk).flatMap((c) => {
          if (!isJson(c) || typeof c.index !== 'number') return [c];
          const index = renumbered.get(c.index);
          return index === undefined ? [] : [index === c.index ? c : { ...c, index }];
        });
        const { tool_calls: _dropped, ...delta } = isJson(choice.delta) ? choice.delta : {};
        const nextDelta = keptCalls.length > 0 ? { ...delta, tool_calls: keptCalls } : delta;
        // A chunk that held only condemned fragments goes (its role, if any, was said before or is said below).
        if (Object.keys(nextDelta).some((k) => k !== 'role')) {
          out.push(message({ ...chunk, choices: [{ ...choice, delta: nextDelta }] }));
        }
      }
      const template = chunks[0] ?? finish;
      if (template !== undefined) {
        const choice = listOf(template.choices)[0] as Json;
        const text = [...condemned.values()].join('\n\n');
        out.push(
          message({ ...template, choices: [{ ...choice, delta: { content: text }, finish_reason: null }] }),
        );
      }
      if (finish !== undefined) {
        const choice = listOf(finish.choices)[0] as Json;
        const stop = kept === 0 && choice.finish_reason === 'tool_calls' ? 'stop' : choice.finish_reason;
        out.push(message({ ...finish, choices: [{ ...choice, finish_reason: stop }] }));
      }
      return out;
    };
    return {
      push(msg) {
        if (refused) return [];
        if (msg.data === '[DONE]') return holding ? [...release(undefined), msg] : [msg];
        const chunk = parse(msg.data);
        if (chunk === undefined) return holding ? [] : [msg];
        const fragments = openaiToolCalls(chunk);
        for (const fragment of fragments) {
          if (!isJson(fragment) || typeof fragment.index !== 'number') continue;
          const fn = isJson(fragment.function) ? fragment.function : {};
          const call = calls.get(fragment.index) ?? { name: '', args: '' };
          if (typeof fn.name === 'string') call.name += fn.name;
          if (typeof fn.arguments === 'string') call.args += fn.arguments;
          calls.set(fragment.index, call);
          holding = true;
        }
        if (!holding) return [msg];
        const choice = listOf(chunk.choices)[0];
        if (isJson(choice) && choice.finish_reason != null) {
          const { tool_calls: _t, ...rest } = isJson(choice.delta) ? choice.delta : {};
          if (fragments.length > 0)
            held.push({
              ...chunk,
              choices: [{ ...choice, delta: { ...rest, tool_calls: fragments }, finish_reason: null }],
            });
          return release({ ...chunk, choices: [{ ...choice, delta: {} }] });
        }
        held.push(chunk);
        return [];
      },
      busy: () => refused || holding,
      end: () => (holding ? release(undefined) : []),
    };
  },
};

// --- Gemini: a functionCall part arrives whole ---------------------------------------------------------

function geminiParts(chunk: Json, judge: ToolJudge): { chunk: Json; changed: boolean } {
  let changed = false;
  const candidates = listOf(chunk.candidates).map((candidate) => {
    if (!isJson(candidate) || !isJson(candidate.content)) return candidate;
    const parts = listOf(candidate.content.parts).map((part) => {
      const call = isJson(part) && isJson(part.functionCall) ? part.functionCall : undefined;
      if (call === undefined || typeof call.name !== 'string') return part;
      const verdict = judge(call.name, JSON.stringify(call.args ?? {}));
      if (verdict?.kind === 'refuse') throw new RefusedToolCall(verdict.message);
      if (verdict === undefined) return part;
      changed = true;
      return { text: verdict.text };
    });
    return { ...candidate, content: { ...candidate.content, parts } };
  });
  return { chunk: changed ? { ...chunk, candidates } : chunk, changed };
}

const gemini: ToolCallGuard = {
  toolNames: (body) =>
    listOf(body.tools).flatMap((tool) =>
      isJson(tool)
        ? listOf(tool.functionDeclarations).flatMap((d) =>
            isJson(d) && typeof d.name === 'string' ? [d.name] : [],
          )
        : [],
    ),
  rewriteWhole(body, judge) {
    const out = geminiParts(body, judge);
    return out.changed ? out.chunk : undefined;
  },
  createStreamFilter(judge) {
    let refused = false;
    return {
      push(msg) {
        if (refused) return [];
        const chunk = parse(msg.data);
        if (chunk === undefined) return [msg];
        try {
          const out = geminiParts(chunk, judge);
          return out.changed ? [message(out.chunk, msg.event)] : [msg];
        } catch (err) {
          if (!(err instanceof RefusedToolCall)) throw err;
          refused = true;
          return [errorMessage('gemini', err.message)];
        }
      },
      busy: () => refused,
      end: () => [],
    };
  },
};

// --- Responses API: output items, a tool call's events between its `added` and its `done` ---------------

/**
 * A Responses output item that calls a tool, as the judge sees it: a function's name and arguments; a
 * freeform (`custom`) tool's input, and the built-in shells' commands, as its `command` (shell-guard.ts reads
 * each agent's tool there).
 */
function responsesCall(item: unknown): { name: string; args: string } | undefined {
  if (!isJson(item)) return undefined;
  switch (item.type) {
    case 'function_call':
      return typeof item.name === 'string'
        ? { name: item.name, args: typeof item.arguments === 'string' ? item.arguments : '{}' }
        : undefined;
    case 'custom_tool_call':
      return typeof item.name === 'string'
        ? {
            name: item.name,
            args: JSON.stringify({ command: typeof item.input === 'string' ? item.input : '' }),
          }
        : undefined;
    case 'local_shell_call':
      return {
        name: 'local_shell',
        args: JSON.stringify({ action: isJson(item.action) ? item.action : {} }),
      };
    case 'shell_call': {
      const action = isJson(item.action) ? item.action : {};
      const commands = listOf(action.commands).filter((c): c is string => typeof c === 'string');
      return { name: 'shell', args: JSON.stringify({ command: commands.join('\n') }) };
    }
    default:
      return undefined;
  }
}

const RESPONSES_CALL_TYPES: ReadonlySet<unknown> = new Set([
  'function_call',
  'custom_tool_call',
  'local_shell_call',
  'shell_call',
]);

/** The assistant message that takes a condemned call's place. */
function responsesText(id: string, text: string): Json {
  return {
    id,
    type: 'message',
    status: 'completed',
    role: 'assistant',
    content: [{ type: 'output_text', text, annotations: [] }],
  };
}

function steerId(item: Json, index: number): string {
  return `msg_proxy_${typeof item.id === 'string' ? item.id : String(index)}`;
}

/** A whole Response's output with condemned calls replaced; undefined when nothing changed. */
function responsesOutput(output: unknown[], judge: ToolJudge): unknown[] | undefined {
  let changed = false;
  const out = output.map((item, index) => {
    const call = responsesCall(item);
    if (call === undefined) return item;
    const verdict = judge(call.name, call.args);
    if (verdict === undefined) return item;
    if (verdict.kind === 'refuse') throw new RefusedToolCall(verdict.message);
    changed = true;
    return responsesText(steerId(item as Json, index), verdict.text);
  });
  return changed ? out : undefined;
}

interface QueuedEvent {
  msg: SseMessage;
  event: Json | undefined;
}

const responses: ToolCallGuard = {
  toolNames: (body) => OFFERED_TOOLS.responses(body),
  rewriteWhole(body, judge) {
    const output = responsesOutput(listOf(body.output), judge);
    return output === undefined ? undefined : { ...body, output };
  },
  createStreamFilter(judge) {
    // From a call's `output_item.added` until every open call is `done`, events are queued (in order: the
    // SDKs place items by arrival), then passed on, a condemned call's events replaced by a message's.
    const queue: QueuedEvent[] = [];
    const open = new Set<number>();
    /** Condemned items' replacements by output index, for the final `response.*` event's output. */
    const replaced = new Map<number, Json>();
    /** Added to every later event's sequence number: the replacements' events outnumber (or not) the calls'. */
    let shift = 0;
    let refused = false;
    const renumbered = (q: QueuedEvent): SseMessage => {
      const { event, msg } = q;
      if (event === undefined) return msg;
      let next = event;
      if (shift !== 0 && typeof event.sequence_number === 'number')
        next = { ...next, sequence_number: event.sequence_number + shift };
      if (replaced.size > 0 && isJson(event.response) && Array.isArray(event.response.output)) {
        const output = event.response.output.map((item, i) => replaced.get(i) ?? item);
        next = { ...next, response: { ...event.response, output } };
      }
      return next === event ? msg : message(next, msg.event);
    };
    const flush = (): SseMessage[] => {
      const held = queue.splice(0);
      const condemned = new Map<number, string>();
      for (const { event } of held) {
        if (event?.type !== 'response.output_item.done' || typeof event.output_index !== 'number') continue;
        const call = responsesCall(event.item);
        if (call === undefined) continue;
        const verdict = judge(call.name, call.args);
        if (verdict?.kind === 'refuse') {
          refused = true;
          const error = {
            type: 'error',
            code: 'dangerous_command',
            message: verdict.message,
            param: null,
            sequence_number: (typeof event.sequence_number === 'number' ? event.sequence_number : 0) + shift,
          };
          return [message(error, 'error')];
        }
        if (verdict !== undefined) condemned.set(event.output_index, verdict.text);
      }
      const out: SseMessage[] = [];
      for (const q of held) {
        const index = typeof q.event?.output_index === 'number' ? q.event.output_index : -1;
        const text = condemned.get(index);
        if (text === undefined) {
          out.push(renumbered(q));
          continue;
        }
        const event = q.event!;
        if (event.type !== 'response.output_item.added') {
          shift -= 1;
          continue;
        }
        const item = steerId(isJson(event.item) ? event.item : {}, index);
        const done = responsesText(item, text);
        replaced.set(index, done);
        const part = { type: 'output_text', text: '', annotations: [] };
        const at = { item_id: item, output_index: index, content_index: 0 };
        const seq = (typeof event.sequence_number === 'number' ? event.sequence_number : 0) + shift;
        const events: Array<[string, Json]> = [
          [
            'response.output_item.added',
            { output_index: index, item: { ...done, status: 'in_progress', content: [] } },
          ],
          ['response.content_part.added', { ...at, part }],
          ['response.output_text.delta', { ...at, delta: text, logprobs: [] }],
          ['response.output_text.done', { ...at, text, logprobs: [] }],
          ['response.content_part.done', { ...at, part: { ...part, text } }],
          ['response.output_item.done', { output_index: index, item: done }],
        ];
        events.forEach(([type, data], i) =>
          out.push(message({ type, sequence_number: seq + i, ...data }, type)),
        );
        // The added event's own number is reused by the first of these.
        shift += events.length - 1;
      }
      return out;
    };
    return {
      push(msg) {
        if (refused) return [];
        const event = parse(msg.data);
        const index = typeof event?.output_index === 'number' ? event.output_index : -1;
        if (
          event?.type === 'response.output_item.added' &&
          RESPONSES_CALL_TYPES.has((event.item as Json | undefined)?.type)
        ) {
          open.add(index);
          queue.push({ msg, event });
          return [];
        }
        if (open.size === 0) return [renumbered({ msg, event })];
        queue.push({ msg, event });
        if (event?.type === 'response.output_item.done' && open.delete(index) && open.size === 0)
          return flush();
        return [];
      },
      busy: () => refused || open.size > 0 || queue.length > 0 || replaced.size > 0 || shift !== 0,
      // A call never done is a cut stream: what was held is not a call to pass on.
      end: () => [],
    };
  },
};

/** The guards by the backend's protocol (README, "Agent guardrails"). */
export const TOOL_CALL_GUARDS: Readonly<Partial<Record<Protocol, ToolCallGuard>>> = {
  openai,
  anthropic,
  gemini,
  responses,
};

/**
 * The names of the tools a request offers, by the client's protocol (Responses: function, custom, local_shell,
 * and those of Codex's `additional_tools` input items, by the names a translated backend is given).
 */
export const OFFERED_TOOLS: Readonly<Record<Protocol, (body: Json) => string[]>> = {
  openai: openai.toolNames,
  anthropic: anthropic.toolNames,
  gemini: gemini.toolNames,
  responses: (body) =>
    flattenTools(body).tools.flatMap((t) =>
      !isJson(t)
        ? []
        : typeof t.name === 'string'
          ? [t.name]
          : t.type === 'local_shell' || t.type === 'shell'
            ? [t.type]
            : [],
    ),
};

/** One SSE message as wire text. */
export function sseText(msg: SseMessage): string {
  return `${msg.event === undefined ? '' : `event: ${msg.event}\n`}data: ${msg.data}\n\n`;
}
