import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startRedisServer, type RedisServer } from './helpers/redis-server.js';

/**
 * Circuit breakers in the shared state store (README, Routes and failover; "Shared state"): two replicas on
 * one real redis-server — one replica's failures open an element's breaker, and the other skips that element
 * at once, without sending it anything.
 */
const KEY = 'breakers-replicas-key-0123456789';
const ADMIN_KEY = 'breakers-replicas-admin-0123456789ab';
const SECRET = 'breakers-replicas-secret-0123456789abcdef';

let redis: RedisServer;
let fake: FakeProvider;
let dir: string;
let replicas: ProxyProcess[] = [];

beforeAll(async () => {
  [redis, fake] = await Promise.all([startRedisServer(), startFakeProvider()]);
  dir = mkdtempSync(path.join(tmpdir(), 'breakers-replicas-'));
  const config = path.join(dir, 'proxy.yaml');
  writeFileSync(
    config,
    [
      'routes:',
      '  shared:',
      '    chain: [openai:fault-status-500-shared, gemini:gemini-shared]',
      '    breaker: { failures: 2, cooldown_s: 1000 }',
      'resilience:',
      '  time_scale: 0.03',
      '',
    ].join('\n'),
  );
  const env = {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
    PROXY_STATE_SECRET: SECRET,
    OPENAI_API_KEY: 'sk-breakers-openai-0123456789',
    OPENAI_API_BASE_URL: fake.baseUrls.openai,
    GEMINI_API_KEY: 'AIzaBreakersKey0123456789abcdef',
    GEMINI_API_BASE_URL: fake.baseUrls.gemini,
  };
  replicas = await Promise.all(
    [0, 1].map(() =>
      startProxyProcess(['--config', config, '--state-store', redis.url, '--default-backend', 'openai'], env),
    ),
  );
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  await Promise.all([fake?.close(), redis?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const chat = (replica: number) =>
  fetch(`${replicas[replica]!.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'shared', messages: [{ role: 'user', content: 'hi' }] }),
  });

describe('circuit breakers shared by two replicas', () => {
  it("one replica's failures open the breaker; the other skips the element at once", async () => {
    // Replica 0: the primary fails twice (a retry), which opens its breaker; the fallback answers.
    let before = fake.requests.length;
    const first = await chat(0);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-proxy-attempts')).toBe('3');
    expect(fake.requests.slice(before).map((r) => r.model)).toEqual([
      'fault-status-500-shared',
      'fault-status-500-shared',
      'gemini-shared',
    ]);
    // Replica 1 never tried the primary, yet skips it: the breaker is the state store's.
    before = fake.requests.length;
    const second = await chat(1);
    expect(second.status).toBe(200);
    expect(second.headers.get('x-proxy-backend')).toBe('gemini');
    expect(second.headers.get('x-proxy-attempts')).toBe('1');
    expect(fake.requests.slice(before).map((r) => r.model)).toEqual(['gemini-shared']);
    for (const replica of replicas) {
      const health = (await (
        await fetch(`${replica.url}/internal/health`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
      ).json()) as { breakers: unknown };
      expect(health.breakers).toEqual([
        { element: 'openai:fault-status-500-shared', phase: 'open', failures: 2 },
      ]);
    }
  });
});
