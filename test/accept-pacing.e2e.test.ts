import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

const KEY = 'accept-pacing-key-0123456789abcdef';
const STREAMS = 300;

function rawRequest(body: string, close: boolean): string {
  return (
    'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
    `Authorization: Bearer ${KEY}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${close ? 'Connection: close\r\n' : ''}\r\n${body}`
  );
}

const streamBody = (i: number) =>
  JSON.stringify({ model: 'fault-drip', stream: true, messages: [{ role: 'user', content: `stream ${i}` }] });
const quickBody = JSON.stringify({ model: 'quick', messages: [{ role: 'user', content: 'quick' }] });

/**
 * A quick call among streams whose connections all wait to be accepted (docs/performance.md, "Accepting
 * connections while streams open"): Node accepts one connection per turn of its event loop, so the proxy
 * starts no stream while connections keep being accepted. Made deterministic with the proxy stopped
 * (SIGSTOP) while the connections arrive: on resuming, it finds them all in its listen queue, the quick call's
 * last. The quick call is answered before most streams have started, and every stream still starts, whole.
 */
describe('a quick call behind connections waiting to be accepted', () => {
  let upstream: FakeProvider;
  let proxy: ProxyProcess;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    // Streams that stay open (a piece a second) past the test's end; each one's first piece comes at once.
    upstream = await startFakeProvider({ chunks: 60, dripMs: 1000, record: false });
    proxy = await startProxyProcess(['--default-backend', 'openai', '--shutdown-timeout', '1'], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      OPENAI_API_KEY: 'sk-accept-pacing-upstream-0123456789',
      OPENAI_API_BASE_URL: upstream.baseUrls.openai,
    });
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    if (proxy?.child.exitCode === null) proxy.child.kill('SIGCONT');
    await proxy?.stop();
    await upstream?.close();
  });

  it(`answers the quick call before most of ${STREAMS} streams start, and starts every stream`, async () => {
    const port = Number(new URL(proxy.url).port);
    /** Each stream's first bytes, in the order they arrived. */
    const heads: number[] = [];
    /** Each stream's answer head, once it came whole. */
    const answerHeads = new Map<number, string>();
    let headsWhenQuickAnswered = -1;
    const open = (request: string, onData: (chunk: Buffer) => void) =>
      new Promise<Socket>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.write(request);
          resolve(socket);
        });
        socket.once('error', reject);
        socket.on('data', onData);
        sockets.push(socket);
      });

    proxy.child.kill('SIGSTOP');
    for (let i = 0; i < STREAMS; i++) {
      let text = '';
      await open(rawRequest(streamBody(i), false), (chunk) => {
        if (text === '') heads.push(i);
        text += chunk.toString('utf8');
        const headEnd = text.indexOf('\r\n\r\n');
        if (headEnd >= 0 && !answerHeads.has(i)) answerHeads.set(i, text.slice(0, headEnd));
      });
    }
    let quickText = '';
    const quick = await open(rawRequest(quickBody, true), (chunk) => (quickText += chunk.toString('utf8')));
    const quickAnswered = new Promise<void>((resolve) =>
      quick.once('end', () => {
        headsWhenQuickAnswered = heads.length;
        resolve();
      }),
    );
    proxy.child.kill('SIGCONT');
    await quickAnswered;

    expect(quickText.startsWith('HTTP/1.1 200 ')).toBe(true);
    expect(quickText).toContain('"content":"echo: quick"');
    // Every turn accepted a connection until the quick call's, so the streams waited for it.
    expect(headsWhenQuickAnswered).toBeLessThan(STREAMS / 2);

    // Held, not dropped: every stream starts.
    await expect.poll(() => answerHeads.size, { timeout: 20_000, interval: 50 }).toBe(STREAMS);
    for (const head of answerHeads.values()) {
      expect(head.startsWith('HTTP/1.1 200 ')).toBe(true);
      expect(head).toContain('content-type: text/event-stream');
    }
    expect(new Set(heads).size).toBe(STREAMS);
  }, 60_000);
});
