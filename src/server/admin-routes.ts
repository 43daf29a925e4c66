import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import { errorEnvelope } from '../protocols/error-envelopes.js';
import type { BruteForceGuard, TrackedClient } from '../auth/brute-force.js';
import { normalizeClientKey } from '../auth/client-address.js';
import type { KeyReloader } from '../auth/key-reloader.js';

export interface AuthAdminRoutesOptions {
  /** Null when brute-force protection is disabled. */
  guard: BruteForceGuard | null;
  /** Called with an unblocked address, so the server stops closing its reconnects too. */
  onUnblocked?: (clientKey: string) => void;
}

const DEFAULT_LIST_LIMIT = 1000;
const MAX_LIST_LIMIT = 100_000;

function toJson(client: TrackedClient): Record<string, unknown> {
  return {
    address: client.address,
    failures: client.failures,
    blocked: client.blocked,
    seconds_left: client.blockSecondsLeft,
    seconds_since_last_failure: client.secondsSinceLastFailure,
  };
}

function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send(errorEnvelope('openai', { status, code, message }));
}

function parseLimit(text: unknown): number | null {
  if (text === undefined) return DEFAULT_LIST_LIMIT;
  if (typeof text !== 'string' || !/^\d{1,6}$/.test(text)) return null;
  const limit = Number(text);
  return limit >= 1 && limit <= MAX_LIST_LIMIT ? limit : null;
}

/**
 * Operator endpoints for brute-force protection (README, Authentication). They sit behind the auth gate like every
 * other route, and need an admin key (README, Admin keys: the gate's hook checks every `/admin/` route).
 *
 * - `GET /admin/auth/blocks[?limit=N]`: tracked and blocked clients (the `limit` newest of each, default
 *   1000) with failure counts and seconds left.
 * - `DELETE /admin/auth/blocks/{address}`: forgets a client now — an IPv4 or IPv6 address, or the `/64`
 *   key shown by the listing (URL-encoded or not).
 */
export function registerAuthAdminRoutes<Logger extends FastifyBaseLogger>(
  app: FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, Logger>,
  options: AuthAdminRoutesOptions,
): void {
  const { guard } = options;

  app.get('/admin/auth/blocks', async (request, reply) => {
    const limit = parseLimit((request.query as Record<string, unknown> | undefined)?.limit);
    if (limit === null) {
      return sendError(reply, 400, 'invalid_request', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
    }
    if (guard === null) return { enabled: false, tracked: 0, blocked_count: 0, blocked: [], clients: [] };

    const clients = await guard.list();
    const blocked = clients.filter((client) => client.blocked);
    blocked.sort((a, b) => b.blockSecondsLeft - a.blockSecondsLeft);
    clients.sort((a, b) => a.secondsSinceLastFailure - b.secondsSinceLastFailure);
    const { policy } = guard;
    return {
      enabled: true,
      tracked: clients.length,
      blocked_count: blocked.length,
      truncated: clients.length > limit,
      policy: {
        max_failed_attempts: policy.maxFailedAttempts,
        ttl_seconds: policy.ttlSeconds,
        initial_block_seconds: policy.initialBlockSeconds,
        block_multiplier: policy.blockMultiplier,
        max_block_seconds: policy.maxBlockSeconds,
        max_tracked_clients: policy.maxTrackedClients,
      },
      blocked: blocked.slice(0, limit).map(toJson),
      clients: clients.slice(0, limit).map(toJson),
    };
  });

  // A wildcard, so an unencoded `/64` key (`2001:db8::/64`) reaches the handler too.
  app.delete('/admin/auth/blocks/*', async (request, reply) => {
    const address = (request.params as Record<string, string | undefined>)['*'] ?? '';
    const clientKey = normalizeClientKey(address);
    if (clientKey === null) {
      return sendError(
        reply,
        400,
        'invalid_request',
        'Expected an IPv4 or IPv6 address or an IPv6 /64 prefix, e.g. 192.0.2.7 or 2001:db8:1:2::/64',
      );
    }
    if (guard === null) {
      return sendError(reply, 404, 'not_found', 'Brute-force protection is disabled; no address is blocked');
    }
    if (!(await guard.unblock(clientKey))) {
      return sendError(reply, 404, 'not_found', `Address ${clientKey} is not tracked`);
    }
    options.onUnblocked?.(clientKey);
    request.log.info(
      { request_id: request.id, clientKey, keyName: request.authKeyName },
      `Unblocked ${clientKey} by operator request`,
    );
    return { unblocked: true, address: clientKey };
  });
}

/**
 * `POST /admin/reload` (behind the auth gate, with an admin key, like every admin route): re-reads the keys
 * and the teams policies now. Answers
 * `{reloaded: true, keys: <count>}`, or 500 with the error (file and line, never a key) while the old keys
 * stay in use.
 */
export function registerKeyReloadRoute<Logger extends FastifyBaseLogger>(
  app: FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, Logger>,
  reloader: KeyReloader | null,
): void {
  app.post('/admin/reload', async (request, reply) => {
    if (reloader === null) {
      return reply.code(400).send(
        errorEnvelope('openai', {
          status: 400,
          code: 'auth_disabled',
          message: 'Authentication is disabled: there are no proxy keys to reload',
        }),
      );
    }
    request.log.info({ request_id: request.id, keyName: request.authKeyName }, 'Proxy key reload requested');
    const result = reloader.reload('POST /admin/reload');
    if (result.ok) return { reloaded: true, keys: result.keys };
    return reply.code(500).send(
      errorEnvelope('openai', {
        status: 500,
        code: 'reload_failed',
        message: `Proxy keys not reloaded; the previous keys stay in use. ${result.error}`,
      }),
    );
  });
}
