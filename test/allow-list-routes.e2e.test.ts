import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

/**
 * A key's `models:` allow-list (README, "Teams: policies") judges a model the same way on every path: a single
 * attempt, each element of an `a|b` chain, a route (by its name, or by every one of its elements), with and
 * without a `resilience:` section (which sends every request through failover), on each front-end.
 */
const ALICE_KEY = 'allow-routes-alice-0123456789abcdef';
const BOB_KEY = 'allow-routes-bob-0123456789abcdefgh';
const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

const ROUTES = [
  'routes:',
  // Named in alice's list: let through whatever its elements.
  '  coder:',
  '    chain: [gemini:gemini-2.5-pro, openai:gpt-5]',
  // Named by no one: let through for a key that may use each of its elements.
  '  pair:',
  '    chain: [anthropic:claude-a, anthropic:claude-b]',
  '  mixed:',
  '    chain: [anthropic:claude-m, openai:gpt-m]',
];
const KEYS = [
  'auth:',
  '  api_keys:',
  `    - {name: alice, sha256: ${sha256(ALICE_KEY)}, models: ["anthropic:*", "coder"]}`,
  // A bare glob: that model on any backend, the default one (openai) included.
  `    - {name: bob, sha256: ${sha256(BOB_KEY)}, models: ["claude-*"]}`,
];

/** A request's model, and the model the 404 names (null: let through). */
type Case = readonly [key: string, model: string, refused: string | null];
const CASES: readonly Case[] = [
  [ALICE_KEY, 'anthropic:claude-sonnet-4-5', null],
  [ALICE_KEY, 'openai:gpt-4o', 'openai:gpt-4o'],
  [ALICE_KEY, 'gpt-4o', 'gpt-4o'],
  [ALICE_KEY, 'coder', null],
  [ALICE_KEY, 'pair', null],
  [ALICE_KEY, 'mixed', 'mixed'],
  [ALICE_KEY, 'anthropic:claude-x|anthropic:claude-y', null],
  [ALICE_KEY, 'anthropic:claude-x|openai:gpt-4o', 'openai:gpt-4o'],
  [BOB_KEY, 'anthropic:claude-sonnet-4-5', null],
  [BOB_KEY, 'claude-bare', null],
  [BOB_KEY, 'gpt-4o', 'gpt-4o'],
  [BOB_KEY, 'anthropic:claude-x|claude-y', null],
  [BOB_KEY, 'claude-x|gemini:gemini-2.5-pro', 'gemini:gemini-2.5-pro'],
  [BOB_KEY, 'pair', null],
  [BOB_KEY, 'coder', 'coder'],
];

/** One chat request in each front-end's shape. */
const FRONT_ENDS: Record<string, (model: string) => { path: string; body: unknown }> = {
  chat: (model) => ({
    path: '/v1/chat/completions',
    body: { model, messages: [{ role: 'user', content: 'hi' }] },
  }),
  anthropic: (model) => ({
    path: '/anthropic/v1/messages',
    body: { model, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] },
  }),
  gemini: (model) => ({
    path: `/v1beta/models/${encodeURIComponent(model)}:generateContent`,
    body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
  }),
  responses: (model) => ({ path: '/v1/responses', body: { model, input: 'hi' } }),
};

let dir: string;
let upstream: FakeProvider;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lip-allow-routes-'));
  upstream = await startFakeProvider();
});
afterAll(async () => {
  await upstream?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.each([
  ['without resilience:', [] as string[]],
  ['with resilience: (every request through failover)', ['resilience:', '  retries: 1']],
])('the allow-list %s', (_title, resilience) => {
  let proxy: ProxyProcess;
  beforeAll(async () => {
    const config = join(dir, `${resilience.length}.yaml`);
    writeFileSync(config, [...KEYS, ...ROUTES, ...resilience, ''].join('\n'));
    proxy = await startProxyProcess(['--config', config, '--default-backend', 'openai'], {
      OPENAI_API_KEY: 'sk-allow-routes-openai-0123456789',
      OPENAI_API_BASE_URL: upstream.baseUrls.openai,
      ANTHROPIC_API_KEY: 'sk-ant-allow-routes-0123456789',
      ANTHROPIC_API_BASE_URL: upstream.baseUrls.anthropic,
      GEMINI_API_KEY: 'AIzaAllowRoutes0123456789abcdef',
      GEMINI_API_BASE_URL: upstream.baseUrls.gemini,
    });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it.each(Object.keys(FRONT_ENDS))('judges each model alike on the %s front-end', async (frontEnd) => {
    const shape = FRONT_ENDS[frontEnd] as (model: string) => { path: string; body: unknown };
    const seen: string[] = [];
    for (const [key, model, refused] of CASES) {
      const { path, body } = shape(model);
      const sentBefore = upstream.requests.length;
      const res = await fetch(`${proxy.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      const who = key === ALICE_KEY ? 'alice' : 'bob';
      if (res.status === 200) {
        seen.push(`${who} ${model}: 200`);
        continue;
      }
      const error = (JSON.parse(text) as { error?: { message?: string } }).error;
      seen.push(`${who} ${model}: ${res.status} ${error?.message ?? text}`);
      // Nothing of a refused request reaches a backend.
      if (refused !== null) expect(upstream.requests.length, `${who} ${model}`).toBe(sentBefore);
    }
    expect(seen).toEqual(
      CASES.map(([key, model, refused]) => {
        const who = key === ALICE_KEY ? 'alice' : 'bob';
        return refused === null
          ? `${who} ${model}: 200`
          : `${who} ${model}: 404 The model '${refused}' does not exist or you do not have access to it.`;
      }),
    );
  });

  it('lists the routes each key may take: by name, or by every element', async () => {
    const listed = async (key: string) => {
      const res = await fetch(`${proxy.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
      const ids = ((await res.json()) as { data: Array<{ id: string }> }).data.map((m) => m.id);
      return ids.filter((id) => ['coder', 'pair', 'mixed'].includes(id));
    };
    expect(await listed(ALICE_KEY)).toEqual(['coder', 'pair']);
    expect(await listed(BOB_KEY)).toEqual(['pair']);
  });
});
