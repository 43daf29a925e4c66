import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { backendsAt } from './reliability/support.js';

/**
 * A field dropped with notice (README, "Fields that do not translate") is named in a debug log line on every
 * path — one attempt, a chain, a route, any request once `resilience:` is configured — once per attempt that
 * dropped it, naming the backend and model it was dropped for. OpenAI's `user` is dropped toward Anthropic
 * and kept by an OpenAI backend.
 */
const KEY = 'dropped-log-proxy-key-0123456789';
/** The value of the dropped field: it must reach no log. */
const USER = 'dropped-user-value-5c1e8a';

let upstream: FakeProvider;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lip-dropped-log-'));
  upstream = await startFakeProvider();
});
afterAll(async () => {
  await upstream?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface DroppedLine {
  backend: string;
  model: string;
  dropped: string[];
}

describe.each([
  ['without resilience:', [] as string[]],
  ['with resilience:', ['resilience:', '  retries: 1', '  time_scale: 0.05']],
])('the dropped-fields debug line %s', (_title, resilience) => {
  let proxy: ProxyProcess;
  beforeAll(async () => {
    const config = join(dir, `${resilience.length}.yaml`);
    writeFileSync(
      config,
      [
        'routes:',
        '  pair:',
        '    chain: [anthropic:fault-status-503-pair, anthropic:claude-b]',
        ...resilience,
        '',
      ].join('\n'),
    );
    proxy = await startProxyProcess(
      ['--config', config, '--default-backend', 'openai', '--log-level', 'debug'],
      backendsAt(upstream.url, KEY),
    );
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  let counter = 0;
  /** One chat request with `user`; the debug lines about it, once the proxy has written its access line. */
  async function linesFor(
    model: string,
  ): Promise<{ status: number; dropped: string | null; lines: unknown[] }> {
    counter += 1;
    const id = `dropped-log-${resilience.length}-${counter}`;
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'x-request-id': id },
      body: JSON.stringify({ model, user: USER, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.text();
    const parsed = () =>
      proxy
        .stdout()
        .split('\n')
        .filter((line) => line.startsWith('{') && line.includes(`"request_id":"${id}"`))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    // The access line is written when the answer ends: every line of the request is out before it.
    await expect.poll(() => parsed().some((line) => line.msg === 'request')).toBe(true);
    const lines = parsed()
      .filter((line) => line.msg === 'Request fields dropped with notice')
      .map((line) => {
        const { backend, model: sentModel, dropped } = line as unknown as DroppedLine;
        return { backend, model: sentModel, dropped };
      });
    return { status: res.status, dropped: res.headers.get('x-proxy-dropped'), lines };
  }
  const line = (model: string) => ({ backend: 'anthropic', model, dropped: ['user'] });

  it('one attempt to Anthropic: one line naming the backend', async () => {
    const got = await linesFor('anthropic:claude-one');
    expect(got).toEqual({ status: 200, dropped: 'user', lines: [line('claude-one')] });
  });

  it('a chain anthropic:c|openai:x: a line per Anthropic attempt, none for OpenAI, which kept the field', async () => {
    const got = await linesFor('anthropic:fault-status-503-chain|openai:gpt-x');
    expect(got.status).toBe(200);
    // Retried once on the same element (`retries: 1`), then the next element answers.
    expect(got.lines).toEqual([line('fault-status-503-chain'), line('fault-status-503-chain')]);
    expect(upstream.requests.at(-1)?.body).toMatchObject({ model: 'gpt-x', user: USER });
    // The header speaks of the answer the client got: OpenAI kept the field.
    expect(got.dropped).toBe(null);
  });

  it('a chain whose Anthropic element answers: one line', async () => {
    const got = await linesFor('anthropic:claude-first|openai:gpt-x');
    expect(got).toEqual({ status: 200, dropped: 'user', lines: [line('claude-first')] });
  });

  it('a route: a line per attempt, each naming its model', async () => {
    const got = await linesFor('pair');
    expect(got.status).toBe(200);
    expect(got.lines).toEqual([
      line('fault-status-503-pair'),
      line('fault-status-503-pair'),
      line('claude-b'),
    ]);
  });

  it('nothing dropped: no line', async () => {
    expect(await linesFor('openai:gpt-kept')).toEqual({ status: 200, dropped: null, lines: [] });
  });

  it('never logs the dropped value', () => {
    expect(proxy.stdout()).not.toContain(USER);
  });
});
