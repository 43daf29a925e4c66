import type { IncomingHttpHeaders } from 'node:http';
import type { AttemptResult, BruteForceGuard, LocalGuard } from './brute-force.js';
import type { FailureOutcome } from './stores/types.js';
import { isCorsPreflight, type BypassMatcher } from './bypass.js';
import { clientKeyFor, type CidrMatcher } from './client-address.js';
import { extractCredential, type PresentedCredential } from './credentials.js';
import { failureMessage, failureObject, formatFailureLine, type FailureFields } from './failure-line.js';
import type { KeyGrant, KeySet } from './keys.js';
import { TRUSTED_IP_KEY_NAME } from '../config/key-attributes.js';
import { redactedExcerpt, type Redact } from '../redaction/excerpt.js';

/**
 * What metrics and logs call a refused attempt (README, Logs: `auth failures by reason`). `expired` is a
 * valid key past its `expires_at`: refused, but not a guess, so never counted by the brute-force guard.
 */
export type AuthFailureReason = 'missing' | 'invalid' | 'expired';

export interface AuthLogger {
  warn(obj: object, msg: string): void;
  error?(obj: object, msg: string): void;
  /**
   * Writes a finished warn-level line (redacted by the writer), for the one warning per failed attempt
   * (formatFailureLine); absent: that warning goes through `warn`.
   */
  warnLine?(line: string): void;
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
   * Whether a browser's `Origin` may call the proxy (the CORS setting); key-less requests from other origins
   * are not counted as failures. Defaults to every origin.
   */
  isAllowedOrigin?: (origin: string) => boolean;
  /**
   * How long a blocked client's 429 is held before it is sent (a tarpit); 0 (the default here) sends it at
   * once. At most MAX_HELD_REFUSALS wait at a time; beyond that they are sent at once (memory bound).
   */
  blockedDelayMs?: number;
  /**
   * A key configured by its digest was presented (`grant.hashed`): the proxy now knows it, and redacts it
   * like a plaintext key from then on (KeyReloader.learn). Called on every such request, synchronously.
   */
  onHashedKey?: (grant: KeyGrant, key: string) => void;
  /** The current redactor's: for the request path the warnings quote cut short (see pathOf). */
  redact: Redact;
}

const MAX_HELD_REFUSALS = 10_000;

const EXPIRED: AuthRefusal = Object.freeze({ status: 401, kind: 'expired' });

/**
 * What a trusted address (`--trusted-ip`) is granted when it sends no valid key: the proxy, as a client. It
 * skips authentication, not the admin check (README, Admin keys): with an admin key it is an admin.
 */
export const TRUSTED_IP_GRANT: KeyGrant = Object.freeze({
  keyName: TRUSTED_IP_KEY_NAME,
  role: 'client',
  expiresAtMs: null,
  hashed: false,
});

const STORE_ERROR_LOG_INTERVAL_MS = 60_000;
const MAX_LOGGED_PATH_LENGTH = 256;

/**
 * Why a request was refused 401: no credential, one that cannot be a key (wrong scheme, empty, repeated),
 * a key that is not configured, or a configured key past its expiry. The server words the answer
 * (src/server/auth-answers.ts).
 */
export type FailureKind = 'missing' | 'malformed' | 'invalid' | 'expired';

/** What metrics and logs call each kind: a malformed credential counts as `invalid`. */
const REASONS: Record<FailureKind, AuthFailureReason> = {
  missing: 'missing',
  malformed: 'invalid',
  invalid: 'invalid',
  expired: 'expired',
};

function failureKind(credential: PresentedCredential | null): Exclude<FailureKind, 'expired'> {
  if (credential === null) return 'missing';
  return credential.value === null ? 'malformed' : 'invalid';
}

/**
 * The path as the warnings quote it. A path cut short is redacted first, as a whole: a secret cut in two is
 * no longer recognised by the log's writer, and its start would show. One that fits is left to the writer,
 * which redacts every line: no second pass on the path of every failed attempt (an attack's hot path).
 */
function pathOf(url: string, redact: Redact): string {
  const queryStart = url.indexOf('?');
  const path = queryStart < 0 ? url : url.slice(0, queryStart);
  return path.length > MAX_LOGGED_PATH_LENGTH ? redactedExcerpt(path, MAX_LOGGED_PATH_LENGTH, redact) : path;
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

/**
 * A refused request, in auth's terms only: the server renders it in the protocol of the path, with the
 * challenge and message (src/server/auth-answers.ts).
 */
export type AuthRefusal =
  | { readonly status: 401; readonly kind: FailureKind }
  | { readonly status: 429; readonly retryAfterSeconds: number };

/**
 * A verdict: what the key that authenticated the request grants (its name and role; `trusted-ip` for a
 * trusted address without a key), null for a request that needs none (pre-flight, bypass list), or the
 * refusal to answer with. Whether the role may use the route is the server's to decide.
 */
export type AuthVerdict = KeyGrant | null | AuthRefusal;

export function isRefusal(verdict: AuthVerdict): verdict is AuthRefusal {
  return verdict !== null && 'status' in verdict;
}

/** The gate's logic, apart from any HTTP framework: used by the Fastify hook and by the chat lane. */
export interface AuthCheck {
  /**
   * The full check (README, Authentication). Synchronous whenever it can be — a request that needs no key, no guard,
   * or a guard whose records live in this process — so a valid request costs no microtask; a Promise for a
   * shared store (one atomic round trip) and for a held 429. Either way the check of an address and the
   * record of its attempt are one atomic step: the k-th failure is recorded before the (k+1)-th request
   * from that address is judged, however the requests arrive (pipelined, parallel, over several replicas).
   */
  decide(subject: AuthSubject): AuthVerdict | Promise<AuthVerdict>;
  /** Whether any key in use now has the admin role (README, Admin keys); follows key reloads. */
  hasAdminKey(): boolean;
}

/**
 * Authenticates requests (README, Authentication). Order: CORS pre-flight, bypass list, trusted IPs, block check (a
 * blocked client gets 429 and its key is not looked at; with a shared store the key is verified first, in
 * constant time, so that check and record are one round trip — the answer is the same 429), then the key.
 */
export function createAuthCheck(options: AuthGateOptions): AuthCheck {
  const { getKeys, guard, bypass, trustedIps, log, redact, events = {} } = options;
  const isAllowedOrigin = options.isAllowedOrigin ?? (() => true);
  const now = options.now ?? Date.now;
  let lastStoreErrorLogMs = -Infinity;

  // A blocked attacker answered at once comes straight back: at full speed its refusals take the CPU that
  // valid clients need (docs/performance.md, the attack scenario). Held on a timer, each of its connections costs almost nothing.
  const blockedDelayMs = options.blockedDelayMs ?? 0;
  let held = 0;
  const refuseBlocked = (retryAfterSeconds: number): AuthVerdict | Promise<AuthVerdict> => {
    events.onRefused?.();
    const refusal: AuthRefusal = { status: 429, retryAfterSeconds };
    if (blockedDelayMs <= 0 || held >= MAX_HELD_REFUSALS) return refusal;
    held++;
    return new Promise<AuthVerdict>((resolve) => {
      setTimeout(() => {
        held--;
        resolve(refusal);
      }, blockedDelayMs).unref();
    });
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

  const presentedGrant = ({ url, headers, raw }: AuthSubject) => {
    const queryStart = url.indexOf('?');
    const query = queryStart < 0 ? '' : url.slice(queryStart + 1);
    const credential = extractCredential(headers, query, raw.rawHeaders);
    const grant = credential !== null && credential.value !== null ? getKeys().grant(credential.value) : null;
    if (grant?.hashed === true) options.onHashedKey?.(grant, credential!.value!);
    return { credential, grant };
  };

  /** A key past its `expires_at`; a key without one costs no clock read. */
  const isExpired = (grant: KeyGrant): boolean => grant.expiresAtMs !== null && grant.expiresAtMs <= now();

  /**
   * Requests let in without a key: pre-flights and the bypass list (null), trusted addresses (their own valid
   * key's grant when they send one, so an admin key works from there too); else undefined.
   */
  const exempt = (subject: AuthSubject): KeyGrant | null | undefined => {
    const { method, url, headers, ip } = subject;
    if (isCorsPreflight(method, headers) || bypass.matches(method, url)) return null;
    if (!trustedIps.contains(ip)) return undefined;
    const { grant } = presentedGrant(subject);
    return grant !== null && !isExpired(grant) ? succeed(grant) : TRUSTED_IP_GRANT;
  };

  /**
   * A valid key past its expiry: refused 401, logged, counted under its own reason — and never recorded by
   * the brute-force guard, as neither a failure (it is no guess) nor a success (which would clear the
   * address's failures between guesses).
   */
  const expired = (subject: AuthSubject, grant: KeyGrant): AuthRefusal => {
    log.warn(
      {
        method: subject.method,
        path: pathOf(subject.url, redact),
        clientAddress: subject.ip,
        reason: 'expired',
        keyName: grant.keyName,
      },
      `Authentication refused: API key "${grant.keyName}" has expired`,
    );
    events.onFailure?.('expired');
    return EXPIRED;
  };

  /**
   * A key-less request that a browser made for another site's page (an `<img>` or a form pointed at the
   * proxy): answered 401 but not counted, or any web page could get a local user's address blocked.
   */
  const isCrossSiteWithoutKey = (credential: PresentedCredential | null, headers: IncomingHttpHeaders) => {
    if (credential !== null) return false;
    if (headers['sec-fetch-site'] === 'cross-site') return true;
    const origin = headers.origin;
    return origin !== undefined && !isAllowedOrigin(origin);
  };

  const logFailure = (subject: AuthSubject, credential: PresentedCredential | null, counted: boolean) => {
    const kind = failureKind(credential);
    const reason = REASONS[kind];
    const fields: FailureFields = {
      method: subject.method,
      path: pathOf(subject.url, redact),
      clientAddress: subject.ip,
      reason,
      credentialSource: credential?.source ?? null,
      counted,
    };
    if (log.warnLine !== undefined) log.warnLine(formatFailureLine(fields, Date.now()));
    else log.warn(failureObject(fields), failureMessage(reason));
    events.onFailure?.(reason);
    return kind;
  };

  const logBlock = (subject: AuthSubject, outcome: FailureOutcome) => {
    if (outcome.blockedForSeconds === undefined) return;
    const clientKey = clientKeyFor(subject.ip);
    log.warn(
      {
        method: subject.method,
        path: pathOf(subject.url, redact),
        clientAddress: subject.ip,
        clientKey,
        blockSeconds: outcome.blockedForSeconds,
      },
      `Blocked IP ${clientKey} for ${outcome.blockedForSeconds}s after ${outcome.failures} failed authentication attempts`,
    );
    events.onBlock?.();
  };

  const unauthorized = (kind: FailureKind): AuthRefusal => ({ status: 401, kind });

  const succeed = (grant: KeyGrant): KeyGrant => {
    events.onSuccess?.(grant.keyName);
    return grant;
  };

  /** The memory store's path: check, verify and record with no await between them. */
  const decideLocally = (subject: AuthSubject, local: LocalGuard): AuthVerdict | Promise<AuthVerdict> => {
    const { headers, ip } = subject;
    const state = local.check(ip);
    if (state.blocked) return refuseBlocked(state.retryAfterSeconds);
    const { credential, grant } = presentedGrant(subject);
    if (grant !== null) {
      if (isExpired(grant)) return expired(subject, grant);
      if (state.tracked) local.attempt(ip, true);
      return succeed(grant);
    }
    if (isCrossSiteWithoutKey(credential, headers))
      return unauthorized(logFailure(subject, credential, false));
    const kind = logFailure(subject, credential, true);
    const result = local.attempt(ip, false);
    // Only a failure during a block is refused here; check() just said there is none, and nothing ran since.
    if (result.blocked) return refuseBlocked(result.retryAfterSeconds);
    logBlock(subject, result);
    return unauthorized(kind);
  };

  /** A shared store's path: the key verified first, then one atomic check-and-record round trip. */
  const decideShared = async (subject: AuthSubject, guard: BruteForceGuard): Promise<AuthVerdict> => {
    const { headers, ip } = subject;
    const { credential, grant } = presentedGrant(subject);
    if (grant === null && isCrossSiteWithoutKey(credential, headers)) {
      return unauthorized(logFailure(subject, credential, false));
    }
    if (grant !== null && isExpired(grant)) return decideExpiredShared(subject, guard, grant);
    let result: AttemptResult | null = null;
    try {
      result = await guard.attempt(ip, grant !== null);
    } catch (error) {
      reportStoreError(error);
    }
    if (result?.blocked) return refuseBlocked(result.retryAfterSeconds);
    if (grant !== null) return succeed(grant);
    const kind = logFailure(subject, credential, true);
    if (result !== null) logBlock(subject, result);
    return unauthorized(kind);
  };

  /** An expired key on a shared store: a blocked address still gets its 429; nothing is recorded. */
  const decideExpiredShared = async (
    subject: AuthSubject,
    guard: BruteForceGuard,
    grant: KeyGrant,
  ): Promise<AuthVerdict> => {
    try {
      const state = await guard.check(subject.ip);
      if (state.blocked) return refuseBlocked(state.retryAfterSeconds);
    } catch (error) {
      reportStoreError(error);
    }
    return expired(subject, grant);
  };

  const decide = (subject: AuthSubject): AuthVerdict | Promise<AuthVerdict> => {
    const exemption = exempt(subject);
    if (exemption !== undefined) return exemption;
    if (guard !== null) {
      return guard.local !== null ? decideLocally(subject, guard.local) : decideShared(subject, guard);
    }
    const { credential, grant } = presentedGrant(subject);
    if (grant !== null) return isExpired(grant) ? expired(subject, grant) : succeed(grant);
    return unauthorized(logFailure(subject, credential, true));
  };

  return { decide, hasAdminKey: () => getKeys().hasAdmin };
}
