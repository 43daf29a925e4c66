import { ProxyError } from '../proxy-error.js';
import { ByteNeedle } from '../protocols/byte-needle.js';
import { CONVERSATIONS } from '../protocols/conversation.js';
import type { Protocol } from '../protocols/types.js';
import type { Redact } from '../redaction/excerpt.js';
import { checkLoop, type LoopVerdict } from '../sessions/loop-guard.js';
import { newestToolTurnsDiffer } from '../protocols/tool-turns.js';
import { arrayTail, arrayTailStarts } from './array-tail.js';
import type { ChatExchange } from './exchange.js';
import { requireObjectBody } from './route.js';

/** The member that holds each protocol's turns. */
const TURNS_MEMBER: Readonly<Record<Protocol, string>> = {
  openai: 'messages',
  anthropic: 'messages',
  gemini: 'contents',
  responses: 'input',
};

/**
 * Bytes of which every tool call or tool result holds one, per protocol: the start, with its opening quote,
 * that a protocol's tool-call and tool-result keys (or types' values) share — `"tool_call` is in
 * `"tool_calls"` and `"tool_call_id"` — so that one search of the turns' bytes counts both (a prompt of
 * 200 KB without tools: one pass over it, not two). Fewer of them than `repeats` and no run of repeats can
 * be there. Counting more than the tool turns hold (a `"tool_choice"`, an escaped quote in a string) only
 * sends the step on to parse the turns, which decides.
 */
const TOOL_MARKERS: Readonly<Record<Protocol, readonly ByteNeedle[]>> = {
  // "tool_calls", "tool_call_id"
  openai: ['"tool_call'].map((m) => new ByteNeedle(m)),
  // "tool_use", "tool_result"
  anthropic: ['"tool_'].map((m) => new ByteNeedle(m)),
  // "functionCall", "functionResponse"
  gemini: ['"function'].map((m) => new ByteNeedle(m)),
  // "function_call", "function_call_output"; "custom_tool_call", "custom_tool_call_output"
  responses: ['"function_call', '"custom_tool_call'].map((m) => new ByteNeedle(m)),
};

/**
 * How many of the newest turns are read first, per protocol: enough to hold two tool calls and two tool
 * results in the protocol's usual shape (a call and its result, twice; the Responses API also has a
 * reasoning item before each call) — what decides a conversation without a loop. When they do not decide
 * it, more are read (loopStep).
 */
const FIRST_TAIL: Readonly<Record<Protocol, number>> = { openai: 4, anthropic: 4, gemini: 4, responses: 6 };

/** Whether `bytes[start, end)` holds at least `needed` markers in all (counting stops there). */
function atLeast(
  bytes: Buffer,
  start: number,
  end: number,
  markers: readonly ByteNeedle[],
  needed: number,
): boolean {
  let found = 0;
  for (const marker of markers) {
    for (
      let at = marker.indexIn(bytes, start, end);
      at >= 0;
      at = marker.indexIn(bytes, at + marker.bytes.length, end)
    ) {
      if (++found >= needed) return true;
    }
  }
  return false;
}

function answer(verdict: LoopVerdict): string | undefined {
  if (verdict === undefined) return undefined;
  if (verdict.kind === 'refuse') throw new ProxyError(400, verdict.message, { code: 'tool_loop' });
  return verdict.text;
}

/**
 * The loop guard's step (README, "Agent guardrails"): the steering text to answer with instead of calling
 * the backend, or undefined to go on; throws a 400 `tool_loop` when the loop went on after the steering.
 *
 * On the body's bytes first, so an agent's conversation is not parsed for it (docs/performance.md): turns
 * without a tool-call marker hold no loop (one native search); otherwise the newest turns are read backwards
 * from the end of the bytes — the last few (FIRST_TAIL), which decide an agent's usual conversation: when
 * their newest two tool calls differ and their newest two tool results differ, read on their bytes
 * (src/protocols/tool-turns.ts), there is no loop and nothing is parsed; else they are parsed alone; when they do not, fewer markers than `repeats` in all the turns cannot hold a loop; then the
 * last `2 × repeats + 2`, and the whole conversation only when a run of repeats reaches back past them.
 */
export function loopStep(
  from: Protocol,
  ex: ChatExchange,
  repeats: number,
  redact: Redact,
): string | undefined {
  const conversation = CONVERSATIONS[from];
  const member = TURNS_MEMBER[from];
  const range = ex.json?.unparsedRange(member);
  if (ex.json !== undefined && range !== undefined) {
    const bytes = ex.json.bytes;
    const markers = TOOL_MARKERS[from];
    if (!atLeast(bytes, range[0], range[1], markers, 1)) return undefined;
    for (const count of [FIRST_TAIL[from], 2 * repeats + 2]) {
      const found = arrayTailStarts(bytes, range[0], range[1], count);
      if (found === null) break;
      // The newest two calls differ and so do the newest two results: no run of repeats, nothing parsed.
      if (newestToolTurnsDiffer(from, bytes, found.starts)) return undefined;
      const tail = arrayTail(bytes, range[0], range[1], count, found);
      if (tail === null) break;
      if (tail.all) {
        if (tail.elements.length < repeats) return undefined;
        return answer(checkLoop(tail.elements, conversation, repeats, redact));
      }
      const verdict = checkLoop(tail.elements, conversation, repeats, redact, true);
      if (verdict !== 'undecided') return answer(verdict);
      // Fewer markers than repeats in all the turns: no run of repeats anywhere.
      if (!atLeast(bytes, range[0], range[1], markers, repeats)) return undefined;
    }
  }
  const turns = conversation.turns(requireObjectBody(ex));
  if (turns === undefined || turns.length < repeats) return undefined;
  return answer(checkLoop(turns, conversation, repeats, redact));
}

/**
 * The loop guard's step for a conversation the proxy holds, not the client's bytes (a Responses request
 * continuing a stored response: its `input` is only the newest turns of what the backend will see).
 */
export function loopStepOnTurns(
  from: Protocol,
  turns: readonly unknown[],
  repeats: number,
  redact: Redact,
): string | undefined {
  if (turns.length < repeats) return undefined;
  return answer(checkLoop(turns, CONVERSATIONS[from], repeats, redact));
}
