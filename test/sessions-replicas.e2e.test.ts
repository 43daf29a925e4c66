import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider, type RecordedRequest } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { redisCommandsDuring } from './helpers/redis-monitor.js';

/**
 * Sessions in the shared state store (README, "Shared state" and "Sessions"): two replicas on one real
 * redis-server; a command given through one applies to the next request of the same session through the
 * other — Codex's recorded request, whose session is its `session-id` header, and the OpenAI SDK with
 * `x-session-id` — while other sessions and other keys are untouched, and Redis holds nothing in plaintext.
 */
const ALICE = 'sess-replicas-alice-key-0123456789';
const BOB = 'sess-replicas-bob-key-0123456789ab';
const SECRET = 'sess-replicas-state-secret-0123456789abcdef';
const ADMIN = 'sess-replicas-admin-key-0123456789abc';

let redis: RedisServer;
let provider: FakeProvider;
let replicas: ProxyProcess[] = [];

beforeAll(async () => {
  [redis, provider] = await Promise.all([startRedisServer(), startFakeProvider()]);
  const env = {
    API_KEYS: `${ALICE},${BOB}`,
    PROXY_STATE_SECRET: SECRET,
    LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN,
    OPENAI_API_KEY: 'sk-openai-sess-replicas',
    OPENAI_API_BASE_URL: provider.baseUrls.openai,
    ANTHROPIC_API_KEY: 'sk-ant-sess-replicas',
    ANTHROPIC_API_BASE_URL: provider.baseUrls.anthropic,
  };
  replicas = await Promise.all(
    [0, 1].map(() => startProxyProcess(['--state-store', redis.url, '--default-backend', 'openai'], env)),
  );
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  await Promise.all([provider?.close(), redis?.stop()]);
});

async function callsDuring(run: () => Promise<unknown>): Promise<RecordedRequest[]> {
  const before = provider.requests.length;
  await run();
  return provider.requests.slice(before);
}

interface Recorded {
  headers: Record<string, string>;
  body: { input: Array<{ type?: string; role?: string; content?: Array<{ text?: string }> }> };
}
const CODEX = JSON.parse(
  readFileSync(
    new URL('./fixtures/clients/codex-0.171.0/01-post-v1-responses.json', import.meta.url),
    'utf8',
  ),
) as Recorded;

/** Codex's first request, its last user text replaced by `text`, through a replica; the answer's text. */
async function codex(replica: number, text: string): Promise<{ status: number; body: string }> {
  const body = structuredClone(CODEX.body);
  const last = body.input.findLast((item) => item.role === 'user')!;
  last.content = [{ type: 'input_text', text } as { text: string }];
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(CODEX.headers)) {
    if (name !== 'authorization' && name !== 'accept-encoding') headers[name] = value;
  }
  const res = await fetch(`${replicas[replica]!.url}/v1/responses`, {
    method: 'POST',
    headers: { ...headers, authorization: `Bearer ${ALICE}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.text() };
}

const openai = (replica: number, key: string, session: string) =>
  new OpenAI({
    baseURL: `${replicas[replica]!.url}/v1`,
    apiKey: key,
    maxRetries: 0,
    defaultHeaders: { 'x-session-id': session },
  });

async function say(client: OpenAI, text: string): Promise<string> {
  const res = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: text }],
  });
  return res.choices[0]?.message.content ?? '';
}

describe('sessions shared by two replicas', () => {
  it("applies Codex's !/set(model=…) given through one replica to its next request through the other", async () => {
    const set = await callsDuring(async () => {
      const reply = await codex(0, '!/set(model=anthropic:claude-replica)');
      expect(reply.status).toBe(200);
      expect(reply.body).toContain('Set for this session: model=anthropic:claude-replica.');
    });
    expect(set).toEqual([]);
    const calls = await callsDuring(async () => {
      expect((await codex(1, 'Run echo hi')).status).toBe(200);
    });
    expect(calls.map((c) => [c.url, (c.body as { model: string }).model])).toEqual([
      ['/v1/messages', 'claude-replica'],
    ]);
    // Undone through the other replica: back to what Codex asks for.
    expect((await codex(1, '!/unset(model)')).body).toContain('Unset for this session: model.');
    const after = await callsDuring(() => codex(0, 'Run echo hi'));
    expect(after.map((c) => c.url)).toEqual(['/v1/responses']);
  });

  it('keeps a session to its key and id on both replicas; Redis holds no plaintext', async () => {
    expect(await say(openai(0, ALICE, 'shared-1'), '!/set(model=anthropic:claude-periwinkle)')).toBe(
      'Set for this session: model=anthropic:claude-periwinkle.',
    );
    const calls = await callsDuring(async () => {
      await say(openai(1, ALICE, 'shared-1'), 'one');
      await say(openai(1, ALICE, 'shared-2'), 'two');
      await say(openai(1, BOB, 'shared-1'), 'three');
      await say(openai(0, ALICE, 'shared-1'), 'four');
    });
    expect(calls.map((c) => [c.url, (c.body as { model: string }).model])).toEqual([
      ['/v1/messages', 'claude-periwinkle'],
      ['/v1/chat/completions', 'gpt-4o-mini'],
      ['/v1/chat/completions', 'gpt-4o-mini'],
      ['/v1/messages', 'claude-periwinkle'],
    ]);

    const inspector = new Redis(redis.url);
    try {
      const keys = await inspector.keys('*');
      // Alice's shared-1 alone: Codex's session was removed by its !/unset.
      expect(keys.filter((k) => k.startsWith('llm-interactive-proxy:{sessions}:e:')).length).toBe(1);
      const values = await Promise.all(
        keys.filter((k) => k.includes('{sessions}:e:')).map((k) => inspector.get(k)),
      );
      const dump = keys.join('\n') + values.join('\n');
      expect(dump).not.toContain('periwinkle');
      expect(dump).not.toContain('shared-1');
      expect(dump).not.toContain(ALICE);
    } finally {
      inspector.disconnect();
    }
  });

  it('asks Redis only for a session that has settings: none for the others, one call for it', async () => {
    /** The commands the replicas send about sessions while `run` runs (MONITOR). */
    const sessionCommands = async (run: () => Promise<void>): Promise<string[][]> =>
      (await redisCommandsDuring(redis.port, run)).filter((args) =>
        args.some((arg) => arg.includes('{sessions}')),
      );
    // Before the mirror of which sessions have settings, each of these was one script call (EVALSHA).
    const quiet = await sessionCommands(async () => {
      for (const replica of [0, 1, 0, 1]) await say(openai(replica, BOB, 'quiet-1'), 'hi');
    });
    expect(quiet).toEqual([]);
    expect(await say(openai(0, BOB, 'busy-1'), '!/set(temperature=0.3)')).toBe(
      'Set for this session: temperature=0.3.',
    );
    // The next request of that session, through the other replica: its settings read, one call.
    const busy = await sessionCommands(async () => {
      const calls = await callsDuring(() => say(openai(1, BOB, 'busy-1'), 'hi'));
      expect(calls.map((c) => (c.body as { temperature?: number }).temperature)).toEqual([0.3]);
      await say(openai(1, BOB, 'quiet-1'), 'hi');
    });
    expect(busy.map((args) => args[0]!.toLowerCase())).toEqual([expect.stringMatching(/^evalsha$|^eval$/)]);
  });

  it('keeps sessions working on a replica while Redis is down, with the degraded gauge set', async () => {
    const degraded = async (replica: number) => {
      const res = await fetch(`${replicas[replica]!.url}/metrics`, {
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      const line = /^llm_proxy_state_store_degraded\{feature="sessions"\} (\d)$/m.exec(await res.text());
      return line?.[1];
    };
    await redis.stop();
    try {
      expect(await say(openai(0, ALICE, 'down-1'), '!/set(model=anthropic:claude-while-down)')).toBe(
        'Set for this session: model=anthropic:claude-while-down.',
      );
      const calls = await callsDuring(() => say(openai(0, ALICE, 'down-1'), 'still there?'));
      expect(calls.map((c) => [c.url, (c.body as { model: string }).model])).toEqual([
        ['/v1/messages', 'claude-while-down'],
      ]);
      expect(await degraded(0)).toBe('1');
    } finally {
      await redis.restart();
    }
    // The probe finds Redis again: shared (and empty) once more.
    await expect.poll(() => degraded(0), { timeout: 10_000 }).toBe('0');
    expect(replicas[0]!.stdout()).toContain('Session store unreachable');
    expect(replicas[0]!.stdout()).not.toContain(SECRET);
  });
});
