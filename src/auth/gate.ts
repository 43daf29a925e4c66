import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RawServerDefault,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
} from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { errorEnvelope } from '../protocols/errors.js';
import { protocolForPath, type Protocol } from '../protocols/types.js';
import type { BruteForceGuard } from './brute-force.js';
import { isCorsPreflight, type BypassMatcher } from './bypass.js';
import type { CidrMatcher } from './client-address.js';
import { extractCredential, type PresentedCredential } from './credentials.js';
import type { KeySet } from './keys.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The name of the proxy key that authenticated the request (never the key), `trusted-ip` for a
     * trusted address, null for public endpoints and when authentication is disabled.
     */
    authKeyName: string | null;
  }
}

/** Declares `request.authKeyName`; call once on the root instance before adding the gate. */
export function registerAuthDecorations<Logger extends FastifyBaseLogger>(
  app: FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, Logger>,
): void {
  if (!app.hasRequestDecorator('authKeyName')) app.decorateRequest('authKeyName', null);
}

/** What metrics and logs call a failed attempt (SPEC §2.6 `auth failures by reason`). */
export type AuthFailureReason = 'missing' | 'invalid';

export interface AuthLogger {
  warn(obj: object, msg: string): void;
  error?(obj: object, msg: string): void;
}

export interface AuthEvents {
  onFailure?(reason: AuthFailureReason): void;
  /** A failure started a block. */
  onBlock?(): void;
  /** A request was refused with 429 because its address is blocked. */
  onRefused?(): void;
  onSuccess?(keyName: string): void;
}

export interface AuthGateOptions {
  /** Read on every request, since keys rotate without a restart. */
  getKeys: () => KeySet;
  /** Null when brute-force protection is disabled. */
  guard: BruteForceGuard | null;
  bypass: BypassMatcher;
  trustedIps: CidrMatcher;
  log: AuthLogger;
  events?: AuthEvents;
  /** Clock for throttling store-error logs; defaults to Date.now. */
  now?: () => number;
  /**
   * How long a blocked client's 429 is held before it is sent (a tarpit); 0 (the default here) sends it at
   * once. At most MAX_HELD_REFUSALS wait at a time; beyond that they are sent at once (memory bound).
   */
  blockedDelayMs?: number;
}

const MAX_HELD_REFUSALS = 10_000;

export const TRUSTED_IP_KEY_NAME = 'trusted-ip';

const REALM = 'Bearer realm="llm-interactive-proxy"';
const STORE_ERROR_LOG_INTERVAL_MS = 60_000;
const MAX_LOGGED_PATH_LENGTH = 256;

/** Why a request failed: a malformed credential (wrong scheme, empty, repeated) counts as `invalid`. */
type FailureKind = 'missing' | 'malformed' | 'invalid';

const FAILURES: Record<FailureKind, { reason: AuthFailureReason; challenge: string; lead: string }> = {
  missing: { reason: 'missing', challenge: REALM, lead: 'Missing API key.' },
  malformed: {
    reason: 'invalid',
    challenge: `${REALM}, error="invalid_request"`,
    lead: 'Malformed API key credentials (empty, repeated, or not a Bearer token).',
  },
  invalid: {
    reason: 'invalid',
    challenge: `${REALM}, error="invalid_token"`,
    lead: 'Invalid API key: use the proxy API key, not a provider key.',
  },
};

/** Which header to send, in the words of each protocol's SDK. */
const HEADER_HINTS: Record<Protocol, string> = {
  openai: 'Send it as "Authorization: Bearer <key>" (or in the x-api-key or x-goog-api-key header).',
  anthropic: 'Send it in the "x-api-key: <key>" header (or as "Authorization: Bearer <key>").',
  gemini: 'Send it in the "x-goog-api-key: <key>" header (or as "Authorization: Bearer <key>").',
};

/**
 * A fresh body per answer (failures are not the hot path), so a later hook that decorates error bodies,
 * e.g. with a request id, cannot leak into other responses.
 */
function unauthorizedBody(url: string, kind: FailureKind): Record<string, unknown> {
  const protocol = protocolForPath(url);
  const message = `${FAILURES[kind].lead} ${HEADER_HINTS[protocol]}`;
  return errorEnvelope(protocol, { status: 401, code: 'invalid_api_key', message });
}

export const BLOCKED_MESSAGE = 'Too many failed authentication attempts. Please try again later.';

function failureKind(credential: PresentedCredential | null): FailureKind {
  if (credential === null) return 'missing';
  return credential.value === null ? 'malformed' : 'invalid';
}

function pathOf(url: string): string {
  const queryStart = url.indexOf('?');
  const path = queryStart < 0 ? url : url.slice(0, queryStart);
  return path.length > MAX_LOGGED_PATH_LENGTH ? `${path.slice(0, MAX_LOGGED_PATH_LENGTH)}…` : path;
}

/** What a request must show the gate: FastifyRequest has it, and so has the chat lane's own request. */
export interface AuthSubject {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The request as received: its rawHeaders show a credential header sent twice, which `headers` hides. */
  readonly raw: { readonly rawHeaders: readonly string[] };
  /** The client address (after trusted-proxy resolution). */
  readonly ip: string;
}

/** A refused request: the answer to send, in the protocol of the path. */
export interface AuthRefusal {
  status: 401 | 429;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/**
 * A verdict: the name of the key that authenticated the request (or `trusted-ip`), null for a request that
 * needs none (pre-flight, bypass list), or the refusal to answer with.
 */
export type AuthVerdict = string | null | AuthRefusal;

export function isRefusal(verdict: AuthVerdict): verdict is AuthRefusal {
  return typeof verdict === 'object' && verdict !== null;
}

/** The gate's logic, apart from any HTTP framework: used by the Fastify hook and by the chat lane. */
export interface AuthCheck {
  /**
   * The hot path, synchronous: the verdict for a valid key from an untracked address on a memory store (or
   * with no guard), or for a public request; undefined when `decide` must run (blocked or tracked addresses,
   * failures, a shared store).
   */
  passFast(subject: AuthSubject): string | null | undefined;
  /** The full check (SPEC §2.3–2.5), with the brute-force store. */
  decide(subject: AuthSubject): Promise<AuthVerdict>;
}

/**
 * Authenticates requests (SPEC §2.3–2.5). Order: CORS pre-flight, bypass list, trusted IPs, block check (a
 * blocked client gets 429 before its key is looked at), then the key.
 */
export function createAuthCheck(options: AuthGateOptions): AuthCheck {
  const { getKeys, guard, bypass, trustedIps, log, events = {} } = options;
  const now = options.now ?? Date.now;
  let lastStoreErrorLogMs = -Infinity;

  // A blocked attacker answered at once comes straight back: at full speed its refusals take the CPU that
  // valid clients need (SPEC §7, under attack). Held on a timer, each of its connections costs almost nothing.
  const blockedDelayMs = options.blockedDelayMs ?? 0;
  let held = 0;
  const holdBlocked = async (): Promise<void> => {
    if (blockedDelayMs <= 0 || held >= MAX_HELD_REFUSALS) return;
    held++;
    await new Promise<void>((resolve) => setTimeout(resolve, blockedDelayMs).unref());
    held--;
  };

  // A broken shared store must not lock everyone out or let everyone in: the key check still runs.
  const reportStoreError = (error: unknown): void => {
    const at = now();
    if (at - lastStoreErrorLogMs < STORE_ERROR_LOG_INTERVAL_MS) return;
    lastStoreErrorLogMs = at;
    const message = error instanceof Error ? error.message : String(error);
    (log.error ?? log.warn).call(
      log,
      { err: message },
      'Brute-force store failed; authenticating without it',
    );
  };

  const presentedKeyName = ({ url, headers, raw }: AuthSubject) => {
    const queryStart = url.indexOf('?');
    const query = queryStart < 0 ? '' : url.slice(queryStart + 1);
    const credential = extractCredential(headers, query, raw.rawHeaders);
    const keyName =
      credential !== null && credential.value !== null ? getKeys().verify(credential.value) : null;
    return { credential, keyName };
  };

  /** Requests let in without a key: pre-flights and the bypass list (null), trusted addresses; else undefined. */
  const exempt = ({ method, url, headers, ip }: AuthSubject): string | null | undefined => {
    if (isCorsPreflight(method, headers) || bypass.matches(method, url)) return null;
    return trustedIps.contains(ip) ? TRUSTED_IP_KEY_NAME : undefined;
  };

  const passFast = (subject: AuthSubject): string | null | undefined => {
    const exemption = exempt(subject);
    if (exemption !== undefined) return exemption;
    const { ip } = subject;
    if (guard !== null) {
      const state = guard.checkSync(ip);
      if (state === undefined || state.blocked || state.tracked) return undefined;
    }
    const { keyName } = presentedKeyName(subject);
    if (keyName === null) return undefined;
    events.onSuccess?.(keyName);
    return keyName;
  };

  const decide = async (subject: AuthSubject): Promise<AuthVerdict> => {
    const exemption = exempt(subject);
    if (exemption !== undefined) return exemption;
    const { method, url, ip } = subject;

    let tracked = false;
    if (guard !== null) {
      try {
        const state = await guard.check(ip);
        if (state.blocked) {
          events.onRefused?.();
          await holdBlocked();
          return blockedRefusal(url, state.retryAfterSeconds);
        }
        tracked = state.tracked;
      } catch (error) {
        reportStoreError(error);
      }
    }

    const { credential, keyName } = presentedKeyName(subject);
    if (keyName !== null) {
      if (tracked && guard !== null) await guard.recordSuccess(ip).catch(reportStoreError);
      events.onSuccess?.(keyName);
      return keyName;
    }

    const kind = failureKind(credential);
    const failure = FAILURES[kind];
    const path = pathOf(url);
    log.warn(
      {
        method,
        path,
        clientAddress: ip,
        reason: failure.reason,
        credentialSource: credential?.source ?? null,
      },
      `Authentication failed (${failure.reason} API key)`,
    );
    events.onFailure?.(failure.reason);

    if (guard !== null) {
      try {
        const outcome = await guard.recordFailure(ip);
        if (outcome.blockedForSeconds !== undefined) {
          log.warn(
            {
              method,
              path,
              clientAddress: ip,
              clientKey: outcome.clientKey,
              blockSeconds: outcome.blockedForSeconds,
            },
            `Blocked IP ${outcome.clientKey} for ${outcome.blockedForSeconds}s after ${outcome.failures} failed authentication attempts`,
          );
          events.onBlock?.();
        }
      } catch (error) {
        reportStoreError(error);
      }
    }

    return {
      status: 401,
      headers: { 'www-authenticate': failure.challenge },
      body: unauthorizedBody(url, kind),
    };
  };

  return { passFast, decide };
}

/**
 * The Fastify `onRequest` hook around an AuthCheck. Refusals go through `reply` so later hooks (CORS,
 * security headers, request id) still apply.
 */
export function fastifyAuthHook(
  check: AuthCheck,
): (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void {
  return function authGate(request, reply, done) {
    let verdict: string | null | undefined;
    try {
      verdict = check.passFast(request);
    } catch (error) {
      done(error as Error);
      return;
    }
    if (verdict !== undefined) {
      request.authKeyName = verdict;
      done();
      return;
    }
    // When the gate refuses, Fastify must not go on: `done` is called only to continue.
    check.decide(request).then(
      (outcome) => {
        if (isRefusal(outcome)) {
          reply.code(outcome.status).headers(outcome.headers).send(outcome.body);
          return;
        }
        request.authKeyName = outcome;
        done();
      },
      (error: unknown) => done(error as Error),
    );
  };
}

/** The Fastify `onRequest` hook that authenticates every request (SPEC §2.3–2.5). */
export function createAuthGate(
  options: AuthGateOptions,
): (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void {
  return fastifyAuthHook(createAuthCheck(options));
}

function blockedRefusal(url: string, retryAfterSeconds: number): AuthRefusal {
  const body = errorEnvelope(protocolForPath(url), {
    status: 429,
    code: 'rate_limit_exceeded',
    message: BLOCKED_MESSAGE,
    retryAfter: retryAfterSeconds,
  });
  return { status: 429, headers: { 'retry-after': String(retryAfterSeconds) }, body };
}
