import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

const KEY = 'listen-backlog-key-0123456789abcdef';
/** More than Node's default backlog (511) lets wait, fewer than the proxy's (and Linux's default cap, 4,096). */
const CONNECTIONS = 1000;

/**
 * Many agents opening streams at once (docs/performance.md, "Large bodies and many streams"): the kernel
 * holds every connection the proxy has not accepted yet, instead of dropping the connects past Node's default
 * backlog and leaving the clients to retry seconds later. Shown with the proxy stopped (SIGSTOP): nothing is
 * accepted, so every connect that completes is one the listen queue held.
 */
describe('listen backlog', () => {
  let proxy: ProxyProcess;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    proxy = await startProxyProcess([], { LLM_INTERACTIVE_PROXY_API_KEY: KEY });
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    if (proxy?.child.exitCode === null) proxy.child.kill('SIGCONT');
    await proxy?.stop();
  });

  it(`a stopped proxy's listen queue holds ${CONNECTIONS} connects, and it serves after it resumes`, async () => {
    const { port } = new URL(proxy.url);
    proxy.child.kill('SIGSTOP');
    const connected = await Promise.all(
      Array.from(
        { length: CONNECTIONS },
        () =>
          new Promise<boolean>((resolve) => {
            const socket = connect(Number(port), '127.0.0.1', () => resolve(true));
            socket.once('error', () => resolve(false));
            sockets.push(socket);
          }),
      ),
    );
    expect(connected.filter(Boolean).length).toBe(CONNECTIONS);
    proxy.child.kill('SIGCONT');
    for (const socket of sockets) socket.destroy();
    const health = await fetch(`${proxy.url}/health`);
    expect(health.status).toBe(200);
  }, 30_000);
});
