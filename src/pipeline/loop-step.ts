import { ProxyError } from '../proxy-error.js';
import { CONVERSATIONS } from '../protocols/conversation.js';
import type { Protocol } from '../protocols/types.js';
import { checkLoop } from '../sessions/loop-guard.js';

/**
 * Per protocol, the starts of the JSON strings that every tool call turn, and every tool output turn, holds
 * at least once (a key, or a `type`/`role` value, with its opening quote) — one prefix for both where they
 * share one, so that a body costs one native search. Fewer than `repeats` of them in a body's bytes, and it
 * cannot hold a loop: the conversation is not parsed. A client escaping these names (`"tool\u005fuse"`) goes
 * unnoticed — the guard protects a user from their agent, not from a client written to dodge it.
 */
const LOOP_MARKERS: Readonly<Record<Protocol, readonly Buffer[]>> = {
  openai: markers('"tool'), // "tool_calls", role "tool"
  anthropic: markers('"tool_'), // "tool_use", "tool_result"
  gemini: markers('"function'), // "functionCall", "functionResponse"
  responses: markers('"function_call', '"custom_tool_call'), // and their "_output"s
};

function markers(...prefixes: string[]): Buffer[] {
  return prefixes.map((prefix) => Buffer.from(prefix));
}

/** Whether `bytes` hold at least `wanted` occurrences of the markers together (a native search each). */
function holdsAtLeast(bytes: Buffer, needles: readonly Buffer[], wanted: number): boolean {
  let found = 0;
  for (const needle of needles) {
    for (let at = bytes.indexOf(needle); at !== -1; at = bytes.indexOf(needle, at + needle.length)) {
      if (++found >= wanted) return true;
    }
  }
  return false;
}

/**
 * The loop guard's step (README, "Agent guardrails"): the steering text to answer with instead of calling
 * the backend, or undefined to go on; throws a 400 `tool_loop` when the loop went on after the steering.
 * A body whose bytes hold fewer tool call and output markers than `repeats` costs a byte search and is not
 * parsed (a coding agent's context is hundreds of kilobytes: docs/performance.md, "Large bodies"); a
 * conversation shorter than `repeats` turns costs one length check.
 */
export function loopStep(
  from: Protocol,
  body: Record<string, unknown>,
  repeats: number,
  bytes?: Buffer,
): string | undefined {
  if (bytes !== undefined && !holdsAtLeast(bytes, LOOP_MARKERS[from], repeats)) return undefined;
  const conversation = CONVERSATIONS[from];
  const turns = conversation.turns(body);
  if (turns === undefined || turns.length < repeats) return undefined;
  const verdict = checkLoop(turns, conversation, repeats);
  if (verdict === undefined) return undefined;
  if (verdict.kind === 'refuse') throw new ProxyError(400, verdict.message, { code: 'tool_loop' });
  return verdict.text;
}
