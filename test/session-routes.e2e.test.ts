import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

/**
 * `!/route(name)` (README, "In-chat commands" and "Routes and failover"), driven by the official OpenAI SDK:
 * the session's requests take the route's chain, failing over as any request for the route does, and the
 * answer's headers and access line name the element that answered; `!/session` shows the route and its
 * chain; a name that is not a route is refused naming the configured ones, and a route is accepted even when
 * the default backend has no key.
 */
const KEY = 'session-routes-key-0123456789ab';

let fake: FakeProvider;
let proxy: ProxyProcess;
/** Its default backend (gemini) has no key: only the routes' backends do. */
let noDefault: ProxyProcess;
let dir: string;

beforeAll(async () => {
  fake = await startFakeProvider();
  dir = mkdtempSync(path.join(tmpdir(), 'session-routes-'));
  const config = path.join(dir, 'proxy.yaml');
  writeFileSync(
    config,
    [
      'routes:',
      '  coder:',
      '    chain: [openai:fault-status-503-coder, anthropic:claude-coder]',
      '    retries: 0',
      '  cheap:',
      '    chain: [openai:gpt-cheap]',
      'resilience:',
      '  time_scale: 0.03',
      '',
    ].join('\n'),
  );
  const env = {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    OPENAI_API_KEY: 'sk-session-routes-openai-0123',
    OPENAI_API_BASE_URL: fake.baseUrls.openai,
    ANTHROPIC_API_KEY: 'sk-ant-session-routes-012345',
    ANTHROPIC_API_BASE_URL: fake.baseUrls.anthropic,
  };
  [proxy, noDefault] = await Promise.all([
    startProxyProcess(['--config', config, '--default-backend', 'openai'], env),
    startProxyProcess(['--config', config, '--default-backend', 'gemini'], env),
  ]);
});

afterAll(async () => {
  await Promise.all([proxy?.stop(), noDefault?.stop()]);
  await fake?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const client = (session: string, url = proxy.url) =>
  new OpenAI({
    baseURL: `${url}/v1`,
    apiKey: KEY,
    maxRetries: 0,
    defaultHeaders: { 'x-session-id': session },
  });

async function say(c: OpenAI, text: string): Promise<string> {
  const res = await c.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: text }],
  });
  return res.choices[0]?.message.content ?? '';
}

/** The access line of a request, once the batched writer has written it. */
async function accessLine(requestId: string): Promise<Record<string, unknown>> {
  const find = () =>
    proxy
      .stdout()
      .split('\n')
      .find((l) => l.includes('"msg":"request"') && l.includes(requestId));
  while (find() === undefined) await new Promise((resolve) => setImmediate(resolve));
  return JSON.parse(find() ?? '{}') as Record<string, unknown>;
}

describe('!/route(name)', () => {
  it('takes the session through the route: failover walks its chain, the answer names who answered', async () => {
    const c = client('route-1');
    const before = fake.requests.length;
    expect(await say(c, '!/route(coder)')).toBe(
      'This session now uses route coder (route: tries openai:fault-status-503-coder, then anthropic:claude-coder).',
    );
    expect(fake.requests.length).toBe(before);

    // Whole answer: the first element fails (503), the second answers.
    const whole = await c.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(whole.data.choices[0]?.message.content).toBe('echo: hi');
    expect(whole.data.model).toBe('claude-coder');
    expect(whole.response.headers.get('x-proxy-backend')).toBe('anthropic');
    expect(whole.response.headers.get('x-proxy-model')).toBe('claude-coder');
    expect(whole.response.headers.get('x-proxy-attempts')).toBe('2');
    expect(fake.requests.slice(before).map((r) => r.model)).toEqual([
      'fault-status-503-coder',
      'claude-coder',
    ]);
    const line = await accessLine(whole.response.headers.get('x-request-id') ?? 'none');
    expect(line.backend).toBe('anthropic');
    expect(line.model).toBe('claude-coder');
    expect(line.attempts).toMatch(
      /^openai:fault-status-503-coder 503 retry \d+ms; anthropic:claude-coder 200 ok \d+ms$/,
    );

    // Streamed: the same chain, the same accounting.
    const streamed = await c.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }], stream: true })
      .withResponse();
    let text = '';
    for await (const chunk of streamed.data) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('echo: hello');
    expect(streamed.response.headers.get('x-proxy-backend')).toBe('anthropic');
    expect(streamed.response.headers.get('x-proxy-model')).toBe('claude-coder');
    expect(streamed.response.headers.get('x-proxy-attempts')).toBe('2');

    expect(await say(c, '!/session')).toBe(
      "This session's settings:\n  model: coder (route: tries openai:fault-status-503-coder, then anthropic:claude-coder)",
    );
    // Another session of the same key is untouched: its request goes to the model it names.
    const other = await client('route-2')
      .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })
      .withResponse();
    expect(other.response.headers.get('x-proxy-backend')).toBe('openai');
    expect(other.data.model).toBe('gpt-4o-mini');
  });

  it('refuses a name that is not a route, naming the configured ones, and changes nothing', async () => {
    const c = client('route-3');
    expect(await say(c, '!/route(cheap)')).toContain('This session now uses route cheap');
    const reply = await say(c, '!/route(codr)');
    expect(reply).toMatch(
      /^!\/route: 'codr' is not a configured route \(configured routes: coder, cheap\)\. Nothing was changed and nothing was sent to the model\.\n\n/,
    );
    expect(reply).toContain('!/route(name)');
    expect(await say(c, '!/session')).toBe(
      "This session's settings:\n  model: cheap (route: tries openai:gpt-cheap)",
    );
  });

  it('accepts a route whose backends have keys when the default backend has none', async () => {
    const c = client('route-4', noDefault.url);
    expect(await say(c, '!/route(cheap)')).toContain('This session now uses route cheap');
    const res = await c.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    expect(res.data.model).toBe('gpt-cheap');
    expect(res.response.headers.get('x-proxy-backend')).toBe('openai');
    // Without the route, the same request goes to the default backend, which has no key.
    const plain = await fetch(`${noDefault.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${KEY}`,
        'content-type': 'application/json',
        'x-session-id': 'route-5',
      },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(plain.status).toBe(400);
    expect(((await plain.json()) as { error: { code: string } }).error.code).toBe('backend_not_configured');
  });
});
