import { OFFERED_TOOLS, type ToolJudge } from '../protocols/tool-call-guard.js';
import type { Protocol } from '../protocols/types.js';
import type { ShellGuard } from '../sessions/shell-guard.js';
import type { ChatExchange } from './exchange.js';

/**
 * The dangerous-command guard's judge for one request (README, "Agent guardrails"), or undefined when the
 * answer needs no look: the guard is off, or the request offers no tool that runs shell commands. The same
 * judge serves one attempt or every attempt of a route (attempts.ts); each stop is logged.
 */
export function shellJudge(
  guard: ShellGuard | null,
  ex: ChatExchange,
  from: Protocol,
  clientBody: Record<string, unknown>,
  log: { warn?(obj: object, msg: string): void },
): ToolJudge | undefined {
  if (guard === null || !guard.watches(OFFERED_TOOLS[from](clientBody))) return undefined;
  return (name, args) => {
    const verdict = guard.judge(name, args);
    if (verdict !== undefined) {
      log.warn?.(
        { request_id: ex.id, key: ex.authKeyName, tool: name, action: verdict.kind },
        'Dangerous command in a tool call stopped by the guard',
      );
    }
    return verdict;
  };
}
