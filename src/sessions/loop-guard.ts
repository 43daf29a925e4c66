import type { ToolCallText, ToolResultText, TurnRole, TurnText } from '../protocols/conversation.js';
import { redactedExcerpt, type Redact } from '../redaction/excerpt.js';

/**
 * The tool-call loop guard (README, "Agent guardrails"): an agent stuck repeating the same tool call (same
 * name and arguments), or getting the same tool output back, is steered instead of forwarded once the
 * repeats in a row reach `repeats`; if the same run goes on after the steering message, the request is
 * refused. A user's turn or the model's answer without tool calls ends a run: the loop is over. Read from the
 * conversation the client sends — the history is the session — so it needs no state and holds across
 * replicas.
 */

/** What the guard needs of a protocol's turns (`WireConversation` gives it). */
export interface TurnReader {
  role(turn: unknown): TurnRole;
  texts(turn: unknown): TurnText[];
  toolCalls(turn: unknown): ToolCallText[];
  toolResults(turn: unknown): ToolResultText[];
}

/** Marks the proxy's steering message, so that a later turn can tell it was already given. */
export const LOOP_MARKER = '[proxy: tool-call loop]';

export type LoopVerdict = { kind: 'steer'; text: string } | { kind: 'refuse'; message: string } | undefined;

function signature(calls: ToolCallText[]): string {
  return calls.map((call) => `${call.name}\u0000${call.args}`).join('\u0001');
}

/** What a turn is to a run: its signature, or one of these. */
const PASSED = 0;
const ENDS = 1;
/** The turns given start too late to tell (a tail: an older turn decides). */
const UNKNOWN = 2;
type Mark = string | typeof PASSED | typeof ENDS | typeof UNKNOWN;

/** Turns looked back over for the call a tool result answers: many parallel calls' worth, and a bound. */
const CALL_LOOKBACK = 32;

/**
 * The name of the tool a result (in turn `at`) comes from: its own, when the protocol names it; else the
 * call with its id in the answer just before it (the nearest assistant turns with tool calls — several in a
 * row in the Responses API — past the results of that answer's other calls); else that answer's only
 * call; else ''. UNKNOWN when the turns given (`tail`) start before that answer is read to its end.
 */
function toolNameOf(
  turns: readonly unknown[],
  reader: TurnReader,
  at: number,
  result: ToolResultText,
  tail: boolean,
): string | typeof UNKNOWN {
  if (result.name !== undefined) return result.name;
  let calls = 0;
  let only = '';
  let decided = false;
  const stop = Math.max(-1, at - 1 - CALL_LOOKBACK);
  for (let j = at - 1; j > stop && !decided; j--) {
    const turn = turns[j];
    const role = reader.role(turn);
    const answerCalls = role === 'assistant' ? reader.toolCalls(turn) : [];
    const match = answerCalls.find((call) => result.id !== undefined && call.id === result.id);
    if (match !== undefined) return match.name;
    if (answerCalls.length > 0) {
      calls += answerCalls.length;
      only = answerCalls[0]!.name;
      continue;
    }
    // Past the answer: its words, the user's, or (once its calls are read) an older call's result. Reasoning
    // items, and the results of the answer's other calls, are passed over.
    const results = role === 'assistant' ? 0 : reader.toolResults(turn).length;
    decided = role === 'assistant' || (role === 'user' && results === 0) || (results > 0 && calls > 0);
  }
  if (tail && !decided && stop < 0) return UNKNOWN;
  return calls === 1 ? only : '';
}

/**
 * Whether a turn ends any run of repeats (README, "Agent guardrails": repeats in a row): a user's own turn
 * (words, not tool results), or an assistant's answer without tool calls, as the model ends its turn — but
 * not one followed by the same answer's tool calls (the Responses API gives each its own item).
 */
function endsRun(
  turn: unknown,
  role: TurnRole,
  newerRole: TurnRole | undefined,
  reader: TurnReader,
): boolean {
  if (role === 'user') return reader.toolResults(turn).length === 0;
  if (role === 'assistant') return newerRole !== 'assistant' && reader.toolCalls(turn).length === 0;
  return false;
}

/**
 * How often the newest entry repeats in a row, walking back from the newest turn (`of` gives a turn's
 * signature, PASSED for a turn that says nothing about it, ENDS, or UNKNOWN), and whether the proxy steered
 * within the run. A run ends at a different signature or at a turn that ends every run (`endsRun`): a
 * loop the agent left, by the user's word or the model's own answer, is not counted on after it.
 */
function run(
  turns: readonly unknown[],
  reader: TurnReader,
  of: (turn: unknown, at: number) => Mark,
): { count: number; steered: boolean; sample: string; decided: boolean } {
  let count = 0;
  let steered = false;
  let newest: string | undefined;
  /** The role of the nearest newer turn that is the user's or the assistant's. */
  let newerRole: TurnRole | undefined;
  for (let i = turns.length - 1; i >= 0; i--) {
    const turn = turns[i];
    const role = reader.role(turn);
    if (role === 'assistant' && reader.texts(turn).some((t) => t.text.includes(LOOP_MARKER))) {
      // Steered after the newest repeat: the agent stopped there, no loop now. Steered within the run: it
      // went on regardless, with no word from the user in between.
      if (count === 0) return { count: 0, steered: false, sample: '', decided: true };
      steered = true;
      newerRole = role;
      continue;
    }
    const sig = endsRun(turn, role, newerRole, reader) ? ENDS : of(turn, i);
    if (role !== 'other') newerRole = role;
    if (sig === PASSED) continue;
    if (sig === ENDS) return { count, steered, sample: newest ?? '', decided: true };
    if (sig === UNKNOWN) return { count, steered, sample: newest ?? '', decided: false };
    if (newest === undefined) newest = sig;
    else if (sig !== newest) return { count, steered, sample: newest, decided: true };
    count++;
  }
  // Walked to the first turn: decided for the whole conversation, not for a tail of it.
  return { count, steered, sample: newest ?? '', decided: false };
}

/** The longest part of a repeated tool call the guard's messages quote. */
const MAX_QUOTED_CALL = 120;

function quotedCall(sample: string, redact: Redact): string {
  return redactedExcerpt(sample.replace('\u0000', ' ').replace(/\s+/g, ' '), MAX_QUOTED_CALL, redact);
}

/**
 * The verdict for the whole conversation, or for its newest turns alone (`tail`: older turns were left out):
 * then `undecided` when a run reached the first turn given, since older turns might lengthen it. The tool
 * call a message quotes is the client's text: redacted by `redact` (it may carry a key).
 */
export function checkLoop(
  turns: readonly unknown[],
  reader: TurnReader,
  repeats: number,
  redact: Redact,
): LoopVerdict;
export function checkLoop(
  turns: readonly unknown[],
  reader: TurnReader,
  repeats: number,
  redact: Redact,
  tail: boolean,
): LoopVerdict | 'undecided';
export function checkLoop(
  turns: readonly unknown[],
  reader: TurnReader,
  repeats: number,
  redact: Redact,
  tail = false,
): LoopVerdict | 'undecided' {
  const calls = run(turns, reader, (turn) => {
    if (reader.role(turn) !== 'assistant') return PASSED;
    const list = reader.toolCalls(turn);
    return list.length === 0 ? PASSED : signature(list);
  });
  // An output counts as the same only from the same tool and when it says something: seven `mkdir`s of
  // different directories all print nothing, and that is no loop.
  const results = run(turns, reader, (turn, at) => {
    const list = reader.toolResults(turn);
    if (list.length === 0) return PASSED;
    if (list.every((result) => result.empty)) return ENDS;
    let sig = '';
    for (const result of list) {
      const name = toolNameOf(turns, reader, at, result, tail);
      if (name === UNKNOWN) return UNKNOWN;
      sig += `${sig === '' ? '' : '\u0001'}${name}\u0000${result.text}`;
    }
    return sig;
  });
  if (tail && (!calls.decided || !results.decided)) return 'undecided';
  const hit = calls.count >= repeats ? calls : results.count >= repeats ? results : undefined;
  if (hit === undefined) return undefined;
  const what =
    hit === calls
      ? `the same tool call ${calls.count} times in a row (${quotedCall(calls.sample, redact)})`
      : `the same tool output back ${results.count} times in a row`;
  if (hit.steered) {
    return {
      kind: 'refuse',
      message: `Tool-call loop: ${what}, and it went on after the proxy's warning. Change the approach or start a new session.`,
    };
  }
  return {
    kind: 'steer',
    text:
      `${LOOP_MARKER} This conversation has made ${what}; repeating it will not give a different result. ` +
      'Stop and reconsider: read the last output carefully, try a different approach, or ask the user for help.',
  };
}
