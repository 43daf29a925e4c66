import { ProxyError } from '../proxy-error.js';
import { CONVERSATIONS } from '../protocols/conversation.js';
import type { Protocol } from '../protocols/types.js';
import { checkLoop } from '../sessions/loop-guard.js';

/**
 * The loop guard's step (README, "Agent guardrails"): the steering text to answer with instead of calling
 * the backend, or undefined to go on; throws a 400 `tool_loop` when the loop went on after the steering.
 * A conversation shorter than `repeats` turns cannot hold a loop and costs one length check.
 */
export function loopStep(from: Protocol, body: Record<string, unknown>, repeats: number): string | undefined {
  const conversation = CONVERSATIONS[from];
  const turns = conversation.turns(body);
  if (turns === undefined || turns.length < repeats) return undefined;
  const verdict = checkLoop(turns, conversation, repeats);
  if (verdict === undefined) return undefined;
  if (verdict.kind === 'refuse') throw new ProxyError(400, verdict.message, { code: 'tool_loop' });
  return verdict.text;
}
