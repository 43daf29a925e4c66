import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * `Expect: 100-continue` answered only after authentication (docs/reliability.md, "Timeouts that protect
 * the proxy"). Node answers `100 Continue` itself, before any handler runs, unless the server listens for
 * `checkContinue`: then the request is handed over like any other and marked here, and the `100 Continue` goes out just
 * before its body is read — after the Host and authentication checks, so a client without a valid key is
 * never invited to send its body (and gets its 401, 421 or 429 on a connection Node then closes).
 */
const awaiting = new WeakSet<IncomingMessage>();

export function awaitContinue(req: IncomingMessage): void {
  awaiting.add(req);
}

/** Sends the `100 Continue` a request waits for, if it waits for one. */
export function continueIfAwaited(req: IncomingMessage, res: ServerResponse): void {
  if (awaiting.delete(req)) res.writeContinue();
}
