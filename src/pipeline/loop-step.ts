import { ProxyError } from '../proxy-error.js';
import { CONVERSATIONS } from '../protocols/conversation.js';
import type { Protocol } from '../protocols/types.js';
import { checkLoop, type LoopVerdict } from '../sessions/loop-guard.js';
import { arrayTail } from './array-tail.js';
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
 * Bytes of which every tool call or tool result holds one, per protocol (a key, or a type's value, with its
 * quotes): fewer of them than `repeats` in the turns' bytes, and no run of repeats can be there.
 */
const TOOL_MARKERS: Readonly<Record<Protocol, readonly Buffer[]>> = {
  openai: ['"tool_calls"', '"tool_call_id"'].map((m) => Buffer.from(m)),
  anthropic: ['"tool_use"', '"tool_result"'].map((m) => Buffer.from(m)),
  gemini: ['"functionCall"', '"functionResponse"'].map((m) => Buffer.from(m)),
  responses: [
    '"function_call"',
    '"function_call_output"',
    '"custom_tool_call"',
    '"custom_tool_call_output"',
  ].map((m) => Buffer.from(m)),
};

/** Turns of fewer bytes are parsed whole: below this, one `JSON.parse` costs less than the scan for the tail. */
const TAIL_MIN_BYTES = 32 * 1024;

/** Whether `bytes[start, end)` holds at least `needed` markers in all (counting stops there). */
function atLeast(
  bytes: Buffer,
  start: number,
  end: number,
  markers: readonly Buffer[],
  needed: number,
): boolean {
  let found = 0;
  for (const marker of markers) {
    let at = bytes.indexOf(marker, start);
    while (at >= 0 && at + marker.length <= end) {
      if (++found >= needed) return true;
      at = bytes.indexOf(marker, at + marker.length);
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
 * On the body's bytes first, so a large agent conversation is not parsed for it (docs/performance.md): fewer
 * tool-call markers than `repeats` cannot hold a loop (one native search); otherwise only the newest turns
 * are parsed (turns under 32 KB are parsed whole, which is faster), and the whole conversation only when a run
 * of repeats reaches back past them.
 */
export function loopStep(from: Protocol, ex: ChatExchange, repeats: number): string | undefined {
  const conversation = CONVERSATIONS[from];
  const member = TURNS_MEMBER[from];
  const range = ex.json?.unparsedRange(member);
  if (ex.json !== undefined && range !== undefined) {
    const bytes = ex.json.bytes;
    if (!atLeast(bytes, range[0], range[1], TOOL_MARKERS[from], repeats)) return undefined;
    // A small conversation is parsed faster whole than scanned.
    const tail =
      range[1] - range[0] < TAIL_MIN_BYTES ? null : arrayTail(bytes, range[0], range[1], 2 * repeats + 2);
    if (tail !== null) {
      if (tail.elements.length < repeats) return undefined;
      const verdict = checkLoop(tail.elements, conversation, repeats, !tail.all);
      if (verdict !== 'undecided') return answer(verdict);
    }
  }
  const turns = conversation.turns(requireObjectBody(ex));
  if (turns === undefined || turns.length < repeats) return undefined;
  return answer(checkLoop(turns, conversation, repeats));
}
