import type { IncomingHttpHeaders } from 'node:http';

/**
 * Where each agent says which conversation a request belongs to (README, "Sessions"), in the order they are
 * believed: a header any client may send, Claude Code's and Codex's own headers, then fields of the body.
 * Without any, the session is the key's alone.
 */
const SESSION_HEADERS = ['x-session-id', 'x-claude-code-session-id', 'session-id'] as const;

/** Claude Code's `metadata.user_id` ends in `_session_<uuid>` (before 2.1), or is JSON with a `session_id`. */
const USER_ID_SESSION = /_session_([A-Za-z0-9-]{1,128})$/;

function jsonSessionId(userId: string): string | undefined {
  if (!userId.startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(userId) as unknown;
    return typeof parsed === 'object' && parsed !== null
      ? valid((parsed as Record<string, unknown>).session_id)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Printable ASCII without spaces, bounded: an id is used as part of a store key, never echoed raw. */
const SESSION_ID = /^[\x21-\x7e]{1,128}$/;

function valid(value: unknown): string | undefined {
  return typeof value === 'string' && SESSION_ID.test(value) ? value : undefined;
}

/** The client's session id for a request, or null when it names none. */
export function sessionIdOf(headers: IncomingHttpHeaders, body: Record<string, unknown>): string | null {
  for (const name of SESSION_HEADERS) {
    const id = valid(headers[name]);
    if (id !== undefined) return id;
  }
  const metadata = body.metadata;
  if (typeof metadata === 'object' && metadata !== null) {
    const userId = (metadata as Record<string, unknown>).user_id;
    if (typeof userId === 'string') {
      const match = USER_ID_SESSION.exec(userId);
      if (match) return match[1]!;
      const id = jsonSessionId(userId);
      if (id !== undefined) return id;
    }
  }
  return valid(body.prompt_cache_key) ?? null;
}

/**
 * The store key of a session: the authenticated key name and the client's id. Never the address: two keys
 * sending the same session id have two sessions.
 */
export function sessionKey(keyName: string | null, sessionId: string | null): string {
  return `${keyName ?? ''}\u0000${sessionId ?? ''}`;
}
