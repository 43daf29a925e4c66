import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

const KEY = 'backend-connections-key-0123456789';

/**
 * The connections to a backend (README, "Connections to backends"): `backends.<name>.max_connections` is
 * honoured, a call that finds no connection free waits within --timeout and then gets a 504, and long
 * streams leave room for quick calls.
 */
describe('connections to a backend', () => {
  let narrow: FakeProvider;
  let streams: FakeProvider;
  let proxy: ProxyProcess;
  let dir: string;
  let client: OpenAI;

  beforeAll(async () => {
    narrow = await startFakeProvider({ dripMs: 50 });
    // Streams that keep talking (a piece every 100 ms) for much longer than any step of the test.
    streams = await startFakeProvider({ chunks: 100, dripMs: 100 });
    dir = mkdtempSync(join(tmpdir(), 'lip-connections-'));
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      [
        'backends:',
        '  narrow:',
        '    type: openai',
        `    base_url: ${narrow.baseUrls.openai}`,
        '    max_connections: 2',
        '  streams:',
        '    type: openai',
        `    base_url: ${streams.baseUrls.openai}`,
        '    max_connections: 4',
        '',
      ].join('\n'),
    );
    // --shutdown-timeout 1: the client's aborted streams leave their connections to the proxy open a while
    // (the shutdown would wait for them), and this test is not about the shutdown.
    proxy = await startProxyProcess(['--config', config, '--timeout', '1', '--shutdown-timeout', '1'], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    });
    client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await proxy?.stop();
    await narrow?.close();
    await streams?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('max_connections: 2 — eight calls at once reach the backend over at most two connections', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        client.chat.completions.create({
          model: 'narrow:fault-drip',
          messages: [{ role: 'user', content: `call ${i}` }],
        }),
      ),
    );
    expect(answers.map((a) => a.choices[0]?.message.content)).toEqual(
      Array.from({ length: 8 }, (_, i) => `echo: call ${i}`),
    );
    expect(narrow.received).toBe(8);
    expect(narrow.peakConnections()).toBe(2);
  });

  it('streams fill their share: the next stream gets a 504 after --timeout, a quick call is served', async () => {
    // max_connections 4 keeps one connection for quick calls: three streams fill the streams' share.
    const open = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const controller = new AbortController();
        const stream = await client.chat.completions.create(
          {
            model: 'streams:fault-drip',
            stream: true,
            messages: [{ role: 'user', content: `long stream ${i} `.repeat(20) }],
          },
          { signal: controller.signal },
        );
        const reader = stream[Symbol.asyncIterator]();
        const first = await reader.next();
        expect(first.done).toBe(false);
        return { controller, reader };
      }),
    );
    expect(streams.inFlight()).toBe(3);

    // A fourth stream finds no connection free within --timeout (1 s): 504, and it never reached the backend.
    const refused = await client.chat.completions
      .create({ model: 'streams:fault-drip', stream: true, messages: [{ role: 'user', content: 'fourth' }] })
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(refused).toBeInstanceOf(OpenAI.APIError);
    expect((refused as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
    expect((refused as InstanceType<typeof OpenAI.APIError>).message).toContain(
      "Backend 'streams' had no free connection in time",
    );
    expect(streams.received).toBe(3);

    // A quick call to the same backend is served while the three streams still run.
    const quick = await client.chat.completions.create({
      model: 'streams:gpt-4o-mini',
      messages: [{ role: 'user', content: 'quick one' }],
    });
    expect(quick.choices[0]?.message.content).toBe('echo: quick one');
    expect(streams.inFlight()).toBe(3);
    const next = await Promise.all(open.map(({ reader }) => reader.next()));
    expect(next.map((n) => n.done)).toEqual([false, false, false]);
    expect(streams.peakConnections()).toBe(4);

    for (const { controller } of open) controller.abort();
    await streams.waitForAborts(3);
  });
});
