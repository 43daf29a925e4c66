import { TRUSTED_IP_GRANT } from '../auth/gate.js';
import type { KeyGrant } from '../auth/keys.js';
import { errorEnvelope } from '../protocols/error-envelopes.js';
import { protocolForPath } from '../pipeline/route-table.js';

/**
 * The operator endpoints (README, Admin keys): every `/admin/...` route, `/metrics` and `/internal/health`.
 * Judged by the route Fastify matched (its pattern), not by the raw path, so no spelling of a path
 * (`%2F`, dot segments) reaches one without being judged; a later `/admin/...` route is one automatically.
 */
export function isOperatorRoute(routeUrl: string | undefined): boolean {
  if (routeUrl === undefined) return false;
  return routeUrl.startsWith('/admin/') || OPERATOR_EXACT.has(routeUrl);
}

const OPERATOR_EXACT: ReadonlySet<string> = new Set(['/metrics', '/internal/health']);

/** Why a grant may not use an operator endpoint, as the 403 says it; null when it may. */
export interface OperatorRefusal {
  readonly code: 'admin_key_not_configured' | 'admin_key_required';
  readonly message: string;
}

const HOW_TO_ADMIN =
  'LLM_INTERACTIVE_PROXY_ADMIN_KEY, or role: admin on a key in auth.api_keys or role=admin in the keys file';

const NOT_CONFIGURED: OperatorRefusal = Object.freeze({
  code: 'admin_key_not_configured',
  message:
    'The operator endpoints need an admin key and none is configured: set LLM_INTERACTIVE_PROXY_ADMIN_KEY ' +
    '(or give a key role: admin in auth.api_keys or role=admin in the keys file), reload or restart, and send it.',
});

const NOT_ADMIN: OperatorRefusal = Object.freeze({
  code: 'admin_key_required',
  message:
    'This operator endpoint needs an admin key, and this request was not made with one: the key is valid for ' +
    `proxy traffic only. Send an admin key (${HOW_TO_ADMIN}).`,
});

/** A trusted address (`--trusted-ip`) that sent no admin key: let in as a client, it had no key to blame. */
const TRUSTED_IP_NOT_ADMIN: OperatorRefusal = Object.freeze({
  code: 'admin_key_required',
  message:
    'This operator endpoint needs an admin key, and this request sent none: a trusted address (--trusted-ip) ' +
    `skips authentication, not the admin check. Send an admin key (${HOW_TO_ADMIN}).`,
});

/**
 * Whether a request authenticated as `grant` may use an operator endpoint: only with the admin role. Without
 * any admin key configured the answer says how to configure one, whoever asks.
 */
export function operatorRefusal(grant: KeyGrant, adminKeyConfigured: boolean): OperatorRefusal | null {
  if (!adminKeyConfigured) return NOT_CONFIGURED;
  if (grant.role === 'admin') return null;
  return grant === TRUSTED_IP_GRANT ? TRUSTED_IP_NOT_ADMIN : NOT_ADMIN;
}

/** The 403 in the envelope of the path's protocol (the operator endpoints speak OpenAI's). */
export function renderOperatorRefusal(refusal: OperatorRefusal, url: string): Record<string, unknown> {
  return errorEnvelope(protocolForPath(url), { status: 403, code: refusal.code, message: refusal.message });
}
