import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

/**
 * The brute-force limit holds however the guesses arrive (README, Authentication): pipelined on one
 * connection (Node parses a whole socket read of requests at once) or in parallel over many connections,
 * on the memory store and on Redis. "Evaluated" is what the proxy logged as a failed authentication: every
 * key it looked at and judged is one line, so exactly 5 lines means exactly 5 guesses were evaluated.
 */
const KEY = 'burst-test-proxy-key-0123456789';
const GUESSES = 1000;
/** Where the real key sits in a burst: an attacker who guessed it must still be refused. */
const REAL_KEY_AT = 600;

let redis: RedisServer | undefined;
let database = 0;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});

const STORES = [
  {
    name: 'memory store',
    args: () => [] as string[],
    // Decided synchronously as Node hands each request over: the first failure closes the connection
    // before the next pipelined request is looked at.
    directRounds: [[401], [401], [401], [401], [401], [429], [429], [429]],
  },
  {
    name: 'Redis store',
    // A database of its own per test: a block left by one test must not meet the next.
    args: () => ['--brute-force-store', (redis as RedisServer).url.replace(/\/0$/, `/${++database}`)],
    // A connection's first 8 requests are in flight at once (the per-connection bound), each judged by one
    // atomic script in order: failures 1–5 and three refusals, all in the first round; the connection then
    // closes behind the first answer.
    directRounds: [[401], [429], [429], [429], [429], [429], [429], [429]],
  },
];

/** Body-less requests of every kind an attacker can pipeline: GET, HEAD, POST with Content-Length: 0. */
function guess(i: number, extraHeaders = ''): string {
  const key = i === REAL_KEY_AT ? KEY : `wrong-guess-${i}`;
  const head = ['GET /v1/models', 'HEAD /v1/models', 'POST /v1/chat/completions'][i % 3];
  const length = head?.startsWith('POST') ? 'content-length: 0\r\n' : '';
  return `${head} HTTP/1.1\r\nhost: proxy\r\nauthorization: Bearer ${key}\r\n${extraHeaders}${length}\r\n`;
}

/**
 * Writes `requests` in one write on one connection and returns the status of every answer the server sent
 * before it closed the connection (or before `expected` answers came, then closes it).
 */
function pipelined(url: string, requests: string[], expected = requests.length): Promise<number[]> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    let text = '';
    const statuses = () => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    const socket = connect(Number(port), hostname, () => socket.write(requests.join('')));
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (statuses().length >= expected) socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(statuses()));
  });
}

function failuresLogged(proxy: ProxyProcess): number {
  return proxy
    .stdout()
    .split('\n')
    .filter((line) => line.includes('Authentication failed')).length;
}

describe.each(STORES)('brute-force bursts on the $name', (store) => {
  let proxy: ProxyProcess | undefined;
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });

  it('a pipelined burst on a direct connection: closed after its first answer, exactly 5 judged', async () => {
    // No tarpit: every reconnect is answered, so the test sees each connection's first answer.
    proxy = await startProxyProcess([...store.args(), '--auth-blocked-delay', '0'], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    });
    const burst = Array.from({ length: GUESSES }, (_, i) => guess(i));
    const answers: number[][] = [];
    for (let round = 0; round < 8; round++) answers.push(await pipelined(proxy.url, burst));
    // A refusal closes the connection; the requests pipelined behind it are never judged.
    expect(answers).toEqual(store.directRounds);
    await expect.poll(() => failuresLogged(proxy as ProxyProcess)).toBe(5);
    expect(proxy.stdout()).toContain('Blocked IP 127.0.0.1 for 30s after 5 failed authentication attempts');
  });

  it('a pipelined burst through a trusted proxy: 5 failures, then 429 for the rest, the real key too', async () => {
    proxy = await startProxyProcess(
      [...store.args(), '--auth-blocked-delay', '0', '--trusted-proxy', '127.0.0.1'],
      { LLM_INTERACTIVE_PROXY_API_KEY: KEY },
    );
    const burst = Array.from({ length: GUESSES }, (_, i) => guess(i, 'x-forwarded-for: 203.0.113.9\r\n'));
    const statuses = await pipelined(proxy.url, burst);
    // A trusted proxy's connection carries other clients' requests: it stays open, every request answered.
    expect(statuses).toHaveLength(GUESSES);
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5).every((status) => status === 429)).toBe(true);
    // Log lines reach stdout in batches: wait for them.
    await expect.poll(() => failuresLogged(proxy as ProxyProcess)).toBe(5);
    // Another client behind the same proxy is not affected.
    const other = await pipelined(proxy.url, [
      `GET /v1/models HTTP/1.1\r\nhost: p\r\nauthorization: Bearer ${KEY}\r\nx-forwarded-for: 198.51.100.4\r\n\r\n`,
    ]);
    expect(other).toEqual([200]);
  });

  it('a parallel burst over 300 connections: exactly 5 failures judged, then the real key refused', async () => {
    proxy = await startProxyProcess([...store.args(), '--auth-blocked-delay', '0'], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    });
    const url = proxy.url;
    const statuses = (
      await Promise.all(Array.from({ length: 300 }, (_, i) => pipelined(url, [guess(i)])))
    ).flat();
    expect(statuses).toHaveLength(300);
    expect(statuses.filter((status) => status === 401)).toHaveLength(5);
    expect(statuses.filter((status) => status === 429)).toHaveLength(295);
    expect(await pipelined(url, [guess(REAL_KEY_AT)])).toEqual([429]);
    await expect.poll(() => failuresLogged(proxy as ProxyProcess)).toBe(5);
  });
});

describe('a pipelined flood from one address', () => {
  let proxy: ProxyProcess | undefined;
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });

  /** One connection from `localAddress` writing `requests` at once, until the proxy closes it. */
  function pump(url: string, localAddress: string, requests: string): Promise<void> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve) => {
      const socket = connect({ port: Number(port), host: hostname, localAddress }, () =>
        socket.write(requests),
      );
      socket.on('data', () => undefined);
      socket.on('error', () => undefined);
      socket.once('close', () => resolve());
    });
  }

  function rssMb(pid: number): number {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
  }

  it('neither starves a valid client nor grows memory: 320 connections of 1,000 guesses each', async () => {
    // Default settings (the 1 s tarpit included): what a user runs.
    proxy = await startProxyProcess([], { LLM_INTERACTIVE_PROXY_API_KEY: KEY });
    const { url } = proxy;
    const pid = proxy.child.pid as number;
    const burst = Array.from({ length: GUESSES }, (_, i) => guess(i === REAL_KEY_AT ? 0 : i)).join('');
    let flooding = true;
    let peakRss = rssMb(pid);
    // The attacker is 127.0.0.2 (any 127/8 address is this machine); the valid client 127.0.0.1.
    const attacker = Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 40; i++) {
          await pump(url, '127.0.0.2', burst);
          peakRss = Math.max(peakRss, rssMb(pid));
        }
      }),
    ).finally(() => {
      flooding = false;
    });
    const valid: number[] = [];
    while (flooding && valid.length < 5000) {
      const res = await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } });
      await res.arrayBuffer();
      valid.push(res.status);
    }
    await attacker;
    expect(valid.length).toBeGreaterThan(0);
    expect(valid.every((status) => status === 200)).toBe(true);
    // Before per-connection bounds the same flood took the proxy to 400–870 MB.
    expect(peakRss).toBeLessThan(200);
    await expect.poll(() => failuresLogged(proxy as ProxyProcess)).toBe(5);
    const failures = proxy
      .stdout()
      .split('\n')
      .filter((line) => line.includes('Authentication failed'));
    expect(failures.every((line) => line.includes('"clientAddress":"127.0.0.2"'))).toBe(true);
  });
});
