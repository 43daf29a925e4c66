import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startRedisServer, type RedisServer } from './helpers/redis-server.js';

/**
 * Stored responses in the shared state store (README, "Shared state" and "The Responses API"): two replicas
 * on one real redis-server continue each other's conversations, a response belongs to the key that made it
 * on both, and what Redis holds is sealed — the conversation's words are nowhere in its raw values.
 */
const ALICE = 'replicas-alice-key-0123456789ab';
const BOB = 'replicas-bob-key-0123456789abcd';
const SECRET = 'replicas-state-secret-0123456789abcdefgh';
const CANARY = 'periwinkle-canary-4417';

let redis: RedisServer;
let provider: FakeProvider;
let replicas: ProxyProcess[] = [];

beforeAll(async () => {
  [redis, provider] = await Promise.all([startRedisServer(), startFakeProvider()]);
  const env = {
    API_KEYS: `${ALICE},${BOB}`,
    PROXY_STATE_SECRET: SECRET,
    // A chat-completions backend: the Responses API is translated and its state kept by the proxy.
    OPENROUTER_API_KEY: 'sk-or-replicas-0123456789',
    OPENROUTER_API_BASE_URL: provider.baseUrls.openai,
    // The built-in openai backend speaks Responses: passed through, the proxy records owner and backend.
    OPENAI_API_KEY: 'sk-openai-replicas-0123456789',
    OPENAI_API_BASE_URL: provider.baseUrls.openai,
  };
  const args = ['--state-store', redis.url, '--default-backend', 'openrouter', '--responses-max-stored', '3'];
  replicas = await Promise.all([0, 1].map(() => startProxyProcess(args, env)));
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  await Promise.all([provider?.close(), redis?.stop()]);
});

const client = (replica: number, key: string) =>
  new OpenAI({ baseURL: `${replicas[replica]!.url}/v1`, apiKey: key, maxRetries: 0 });

/** Every key of the Redis server and its raw contents. */
/** Every key and value in Redis as text; `pattern` narrows it (the usage ledger names backends in the clear). */
async function redisDump(pattern = '*'): Promise<string> {
  const inspector = new Redis(redis.url);
  try {
    const parts: string[] = [];
    for (const key of await inspector.keys(pattern)) {
      const type = await inspector.type(key);
      parts.push(key);
      if (type === 'string') parts.push(String(await inspector.get(key)));
      else if (type === 'hash') parts.push(JSON.stringify(await inspector.hgetall(key)));
      else if (type === 'zset') parts.push(JSON.stringify(await inspector.zrange(key, 0, -1)));
      else parts.push(`(${type})`);
    }
    return parts.join('\n');
  } finally {
    inspector.disconnect();
  }
}

describe('stored responses shared by two replicas', () => {
  it('continues a conversation made on one replica on the other, for its key only, sealed in Redis', async () => {
    const first = await client(0, ALICE).responses.create({
      model: 'gpt-4o-mini',
      input: `remember ${CANARY}`,
    });
    expect(first.output_text).toBe(`echo: remember ${CANARY}`);

    // The other replica: the stored response, and a second turn built on it.
    expect((await client(1, ALICE).responses.retrieve(first.id)).id).toBe(first.id);
    const before = provider.requests.length;
    const second = await client(1, ALICE).responses.create({
      model: 'gpt-4o-mini',
      input: 'and again',
      previous_response_id: first.id,
    });
    expect(second.output_text).toBe('echo: and again');
    const sent = provider.requests.slice(before).map((r) => (r.body as { messages: unknown[] }).messages);
    expect(sent).toEqual([
      [
        { role: 'user', content: `remember ${CANARY}` },
        { role: 'assistant', content: `echo: remember ${CANARY}` },
        { role: 'user', content: 'and again' },
      ],
    ]);

    // Another key sees nothing, on either replica.
    for (const replica of [0, 1]) {
      await expect(client(replica, BOB).responses.retrieve(first.id)).rejects.toMatchObject({ status: 404 });
      await expect(
        client(replica, BOB).responses.create({
          model: 'gpt-4o-mini',
          input: 'steal',
          previous_response_id: first.id,
        }),
      ).rejects.toMatchObject({ status: 404 });
    }

    // Sealed: the words of the conversation are not in any raw value, nor the key names.
    const dump = await redisDump();
    expect(dump).toMatch(/^llm-interactive-proxy:\{responses\}:/m);
    expect(dump).not.toContain(CANARY);
    expect(dump).not.toContain('and again');
    expect(dump).not.toContain(ALICE);

    // Deleted on one replica, gone on both.
    await client(1, ALICE).responses.delete(first.id);
    await expect(client(0, ALICE).responses.retrieve(first.id)).rejects.toMatchObject({ status: 404 });
  });

  it('holds --responses-max-stored across replicas: the oldest written goes first', async () => {
    const made: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await client(i % 2, ALICE).responses.create({ model: 'gpt-4o-mini', input: `turn ${i}` });
      made.push(res.id);
    }
    for (const replica of [0, 1]) {
      await expect(client(replica, ALICE).responses.retrieve(made[0]!)).rejects.toMatchObject({
        status: 404,
      });
      for (const id of made.slice(1))
        expect((await client(replica, ALICE).responses.retrieve(id)).id).toBe(id);
    }
  });

  it('a passed-through id made on one replica is read on the other from the backend that made it', async () => {
    const made = await client(0, ALICE).responses.create({
      model: 'openai:gpt-4o-mini',
      input: `pass ${CANARY}`,
    });
    expect(made.id).toMatch(/^resp_fake_/);
    expect((await client(1, ALICE).responses.retrieve(made.id)).output_text).toBe(`echo: pass ${CANARY}`);
    expect(provider.requests.at(-1)?.url).toBe(`/v1/responses/${made.id}`);
    const items = await client(1, ALICE).responses.inputItems.list(made.id);
    expect(items.data.map((item) => item.id)).toEqual([`in_${made.id}_0`]);
    await expect(client(1, BOB).responses.retrieve(made.id)).rejects.toMatchObject({ status: 404 });
    // The backend that holds it is sealed with the owner (the usage ledger's own keys name backends: not these).
    expect(await redisDump('llm-interactive-proxy:{responses}:*')).not.toContain('openai');
  });
});
