import { ByteNeedle } from '../protocols/byte-needle.js';
import { isRecord } from '../protocols/shared.js';
import { OFFERED_TOOLS, type ToolJudge } from '../protocols/tool-call-guard.js';
import type { Protocol } from '../protocols/types.js';
import { projectRootsIn } from '../sessions/project-root.js';
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
  if (!offersShellTool(guard, ex, from, clientBody)) return undefined;
  let roots: readonly string[] | undefined;
  // The project roots the agent states in its prompt, read from the request's text only when a rule asks.
  const requestRoots = () =>
    (roots ??= projectRootsIn(ex.json !== undefined ? ex.json.text : JSON.stringify(clientBody)));
  return (name, args) => {
    const verdict = guard.judge(name, args, requestRoots);
    if (verdict !== undefined) {
      log.warn?.(
        { request_id: ex.id, key: ex.authKeyName, tool: name, action: verdict.kind },
        'Dangerous command in a tool call stopped by the guard',
      );
    }
    return verdict;
  };
}

/** Codex declares its tools in `additional_tools` input items (src/protocols/responses/tool-namespaces.ts). */
const ADDITIONAL_TOOLS = new ByteNeedle('"additional_tools"');

/**
 * Whether the request offers a tool that runs shell commands. On the bytes of `tools` (and, for a Responses
 * request, of `input` when it declares `additional_tools`) while the body is the client's own and unparsed:
 * a watched name there as a whole JSON string; else on the parsed body.
 */
function offersShellTool(
  guard: ShellGuard,
  ex: ChatExchange,
  from: Protocol,
  clientBody: Record<string, unknown>,
): boolean {
  const json = ex.json;
  const watchesParsed = () => guard.watches(OFFERED_TOOLS[from](clientBody));
  if (json === undefined) return watchesParsed();
  const tools = json.unparsedRange('tools');
  if (tools !== undefined && guard.namedIn(json.bytes, tools[0], tools[1])) return true;
  if (from === 'responses' && !json.lacks('input')) {
    const input = json.unparsedRange('input');
    if (input === undefined) {
      // Already parsed (a step read it): its items say.
      const items = clientBody.input;
      if (Array.isArray(items) && items.some((item) => isRecord(item) && item.type === 'additional_tools'))
        return watchesParsed();
    } else if (ADDITIONAL_TOOLS.in(json.bytes, input[0], input[1])) {
      return guard.namedIn(json.bytes, input[0], input[1]);
    }
  }
  // `tools` absent, or read on its bytes above: nothing more offered.
  if (json.lacks('tools') || tools !== undefined) return false;
  return watchesParsed();
}
