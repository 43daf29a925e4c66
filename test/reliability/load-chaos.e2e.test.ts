import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from '../fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import {
  FRONTS,
  backendsAt,
  chatRequest,
  eventually,
  exchange,
  type Front,
  type Outcome,
} from './support.js';

const KEY = 'load-chaos-proxy-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };
const PAIRS = FRONTS.flatMap((front) => FRONTS.map((back) => [front, back] as const));

describe('load and chaos', () => {
  let upstream: FakeProvider;
  let proxy: ProxyProcess;
  let client: Agent;

  beforeAll(async () => {
    upstream = await startFakeProvider({ chunks: 8 });
    proxy = await startProxyProcess(
      ['--default-backend', 'openai', '--timeout', '2'],
      backendsAt(upstream.url, KEY),
    );
    client = new Agent({ connections: 300 });
  });
  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await upstream?.close();
  });

  it('200 streams open at the same time all complete intact, across every front-end and backend', async () => {
    const count = 200;
    const results = Array.from({ length: count }, (_, i) => {
      const [front, back] = PAIRS[i % PAIRS.length] as readonly [Front, Front];
      // Unique text per stream: a chunk delivered to the wrong client or lost would show.
      const prompt = `stream ${i} ${'x'.repeat(i % 37)} end`;
      return exchange(proxy.url, front, chatRequest(front, `${back}:fault-hold`, true, prompt), AUTH, {
        dispatcher: client,
        deadlineMs: 20_000,
      }).then((result) => ({ result, prompt, label: `#${i} ${front} ← ${back}` }));
    });
    // Every stream has started (first piece sent, the rest held) before any may finish.
    expect(
      await eventually(
        () => upstream.inFlight(),
        (n) => n === count,
        15_000,
      ),
    ).toBe(count);
    upstream.release();
    for (const { result, prompt, label } of await Promise.all(results)) {
      expect(result.outcome, label).toEqual({
        kind: 'answer',
        status: 200,
        text: `echo: ${prompt}`,
        streamed: true,
      });
    }
    expect((await fetch(`${proxy.url}/health`)).status).toBe(200);
  });

  it('recovers without a restart when the backend crashes and comes back during load', async () => {
    type Phase = 'before' | 'down' | 'after';
    let phase: Phase = 'before';
    let running = true;
    const seen: Array<{ phase: Phase; outcome: Outcome; label: string }> = [];
    const count = (p: Phase, kind?: Outcome['kind']) =>
      seen.filter((s) => s.phase === p && (!kind || s.outcome.kind === kind)).length;

    const worker = async (w: number) => {
      for (let i = 0; running; i++) {
        const [front, back] = PAIRS[(w + i) % PAIRS.length] as readonly [Front, Front];
        const stream = (w + i) % 2 === 0;
        const prompt = `w${w} i${i}`;
        const label = `${front} ← ${back} ${stream ? 'stream' : 'whole'}`;
        const startedIn = phase;
        const { outcome } = await exchange(
          proxy.url,
          front,
          chatRequest(front, `${back}:fault-drip`, stream, prompt),
          AUTH,
          {
            dispatcher: client,
          },
        );
        // A request that straddles a phase change may end either way; count it where it started.
        seen.push({ phase: startedIn === phase ? phase : 'down', outcome, label });
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    const pid = proxy.child.pid;

    await eventually(
      () => count('before', 'answer'),
      (n) => n >= 16,
      15_000,
    );
    phase = 'down';
    await upstream.down();
    await eventually(
      () => count('down', 'error'),
      (n) => n >= 16,
      15_000,
    );
    expect((await fetch(`${proxy.url}/health`)).status).toBe(200);
    await upstream.up();
    phase = 'after';
    await eventually(
      () => count('after', 'answer'),
      (n) => n >= 16,
      15_000,
    );
    running = false;
    await Promise.all(workers);

    for (const { outcome, label } of seen)
      expect(outcome.kind, `${label}: ${JSON.stringify(outcome)}`).not.toBe('malformed');
    expect(count('before', 'answer')).toBeGreaterThanOrEqual(16);
    expect(count('down', 'error')).toBeGreaterThanOrEqual(16);
    for (const { outcome } of seen.filter(
      (s) => s.phase === 'down' && s.outcome.kind === 'error' && !s.outcome.streamed,
    )) {
      expect(outcome.status).toBe(502);
    }
    expect(count('after', 'answer')).toBeGreaterThanOrEqual(16);
    // Same process throughout: the proxy recovered by itself.
    expect(proxy.child.pid).toBe(pid);
    expect(proxy.child.exitCode).toBeNull();
  });
});
