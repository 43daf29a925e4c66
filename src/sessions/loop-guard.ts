import type { ToolCallText, TurnRole, TurnText } from '../protocols/conversation.js';

/**
 * The tool-call loop guard (README, "Agent guardrails"): an agent stuck repeating the same tool call (same
 * name and arguments), or getting the same tool output back, is steered instead of forwarded once the
 * repeat reaches `repeats`; if it goes on after the steering message, the request is refused. Read from the
 * conversation the client sends — the history is the session — so it needs no state and holds across
 * replicas.
 */

/** What the guard needs of a protocol's turns (`WireConversation` gives it). */
export interface TurnReader {
  role(turn: unknown): TurnRole;
  texts(turn: unknown): TurnText[];
  toolCalls(turn: unknown): ToolCallText[];
  toolResults(turn: unknown): string[];
}

/** Marks the proxy's steering message, so that a later turn can tell it was already given. */
export const LOOP_MARKER = '[proxy: tool-call loop]';

export type LoopVerdict = { kind: 'steer'; text: string } | { kind: 'refuse'; message: string } | undefined;

function signature(calls: ToolCallText[]): string {
  return calls.map((call) => `${call.name}\u0000${call.args}`).join('\u0001');
}

/**
 * How often the newest entry repeats, walking back over the turns that have one (`of` gives a turn's
 * signature, or undefined for a turn that says nothing about it), and whether the proxy steered within it.
 */
function run(
  turns: readonly unknown[],
  reader: TurnReader,
  of: (turn: unknown) => string | undefined,
): { count: number; steered: boolean; sample: string; decided: boolean } {
  let count = 0;
  let steered = false;
  let newest: string | undefined;
  for (let i = turns.length - 1; i >= 0; i--) {
    const turn = turns[i];
    if (reader.role(turn) === 'assistant' && reader.texts(turn).some((t) => t.text.includes(LOOP_MARKER))) {
      // Steered after the newest repeat: the agent stopped there, no loop now. Steered within the run: it
      // went on regardless.
      if (count === 0) return { count: 0, steered: false, sample: '', decided: true };
      steered = true;
    }
    const sig = of(turn);
    if (sig === undefined) continue;
    if (newest === undefined) newest = sig;
    else if (sig !== newest) return { count, steered, sample: newest, decided: true };
    count++;
  }
  // Walked to the first turn: decided for the whole conversation, not for a tail of it.
  return { count, steered, sample: newest ?? '', decided: false };
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > 120 ? `${flat.slice(0, 120)}…` : flat;
}

/**
 * The verdict for the whole conversation, or for its newest turns alone (`tail`: older turns were left out):
 * then `undecided` when a run reached the first turn given, since older turns might lengthen it.
 */
export function checkLoop(turns: readonly unknown[], reader: TurnReader, repeats: number): LoopVerdict;
export function checkLoop(
  turns: readonly unknown[],
  reader: TurnReader,
  repeats: number,
  tail: boolean,
): LoopVerdict | 'undecided';
export function checkLoop(
  turns: readonly unknown[],
  reader: TurnReader,
  repeats: number,
  tail = false,
): LoopVerdict | 'undecided' {
  const calls = run(turns, reader, (turn) => {
    if (reader.role(turn) !== 'assistant') return undefined;
    const list = reader.toolCalls(turn);
    return list.length === 0 ? undefined : signature(list);
  });
  const results = run(turns, reader, (turn) => {
    const list = reader.toolResults(turn);
    return list.length === 0 ? undefined : list.join('\u0001');
  });
  if (tail && (!calls.decided || !results.decided)) return 'undecided';
  const hit = calls.count >= repeats ? calls : results.count >= repeats ? results : undefined;
  if (hit === undefined) return undefined;
  const what =
    hit === calls
      ? `the same tool call ${calls.count} times in a row (${excerpt(calls.sample.replace('\u0000', ' '))})`
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
