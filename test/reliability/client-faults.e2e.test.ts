import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from '../fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import {
  CLIENT_FRONTS,
  FRONTS,
  chatRequest,
  classify,
  envelopeMessage,
  eventually,
  exchange,
  fdCount,
  type Front,
  backendsAt,
} from './support.js';

const KEY = 'client-faults-proxy-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };
const MAX_BODY = 64 * 1024;

function openSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Head of a chat POST written by hand, so a test can stop anywhere inside the request. */
function head(path: string, length: number | 'chunked', extra = ''): string {
  const framing = length === 'chunked' ? 'transfer-encoding: chunked' : `content-length: ${length}`;
  return `POST ${path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\n${framing}\r\n${extra}\r\n`;
}

/** The proxy still answers a plain chat call on every front-end after clients walked out on it. */
async function stillServing(url: string): Promise<void> {
  for (const front of FRONTS) {
    const after = await exchange(url, front, chatRequest(front, 'openai:m', false, 'still here?'), AUTH);
    expect(after.outcome, front).toEqual({
      kind: 'answer',
      status: 200,
      text: 'echo: still here?',
      streamed: false,
    });
  }
}

/** Resolves with everything the server wrote once it closes the connection. */
function closed(socket: Socket): Promise<string> {
  let got = '';
  socket.on('data', (chunk: Buffer) => (got += chunk.toString('utf8')));
  socket.on('error', () => undefined);
  return new Promise((resolve) => socket.once('close', () => resolve(got)));
}

describe('faults from clients', () => {
  let upstream: FakeProvider;
  let proxy: ProxyProcess;
  const pid = () => proxy.child.pid as number;

  beforeAll(async () => {
    upstream = await startFakeProvider();
    proxy = await startProxyProcess(
      [
        '--default-backend',
        'openai',
        // Longer than any test may run: only the client's disconnect, never this timeout, ends held requests.
        '--timeout',
        '120',
        '--max-body-bytes',
        String(MAX_BODY),
        '--client-headers-timeout',
        '1',
        '--client-request-timeout',
        '3',
        '--disable-brute-force-protection',
      ],
      backendsAt(upstream.url, KEY),
    );
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('a client that disconnects mid-request reaches no backend and leaks nothing', async () => {
    const before = upstream.received;
    const baseline = fdCount(pid());
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const front = FRONTS[i % 3] as Front;
          const req = chatRequest(front, 'openai:m', false);
          const socket = await openSocket(proxy.url);
          const done = closed(socket);
          socket.write(head(req.path, req.body.length) + req.body.slice(0, 10));
          setTimeout(() => socket.destroy(), 5);
          await done;
        }),
      );
    }
    expect(upstream.received).toBe(before);
    expect(
      await eventually(
        () => fdCount(pid()),
        (n) => n <= baseline + 5,
      ),
    ).toBeLessThanOrEqual(baseline + 5);
    expect((await fetch(`${proxy.url}/health`)).status).toBe(200);
  });

  it('a client that disconnects while the backend has not answered yet aborts the backend request', async () => {
    const abortedBefore = upstream.aborted;
    await Promise.all(
      FRONTS.map(async (front) => {
        const controller = new AbortController();
        const req = chatRequest(front, `${front}:fault-no-head`, false);
        const pending = fetch(`${proxy.url}${req.path}`, {
          method: 'POST',
          headers: { ...AUTH, 'content-type': 'application/json' },
          body: req.body,
          signal: controller.signal,
        }).catch((err: unknown) => err);
        await eventually(
          () => upstream.inFlight(),
          (n) => n > 0,
        );
        controller.abort();
        expect(await pending).toBeInstanceOf(Error);
      }),
    );
    // `no-head` never answers and --timeout outlasts the test: only the disconnects can close these requests.
    await upstream.waitForAborts(abortedBefore + 3);
    expect(
      await eventually(
        () => upstream.inFlight(),
        (n) => n === 0,
      ),
    ).toBe(0);
    await stillServing(proxy.url);
  });

  it('a client that disconnects mid-stream aborts the backend stream, for every front-end and backend', async () => {
    const abortedBefore = upstream.aborted;
    const pairs = FRONTS.flatMap((front) => FRONTS.map((back) => [front, back] as const));
    await Promise.all(
      pairs.map(async ([front, back]) => {
        const controller = new AbortController();
        const req = chatRequest(front, `${back}:fault-hold`, true, 'abort me');
        const res = await fetch(`${proxy.url}${req.path}`, {
          method: 'POST',
          headers: { ...AUTH, 'content-type': 'application/json' },
          body: req.body,
          signal: controller.signal,
        });
        expect(res.status).toBe(200);
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        const first = await reader.read();
        expect(first.done).toBe(false);
        controller.abort();
        await reader.cancel().catch(() => undefined);
      }),
    );
    // `hold` waits for release(), never called here, and --timeout outlasts the test: only aborts end them.
    await upstream.waitForAborts(abortedBefore + pairs.length);
    expect(
      await eventually(
        () => upstream.inFlight(),
        (n) => n === 0,
      ),
    ).toBe(0);
    await stillServing(proxy.url);
  });

  it('a very slow but steady body is still served', async () => {
    const req = chatRequest('anthropic', 'openai:slow', false, 'sent slowly');
    const socket = await openSocket(proxy.url);
    const answer = closed(socket);
    socket.write(head(req.path, req.body.length, 'connection: close\r\n'));
    const pieces = 8;
    const size = Math.ceil(req.body.length / pieces);
    for (let i = 0; i < req.body.length; i += size) {
      socket.write(req.body.slice(i, i + size));
      await new Promise((resolve) => setTimeout(resolve, 120));
    }
    const raw = await answer;
    expect(raw).toMatch(/^HTTP\/1\.1 200 /);
    expect(raw).toContain('echo: sent slowly');
  });

  it('hundreds of stalled connections neither starve a real client nor stay open past the client timeouts', async () => {
    const baseline = fdCount(pid());
    const req = chatRequest('openai', 'openai:m', false);
    const kinds = {
      silent: () => '',
      'partial headers': () => 'POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\nx-slow: ',
      'partial body': () => head(req.path, req.body.length) + req.body.slice(0, 5),
    };
    const stalled = await Promise.all(
      Object.entries(kinds).flatMap(([kind, opening]) =>
        Array.from({ length: 100 }, async () => {
          const socket = await openSocket(proxy.url);
          socket.write(opening());
          return { kind, socket, answer: closed(socket) };
        }),
      ),
    );
    let closedEarly = 0;
    for (const s of stalled) void s.answer.then(() => (closedEarly += 1));

    // A real client, streamed and not, while all 300 stalled connections are still open.
    const whole = await exchange(
      proxy.url,
      'openai',
      chatRequest('openai', 'openai:m', false, 'still here'),
      AUTH,
    );
    const streamed = await exchange(
      proxy.url,
      'gemini',
      chatRequest('gemini', 'anthropic:m', true, 'me too'),
      AUTH,
    );
    expect(closedEarly).toBe(0);
    expect(whole.outcome, JSON.stringify(whole.outcome)).toMatchObject({
      kind: 'answer',
      text: 'echo: still here',
    });
    expect(streamed.outcome, JSON.stringify(streamed.outcome)).toMatchObject({
      kind: 'answer',
      text: 'echo: me too',
    });

    // Then the server's header (1 s) and request (3 s) timeouts close every one of them with a 408.
    const answers = await Promise.all(stalled.map((s) => s.answer));
    for (const [i, raw] of answers.entries()) {
      expect(raw, `${stalled[i]?.kind}`).toMatch(/^(HTTP\/1\.1 408 |$)/);
    }
    expect(
      await eventually(
        () => fdCount(pid()),
        (n) => n <= baseline + 10,
      ),
    ).toBeLessThanOrEqual(baseline + 10);
    expect((await fetch(`${proxy.url}/health`)).status).toBe(200);
  });

  // The Responses API's front-end too (passed through to the openai backend).
  for (const front of CLIENT_FRONTS) {
    it(`${front}: a body over --max-body-bytes gets 413 in the ${front} envelope, declared or chunked`, async () => {
      const before = upstream.received;
      const req = chatRequest(front, 'openai:m', false, 'x'.repeat(MAX_BODY + 1000));
      const declared = await exchange(proxy.url, front, req, AUTH);
      expect(declared.outcome).toEqual({
        kind: 'error',
        status: 413,
        message: 'Request body is too large',
        streamed: false,
      });

      // Chunked, with no length announced: the limit is enforced while reading.
      const socket = await openSocket(proxy.url);
      const answer = closed(socket);
      socket.write(head(req.path, 'chunked', 'connection: close\r\n'));
      for (let i = 0; i < req.body.length; i += 8192) {
        const piece = req.body.slice(i, i + 8192);
        socket.write(`${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`);
      }
      socket.end('0\r\n\r\n');
      const raw = await answer;
      expect(raw).toMatch(/^HTTP\/1\.1 413 /);
      expect(envelopeMessage(front, JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)))).toMatch(/too large/);
      expect(upstream.received).toBe(before);
    });

    it(`${front}: deep, huge, prototype-polluting and wrongly typed bodies get a 4xx in the ${front} envelope`, async () => {
      const { path } = chatRequest(front, 'openai:m', false);
      const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
      const valid = JSON.parse(chatRequest(front, 'openai:m', false).body) as Record<string, unknown>;
      const withExtra = (extra: string) => `${JSON.stringify(valid).slice(0, -1)},"extra":${extra}}`;
      const bodies: Array<[string, string, string]> = [
        ['deep arrays', 'application/json', withExtra(deep(20_000))],
        [
          'deep content',
          'application/json',
          chatRequest(front, 'openai:m', false, 'x').body.replace('"x"', deep(5_000)),
        ],
        ['huge array', 'application/json', withExtra(`[${'0,'.repeat(25_000)}0]`)],
        ['__proto__', 'application/json', withExtra('1').replace('"extra"', '"__proto__"')],
        [
          'constructor.prototype',
          'application/json',
          withExtra('{"prototype":{"x":1}}').replace('"extra"', '"constructor"'),
        ],
        ['truncated JSON', 'application/json', '{"model": "m", "messages": ['],
        ['a JSON array', 'application/json', '[1,2,3]'],
        ['JSON null', 'application/json', 'null'],
        ['text/plain', 'text/plain', 'hello'],
        ['form', 'application/x-www-form-urlencoded', 'model=m'],
        ['multipart', 'multipart/form-data; boundary=x', '--x--'],
        ['no content type', '', JSON.stringify(valid)],
        ['binary', 'application/octet-stream', '\u0000\u0001\u0002'],
      ];
      // The others may pass (unknown fields are kept); they just must not break anything.
      const MUST_REFUSE = new Set([
        'truncated JSON',
        'a JSON array',
        'JSON null',
        'text/plain',
        'form',
        'multipart',
        'binary',
      ]);
      for (const [label, type, body] of bodies) {
        const res = await fetch(`${proxy.url}${path}`, {
          method: 'POST',
          headers: { ...AUTH, ...(type ? { 'content-type': type } : {}) },
          body,
        });
        const text = await res.text();
        const outcome = classify(front, res.status, res.headers.get('content-type') ?? '', text);
        // A body the proxy could pass on may succeed; anything else is the client's error, never a 5xx.
        expect(res.status, `${label}: ${text.slice(0, 200)}`).toBeLessThan(500);
        expect(outcome.kind, `${label}: ${text.slice(0, 200)}`).not.toBe('malformed');
        if (MUST_REFUSE.has(label)) expect(res.status, label).toBeGreaterThanOrEqual(400);
      }
      expect((await fetch(`${proxy.url}/health`)).status).toBe(200);
    });
  }

  it('garbage on the wire gets a 4xx and the server carries on', async () => {
    for (const garbage of [
      'GARBAGE\r\n\r\n',
      'GET / HTTP/9.9\r\n\r\n',
      `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nhost: x\r\n\r\n`,
      'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
      'GET /health HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n',
      '\u0000\u0001\u0002\u0003\r\n\r\n',
    ]) {
      const socket = await openSocket(proxy.url);
      const answer = closed(socket);
      socket.end(garbage);
      expect(await answer, JSON.stringify(garbage.slice(0, 40))).toMatch(/^HTTP\/1\.1 4\d\d /);
    }
    expect((await fetch(`${proxy.url}/health`)).status).toBe(200);
  });
});
