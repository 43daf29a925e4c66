/**
 * The parts of each protocol's request body that a session touches (README, "In-chat commands"): the turns
 * of the conversation and the text of user turns, the sampling temperature and the reasoning effort. Read
 * and written on the client's own wire shape, so a request that a command did not change is forwarded as
 * its bytes, and one that it did keeps every field it does not touch.
 */
import {
  maxTokensWithThinking,
  reasoningBudget,
  reasoningWord,
  refusedBesideThinking,
  settingControl,
  type ReasoningSetting,
} from './reasoning.js';
import type { Protocol } from './types.js';

type Json = Record<string, unknown>;

export type TurnRole = 'user' | 'assistant' | 'other';

/** Where a text sits in a turn: its content as a whole (a string), or one part of a list. */
export interface TurnText {
  text: string;
  /** -1 for a content given as one string. */
  part: number;
}

export interface ToolCallText {
  name: string;
  /** The arguments as JSON text (a protocol's object arguments serialised). */
  args: string;
  /** The id its result answers to (`tool_call_id`, `tool_use_id`, `call_id`), when the protocol gives one. */
  id?: string | undefined;
}

/** A tool result a turn carries back. */
export interface ToolResultText {
  /** The output as text (JSON for structured results). */
  text: string;
  /** Whether the output says nothing: only white space, empty lists and members (see `isEmptyOutput`). */
  empty: boolean;
  /** The call it answers, by id; absent when the protocol names the tool instead (`name`). */
  id?: string | undefined;
  /** The tool's name, when the result carries it (Gemini's `functionResponse.name`). */
  name?: string | undefined;
}

export interface WireConversation {
  /** The turns of the conversation, in order; undefined when the body has none. */
  turns(body: Json): readonly unknown[] | undefined;
  /** A copy of the body with other turns. */
  withTurns(body: Json, turns: unknown[]): Json;
  role(turn: unknown): TurnRole;
  /** The texts of a turn (its own words, not tool results or thoughts), in order. */
  texts(turn: unknown): TurnText[];
  /** A copy of the turn with one text replaced. */
  withText(turn: unknown, at: TurnText, text: string): unknown;
  /** A copy of the turn without one text (its part left out; a content given as one string, empty). */
  withoutText(turn: unknown, at: TurnText): unknown;
  /** Whether the turn holds more after one text: a part that is not text, or text that is not white space. */
  holdsMoreAfter(turn: unknown, at: TurnText): boolean;
  /** The tool calls of an assistant turn, each as its name and its arguments' JSON text. */
  toolCalls(turn: unknown): ToolCallText[];
  /** The tool results a turn carries back. */
  toolResults(turn: unknown): ToolResultText[];
  /** A copy of the body with this sampling temperature. */
  withTemperature(body: Json, temperature: number): Json;
  /**
   * A copy of the body asking for the session's reasoning, through the one reasoning table, as the
   * protocol's encoder writes it for a request translated to it (src/protocols/reasoning.ts): for a
   * request that goes to a backend of its own protocol.
   */
  withReasoning(body: Json, setting: ReasoningSetting): Json;
}

function isJson(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function jsonText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value ?? null);
}

function listOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function stringOr(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * Whether a tool's output says nothing: null, a string of white space, or a list or object of such (an
 * object's `type` aside, so that a text part `{type: 'text', text: ''}` and Gemini's `{output: ''}` are
 * empty too). Every protocol wraps an empty shell output in its own way; the loop guard does not count
 * outputs that say nothing as the same output.
 */
export function isEmptyOutput(value: unknown): boolean {
  if (value === null || value === undefined) return true;
  if (typeof value === 'string') return value.trim() === '';
  if (Array.isArray(value)) return value.every(isEmptyOutput);
  if (isJson(value))
    return Object.entries(value).every(([key, member]) => key === 'type' || isEmptyOutput(member));
  return false;
}

function toolResult(output: unknown, id: unknown, name?: unknown): ToolResultText {
  return { text: jsonText(output), empty: isEmptyOutput(output), id: stringOr(id), name: stringOr(name) };
}

/** The words of one part of a turn's list, or undefined for a part that is not words. */
type PartText = (part: unknown) => string | undefined;

/** `withoutText` and `holdsMoreAfter` of a protocol whose turns keep their parts in `member`. */
function partsOf(member: string, textOf: PartText): Pick<WireConversation, 'withoutText' | 'holdsMoreAfter'> {
  return {
    withoutText(turn, at) {
      const item = turn as Json;
      if (at.part < 0) return { ...item, [member]: '' };
      return { ...item, [member]: listOf(item[member]).filter((_, i) => i !== at.part) };
    },
    holdsMoreAfter(turn, at) {
      if (at.part < 0 || !isJson(turn)) return false;
      return listOf(turn[member])
        .slice(at.part + 1)
        .some((part) => textOf(part)?.trim() !== '');
    },
  };
}

/**
 * OpenAI chat and Anthropic messages: `messages[]` with `role` and `content` (a string, or a list of parts
 * of which `{type: 'text', text}` are the words).
 */
const messagePartText: PartText = (part) =>
  isJson(part) && part.type === 'text' && typeof part.text === 'string' ? part.text : undefined;

function messagesConversation(roles: {
  user: string;
  assistant: string;
}): Omit<WireConversation, 'withTemperature' | 'withReasoning' | 'toolCalls' | 'toolResults'> {
  return {
    ...partsOf('content', messagePartText),
    turns: (body) => (Array.isArray(body.messages) ? body.messages : undefined),
    withTurns: (body, turns) => ({ ...body, messages: turns }),
    role(turn) {
      const role = isJson(turn) ? turn.role : undefined;
      return role === roles.user ? 'user' : role === roles.assistant ? 'assistant' : 'other';
    },
    texts(turn) {
      if (!isJson(turn)) return [];
      const { content } = turn;
      if (typeof content === 'string') return [{ text: content, part: -1 }];
      if (!Array.isArray(content)) return [];
      const texts: TurnText[] = [];
      content.forEach((part, i) => {
        const text = messagePartText(part);
        if (text !== undefined) texts.push({ text, part: i });
      });
      return texts;
    },
    withText(turn, at, text) {
      const message = turn as Json;
      if (at.part < 0) return { ...message, content: text };
      const content = [...(message.content as unknown[])];
      content[at.part] = { ...(content[at.part] as Json), text };
      return { ...message, content };
    },
  };
}

const openai: WireConversation = {
  ...messagesConversation({ user: 'user', assistant: 'assistant' }),
  toolCalls(turn) {
    if (!isJson(turn)) return [];
    return listOf(turn.tool_calls).flatMap((call) => {
      const fn = isJson(call) && isJson(call.function) ? call.function : undefined;
      return fn && typeof fn.name === 'string'
        ? [{ name: fn.name, args: jsonText(fn.arguments), id: stringOr((call as Json).id) }]
        : [];
    });
  },
  toolResults(turn) {
    if (!isJson(turn) || turn.role !== 'tool') return [];
    return [toolResult(turn.content, turn.tool_call_id)];
  },
  withTemperature: (body, temperature) => ({ ...body, temperature }),
  withReasoning(body, setting) {
    const { reasoning_effort: _dropped, ...rest } = body;
    const control = settingControl(setting);
    return control ? { ...rest, reasoning_effort: reasoningWord(control, 'openai') } : rest;
  },
};

const anthropic: WireConversation = {
  ...messagesConversation({ user: 'user', assistant: 'assistant' }),
  toolCalls(turn) {
    if (!isJson(turn)) return [];
    return listOf(turn.content).flatMap((block) =>
      isJson(block) && block.type === 'tool_use' && typeof block.name === 'string'
        ? [{ name: block.name, args: jsonText(block.input), id: stringOr(block.id) }]
        : [],
    );
  },
  toolResults(turn) {
    if (!isJson(turn)) return [];
    return listOf(turn.content).flatMap((block) =>
      isJson(block) && block.type === 'tool_result' ? [toolResult(block.content, block.tool_use_id)] : [],
    );
  },
  withTemperature: (body, temperature) => ({ ...body, temperature }),
  withReasoning(body, setting) {
    const { thinking: _thinking, ...rest } = body;
    const control = settingControl(setting);
    if (!control) return rest;
    const budget = reasoningBudget(control);
    // Anthropic takes thinking only with max_tokens above the budget and without the sampling it refuses.
    for (const field of refusedBesideThinking(rest)) delete rest[field];
    const maxTokens = typeof rest.max_tokens === 'number' ? rest.max_tokens : 0;
    return {
      ...rest,
      max_tokens: maxTokensWithThinking(maxTokens, budget),
      thinking: { type: 'enabled', budget_tokens: budget },
    };
  },
};

function generationConfig(body: Json): Json {
  return isJson(body.generationConfig) ? body.generationConfig : {};
}

const geminiPartText: PartText = (part) =>
  isJson(part) && typeof part.text === 'string' && part.thought !== true ? part.text : undefined;

/** Gemini: `contents[]` with `role` `user` | `model` and `parts[]`, of which `{text}` without `thought`. */
const gemini: WireConversation = {
  ...partsOf('parts', geminiPartText),
  turns: (body) => (Array.isArray(body.contents) ? body.contents : undefined),
  withTurns: (body, turns) => ({ ...body, contents: turns }),
  role(turn) {
    const role = isJson(turn) ? turn.role : undefined;
    // Gemini lets a lone user turn leave its role out.
    return role === 'user' || role === undefined ? 'user' : role === 'model' ? 'assistant' : 'other';
  },
  texts(turn) {
    if (!isJson(turn) || !Array.isArray(turn.parts)) return [];
    const texts: TurnText[] = [];
    turn.parts.forEach((part, i) => {
      const text = geminiPartText(part);
      if (text !== undefined) texts.push({ text, part: i });
    });
    return texts;
  },
  withText(turn, at, text) {
    const content = turn as Json;
    const parts = [...(content.parts as unknown[])];
    parts[at.part] = { ...(parts[at.part] as Json), text };
    return { ...content, parts };
  },
  toolCalls(turn) {
    if (!isJson(turn)) return [];
    return listOf(turn.parts).flatMap((part) => {
      const call = isJson(part) && isJson(part.functionCall) ? part.functionCall : undefined;
      return call && typeof call.name === 'string'
        ? [{ name: call.name, args: jsonText(call.args ?? {}), id: stringOr(call.id) }]
        : [];
    });
  },
  toolResults(turn) {
    if (!isJson(turn)) return [];
    return listOf(turn.parts).flatMap((part) =>
      isJson(part) && isJson(part.functionResponse)
        ? [toolResult(part.functionResponse.response, part.functionResponse.id, part.functionResponse.name)]
        : [],
    );
  },
  withTemperature: (body, temperature) => ({
    ...body,
    generationConfig: { ...generationConfig(body), temperature },
  }),
  withReasoning(body, setting) {
    const config = generationConfig(body);
    const control = settingControl(setting);
    // Off: Gemini's models think unless told not to, so they are told (budget 0), and nothing else.
    if (!control) return { ...body, generationConfig: { ...config, thinkingConfig: { thinkingBudget: 0 } } };
    const thinkingConfig: Json = {
      ...(isJson(config.thinkingConfig) ? config.thinkingConfig : {}),
      thinkingBudget: reasoningBudget(control),
    };
    // A level and a budget together are refused; the session's choice replaces the client's.
    delete thinkingConfig.thinkingLevel;
    return { ...body, generationConfig: { ...config, thinkingConfig } };
  },
};

/**
 * The Responses API: `input` as one string (the user's) or a list of items — messages (`role`, `content` a
 * string or parts `input_text` / `output_text`), and `function_call` / `custom_tool_call` items with their
 * `*_output` items, each its own turn.
 */
function responsesItems(body: Json): unknown[] | undefined {
  if (typeof body.input === 'string') return [{ type: 'message', role: 'user', content: body.input }];
  return Array.isArray(body.input) ? body.input : undefined;
}

const RESPONSES_TEXT_PARTS: ReadonlySet<unknown> = new Set(['input_text', 'output_text', 'text']);

const responsesPartText: PartText = (part) =>
  isJson(part) && RESPONSES_TEXT_PARTS.has(part.type) && typeof part.text === 'string'
    ? part.text
    : undefined;

const responses: WireConversation = {
  ...partsOf('content', responsesPartText),
  turns: responsesItems,
  withTurns: (body, turns) => ({ ...body, input: turns }),
  role(turn) {
    if (!isJson(turn)) return 'other';
    if (turn.type === 'function_call' || turn.type === 'custom_tool_call') return 'assistant';
    if (turn.type !== undefined && turn.type !== 'message') return 'other';
    return turn.role === 'user' ? 'user' : turn.role === 'assistant' ? 'assistant' : 'other';
  },
  texts(turn) {
    if (!isJson(turn)) return [];
    const { content } = turn;
    if (typeof content === 'string') return [{ text: content, part: -1 }];
    const texts: TurnText[] = [];
    listOf(content).forEach((part, i) => {
      const text = responsesPartText(part);
      if (text !== undefined) texts.push({ text, part: i });
    });
    return texts;
  },
  withText(turn, at, text) {
    const item = turn as Json;
    if (at.part < 0) return { ...item, content: text };
    const content = [...(item.content as unknown[])];
    content[at.part] = { ...(content[at.part] as Json), text };
    return { ...item, content };
  },
  toolCalls(turn) {
    if (!isJson(turn) || typeof turn.name !== 'string') return [];
    const id = stringOr(turn.call_id);
    if (turn.type === 'function_call') return [{ name: turn.name, args: jsonText(turn.arguments), id }];
    if (turn.type === 'custom_tool_call') return [{ name: turn.name, args: jsonText(turn.input), id }];
    return [];
  },
  toolResults(turn) {
    if (!isJson(turn)) return [];
    return turn.type === 'function_call_output' || turn.type === 'custom_tool_call_output'
      ? [toolResult(turn.output, turn.call_id)]
      : [];
  },
  withTemperature: (body, temperature) => ({ ...body, temperature }),
  withReasoning(body, setting) {
    const { reasoning, ...rest } = body;
    const control = settingControl(setting);
    if (!control) return rest;
    const effort = reasoningWord(control, 'responses');
    return { ...rest, reasoning: { ...(isJson(reasoning) ? reasoning : {}), effort } };
  },
};

export const CONVERSATIONS: Readonly<Record<Protocol, WireConversation>> = {
  openai,
  anthropic,
  gemini,
  responses,
};
