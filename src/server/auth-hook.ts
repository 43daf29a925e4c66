import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import {
  createAuthCheck,
  isRefusal,
  type AuthCheck,
  type AuthGateOptions,
  type AuthRefusal,
  type AuthVerdict,
} from '../auth/gate.js';
import { resolveClientAddress, type TrustedProxies } from '../auth/client-address.js';
import { renderRefusal } from './auth-answers.js';
import { isOperatorRoute, operatorRefusal, renderOperatorRefusal } from './operator-access.js';

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

/**
 * The Fastify `onRequest` hook around an AuthCheck. Refusals go through `reply` so later hooks (CORS,
 * security headers, request id) still apply. The operator endpoints (src/server/operator-access.ts) also need
 * the admin role: another valid key gets 403 there — it authenticated, so the brute-force guard counted no
 * failure.
 */
export function fastifyAuthHook(
  check: AuthCheck,
  onRefusal?: (request: FastifyRequest, reply: FastifyReply, refusal: AuthRefusal) => void,
): (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void {
  // When the gate refuses, Fastify must not go on: `done` is called only to continue.
  const apply = (
    request: FastifyRequest,
    reply: FastifyReply,
    done: (err?: Error) => void,
    verdict: AuthVerdict,
  ) => {
    if (isRefusal(verdict)) {
      onRefusal?.(request, reply, verdict);
      const answer = renderRefusal(verdict, request.url);
      reply.code(answer.status).headers(answer.headers).send(answer.body);
      return;
    }
    request.authKeyName = verdict?.keyName ?? null;
    if (verdict !== null && isOperatorRoute(request.routeOptions.url)) {
      const forbidden = operatorRefusal(verdict, check.hasAdminKey());
      if (forbidden !== null) {
        request.log.warn(
          {
            request_id: request.id,
            path: request.routeOptions.url,
            keyName: verdict.keyName,
            reason: forbidden.code,
          },
          'Operator endpoint refused: not an admin key',
        );
        reply.code(403).send(renderOperatorRefusal(forbidden, request.url));
        return;
      }
    }
    done();
  };
  return function authGate(request, reply, done) {
    let verdict: AuthVerdict | Promise<AuthVerdict>;
    try {
      verdict = check.decide(request);
    } catch (error) {
      done(error as Error);
      return;
    }
    if (verdict instanceof Promise) {
      verdict.then(
        (outcome) => apply(request, reply, done, outcome),
        (error: unknown) => done(error as Error),
      );
    } else {
      apply(request, reply, done, verdict);
    }
  };
}

/** The Fastify `onRequest` hook that authenticates every request (README, Authentication). */
export function createAuthGate(
  options: AuthGateOptions,
): (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void {
  return fastifyAuthHook(createAuthCheck(options));
}

const CLIENT_ADDRESS = Symbol('clientAddress');

/**
 * Makes Fastify's `request.ip` resolveClientAddress, worked out once per request, so that the chat lane
 * and Fastify's routes see one address for one request. Fastify's own `trustProxy` (proxy-addr) takes
 * X-Forwarded-For verbatim, with ports, brackets, any spelling, and never reads `Forwarded`: it must stay
 * off. Its default `ip` (the peer) is what resolveClientAddress gives without trusted proxies.
 */
export function installClientAddress<Logger extends FastifyBaseLogger>(
  app: FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, Logger>,
  trustProxy: TrustedProxies | false,
): void {
  // With Fastify's trustProxy on, this throws (FST_ERR_DEC_ALREADY_PRESENT) rather than run beside it.
  if (trustProxy === false) return;
  app.decorateRequest('ip', {
    getter(this: FastifyRequest & { [CLIENT_ADDRESS]?: string }): string {
      return (this[CLIENT_ADDRESS] ??= resolveClientAddress(this.raw, trustProxy));
    },
  });
}
