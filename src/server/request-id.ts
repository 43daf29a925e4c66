import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * A client's id is kept only if it is short and plain, as README.md states under the endpoint table: it ends
 * up in log lines and response headers, where a long, multi-line or escape-laden value could forge or bloat
 * them. Anything else gets a fresh UUID.
 */
const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdFor(req: IncomingMessage): string {
  const sent = req.headers['x-request-id'];
  return typeof sent === 'string' && SAFE_ID.test(sent) ? sent : randomUUID();
}
