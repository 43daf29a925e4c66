import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';

const KEY = 'test-proxy-key-shutdown';

describe('embedded mock backend', () => {
  let proxy: ProxyProcess | undefined;
  afterEach(async () => {
    await proxy?.stop();
  });

  it('echoes the last user message, streaming and not, with no backend configured', async () => {
    proxy = await startProxyProcess([], { LLM_INTERACTIVE_PROXY_API_KEY: KEY });
    expect(proxy.stdout()).toContain('embedded mock backend');
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const whole = await client.chat.completions.create({
      model: 'gpt-4',
      messages: [
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: 'Hello, mock world!' },
      ],
    });
    expect(whole.choices[0]?.message.content).toBe('Hello, mock world!');

    const stream = await client.chat.completions.create({
      model: 'gpt-4',
      stream: true,
      messages: [{ role: 'user', content: 'one two three' }],
    });
    const pieces: string[] = [];
    for await (const chunk of stream) pieces.push(chunk.choices[0]?.delta.content ?? '');
    expect(pieces.join('')).toBe('one two three');
    expect(pieces.filter(Boolean).length).toBeGreaterThan(1);
  });

  it('is not chosen when a real backend is configured', async () => {
    proxy = await startProxyProcess([], {
      LLM_INTERACTIVE_PROXY_ADMIN_KEY: KEY,
      OPENAI_API_KEY: 'sk-test-not-used-1234567890',
    });
    const health = await fetch(`${proxy.url}/internal/health`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(((await health.json()) as { default_backend: string }).default_backend).toBe('openai');
  });
});

describe('graceful shutdown', () => {
  let upstream: FakeProvider | undefined;
  afterEach(async () => {
    await upstream?.close();
  });

  it('lets an in-flight stream finish after SIGTERM, then exits 0', async () => {
    upstream = await startFakeProvider();
    const proxy = await startProxyProcess(['--default-backend', 'openai', '--shutdown-timeout', '20'], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      OPENAI_API_KEY: 'sk-test-provider-1234567890abc',
      OPENAI_API_BASE_URL: upstream.baseUrls.openai,
    });
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'fault-hold-shutdown',
      stream: true,
      messages: [{ role: 'user', content: 'drain me' }],
    });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value?.choices[0]?.delta.content).toBe('echo');

    proxy.child.kill('SIGTERM');
    // Wait until the proxy has begun shutting down, then let the upstream finish its answer.
    await expect.poll(() => proxy.stdout().includes('shutting down'), { timeout: 10_000 }).toBe(true);
    upstream.release();
    let rest = '';
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      rest += next.value.choices[0]?.delta.content ?? '';
    }
    expect(`echo${rest}`).toBe('echo: drain me');
    expect(await proxy.exited).toBe(0);
  });
});
