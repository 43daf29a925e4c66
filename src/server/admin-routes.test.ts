import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { registerAuthAdminRoutes } from './admin-routes.js';
import { BruteForceGuard } from '../auth/brute-force.js';
import { BypassMatcher, DEFAULT_BYPASS_PATHS } from '../auth/bypass.js';
import { CidrMatcher } from '../auth/client-address.js';
import { KeySet } from '../auth/keys.js';
import { createAuthGate, registerAuthDecorations } from './auth-hook.js';

const KEY = 'operator-key-0123456789';
const CLIENT_KEY = 'client-key-0123456789';
const OPERATOR = '192.0.2.1';
const auth = { authorization: `Bearer ${KEY}` };

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

function build(withGuard = true, adminRole: 'admin' | 'client' = 'admin') {
  const clock = { ms: 1_700_000_000_000 };
  const unblocked: string[] = [];
  const guard = withGuard ? new BruteForceGuard({ now: () => clock.ms }) : null;
  const app = Fastify();
  apps.push(app);
  registerAuthDecorations(app);
  app.addHook(
    'onRequest',
    createAuthGate({
      getKeys: () =>
        new KeySet([
          { name: 'ops', key: KEY, role: adminRole },
          { name: 'dev', key: CLIENT_KEY },
        ]),
      guard,
      bypass: new BypassMatcher(DEFAULT_BYPASS_PATHS),
      trustedIps: new CidrMatcher([]),
      log: { warn: () => undefined },
      redact: (text) => text,
    }),
  );
  registerAuthAdminRoutes(app, { guard, onUnblocked: (clientKey) => unblocked.push(clientKey) });
  app.get('/v1/models', async () => ({ data: [] }));
  const failFrom = async (ip: string, times: number) => {
    for (let i = 0; i < times; i++) await app.inject({ method: 'GET', url: '/v1/models', remoteAddress: ip });
  };
  const admin = (method: 'GET' | 'DELETE', url: string) =>
    app.inject({ method, url, headers: auth, remoteAddress: OPERATOR });
  return { app, guard, clock, failFrom, admin, unblocked };
}

describe('GET /admin/auth/blocks', () => {
  it('needs a valid key', async () => {
    const { app } = build();
    const response = await app.inject({ method: 'GET', url: '/admin/auth/blocks', remoteAddress: OPERATOR });
    expect(response.statusCode).toBe(401);
  });

  it.each([
    ['GET', '/admin/auth/blocks'],
    ['DELETE', '/admin/auth/blocks/192.0.2.9'],
  ] as const)('%s %s answers a client key 403, without counting a failure', async (method, url) => {
    const { app, guard } = build();
    const response = await app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${CLIENT_KEY}` },
      remoteAddress: OPERATOR,
    });
    expect(response.statusCode).toBe(403);
    expect(response.json()).toEqual({
      error: {
        message:
          'This operator endpoint needs an admin key, and this request was not made with one: the key is valid ' +
          'for proxy traffic only. Send an admin key (LLM_INTERACTIVE_PROXY_ADMIN_KEY, or role: admin on a key ' +
          'in auth.api_keys or role=admin in the keys file).',
        type: 'permission_error',
        code: 'admin_key_required',
        param: null,
      },
    });
    expect(await guard?.list()).toEqual([]);
  });

  it('answers 403 naming LLM_INTERACTIVE_PROXY_ADMIN_KEY when no key is an admin key', async () => {
    const { admin } = build(true, 'client');
    const response = await admin('GET', '/admin/auth/blocks');
    expect(response.statusCode).toBe(403);
    expect(response.json()).toEqual({
      error: {
        message:
          'The operator endpoints need an admin key and none is configured: set LLM_INTERACTIVE_PROXY_ADMIN_KEY ' +
          '(or give a key role: admin in auth.api_keys or role=admin in the keys file), reload or restart, and ' +
          'send it.',
        type: 'permission_error',
        code: 'admin_key_not_configured',
        param: null,
      },
    });
  });

  it('leaves other routes to any valid key', async () => {
    const { app } = build();
    const response = await app.inject({
      method: 'GET',
      url: '/v1/models',
      headers: { authorization: `Bearer ${CLIENT_KEY}` },
      remoteAddress: OPERATOR,
    });
    expect(response.statusCode).toBe(200);
  });

  it('lists blocked and tracked clients with counts and seconds left', async () => {
    const { failFrom, admin, clock } = build();
    await failFrom('203.0.113.9', 5);
    await failFrom('2001:db8:1:2::7', 2);
    clock.ms += 10_000;
    const response = await admin('GET', '/admin/auth/blocks');
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ enabled: true, tracked: 2, blocked_count: 1, truncated: false });
    expect(body.policy).toEqual({
      max_failed_attempts: 5,
      ttl_seconds: 900,
      initial_block_seconds: 30,
      block_multiplier: 2,
      max_block_seconds: 3600,
      max_tracked_clients: 100_000,
    });
    expect(body.blocked).toEqual([
      {
        address: '203.0.113.9',
        failures: 5,
        blocked: true,
        seconds_left: 20,
        seconds_since_last_failure: 10,
      },
    ]);
    expect(body.clients).toHaveLength(2);
    expect(body.clients).toContainEqual({
      address: '2001:db8:1:2::/64',
      failures: 2,
      blocked: false,
      seconds_left: 0,
      seconds_since_last_failure: 10,
    });
  });

  it('honours limit and rejects a bad one', async () => {
    const { failFrom, admin } = build();
    await failFrom('203.0.113.1', 1);
    await failFrom('203.0.113.2', 1);
    const limited = (await admin('GET', '/admin/auth/blocks?limit=1')).json();
    expect(limited.clients).toHaveLength(1);
    expect(limited.truncated).toBe(true);
    const bad = await admin('GET', '/admin/auth/blocks?limit=0');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('invalid_request');
  });

  it('says when brute-force protection is disabled', async () => {
    const { admin } = build(false);
    expect((await admin('GET', '/admin/auth/blocks')).json()).toEqual({
      enabled: false,
      tracked: 0,
      blocked_count: 0,
      blocked: [],
      clients: [],
    });
  });
});

describe('DELETE /admin/auth/blocks/{address}', () => {
  it('unblocks an IPv4 address at once', async () => {
    const { app, failFrom, admin, unblocked } = build();
    await failFrom('203.0.113.9', 5);
    const before = await app.inject({
      method: 'GET',
      url: '/v1/models',
      headers: auth,
      remoteAddress: '203.0.113.9',
    });
    expect(before.statusCode).toBe(429);

    const response = await admin('DELETE', '/admin/auth/blocks/203.0.113.9');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ unblocked: true, address: '203.0.113.9' });
    // The server is told too, so its connection guard stops closing the address's reconnects.
    expect(unblocked).toEqual(['203.0.113.9']);
    const after = await app.inject({
      method: 'GET',
      url: '/v1/models',
      headers: auth,
      remoteAddress: '203.0.113.9',
    });
    expect(after.statusCode).toBe(200);
  });

  it.each([
    '2001:db8:1:2::/64',
    encodeURIComponent('2001:db8:1:2::/64'),
    encodeURIComponent('2001:db8:1:2::abcd'),
    '2001:db8:1:2::abcd',
  ])('unblocks an IPv6 /64 given as %s', async (address) => {
    const { failFrom, admin, unblocked } = build();
    await failFrom('2001:db8:1:2::7', 5);
    const response = await admin('DELETE', `/admin/auth/blocks/${address}`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ unblocked: true, address: '2001:db8:1:2::/64' });
    expect(unblocked).toEqual(['2001:db8:1:2::/64']);
  });

  it('answers 404 in the OpenAI envelope for an untracked address', async () => {
    const { admin, unblocked } = build();
    const response = await admin('DELETE', '/admin/auth/blocks/198.51.100.1');
    expect(response.statusCode).toBe(404);
    expect(unblocked).toEqual([]);
    expect(response.json()).toEqual({
      error: {
        message: 'Address 198.51.100.1 is not tracked',
        type: 'invalid_request_error',
        code: 'not_found',
        param: null,
      },
    });
  });

  it.each(['not-an-ip', '203.0.113.0/24', ''])('answers 400 for %j', async (address) => {
    const { admin } = build();
    const response = await admin('DELETE', `/admin/auth/blocks/${address}`);
    expect(response.statusCode).toBe(400);
    expect(response.json().error.code).toBe('invalid_request');
  });

  it('answers 404 when brute-force protection is disabled', async () => {
    const { admin } = build(false);
    expect((await admin('DELETE', '/admin/auth/blocks/203.0.113.9')).statusCode).toBe(404);
  });
});
