import { OFFERED_TOOLS, type ToolJudge } from '../protocols/tool-call-guard.js';
import type { Protocol } from '../protocols/types.js';
import type { ShellGuard } from '../sessions/shell-guard.js';
import type { ChatExchange } from './exchange.js';

/**
 * The dangerous-command guard's judge for one request (README, "Agent guardrails"), or undefined when the
 * answer needs no look: the guard is off, or the request offers no tool that runs shell commands (read on
 * the bytes of `tools` when the body is the client's own, see `ShellGuard.namedIn`). The same
 * judge serves one attempt or every attempt of a route (attempts.ts); each stop is logged.
 */
export function shellJudge(
  guard: ShellGuard | null,
  ex: ChatExchange,
  from: Protocol,
  clientBody: Record<string, unknown>,
  log: { warn?(obj: object, msg: string): void },
): ToolJudge | undefined {
  if (guard === null) return undefined;
  const json = ex.json;
  // No `tools` member in the body as received: nothing offered, nothing read.
  if (json !== undefined && json.lacks('tools')) return undefined;
  // The `tools` member's bytes when nothing has parsed it (the chat lane's body, unchanged): not parsed here.
  const range = json?.unparsedRange('tools');
  const offered =
    range !== undefined && json !== undefined
      ? guard.namedIn(json.bytes, range[0], range[1])
      : guard.watches(OFFERED_TOOLS[from](clientBody));
  if (!offered) return undefined;
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
