import http from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { responseHead, writeStream } from './respond.js';

/** A loopback server whose one handler streams `source()` with writeStream. */
async function serve(source: (res: http.ServerResponse) => AsyncIterable<Uint8Array | string>): Promise<{
  url: string;
  /** The server's side of the (one) answer, once a request came in. */
  answer: Promise<http.ServerResponse>;
  done: Promise<void>;
  close: () => Promise<void>;
}> {
  let finished: (() => void) | undefined;
  const done = new Promise<void>((resolve) => (finished = resolve));
  let answering: ((res: http.ServerResponse) => void) | undefined;
  const answer = new Promise<http.ServerResponse>((resolve) => (answering = resolve));
  const server = http.createServer((_req, res) => {
    answering?.(res);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    void writeStream(res, source(res)).then(finished);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    answer,
    done,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

describe('writeStream', () => {
  it('writes every chunk, strings and bytes, then ends the answer', async () => {
    const s = await serve(async function* () {
      yield 'data: 1\n\n';
      yield new TextEncoder().encode('data: 2\n\n');
      yield 'data: é\n\n';
    });
    stop = s.close;
    const res = await fetch(s.url);
    expect(await res.text()).toBe('data: 1\n\ndata: 2\n\ndata: é\n\n');
    await s.done;
  });

  it('waits for a slow reader instead of buffering: the source is pulled only as the client reads', async () => {
    let produced = 0;
    let pulledWhileFull = 0;
    const chunk = 'x'.repeat(64 * 1024);
    const s = await serve(async function* (res) {
      for (let i = 0; i < 400; i++) {
        // The source is asked for more only after the response drained what it held.
        if (res.writableNeedDrain) pulledWhileFull++;
        produced++;
        yield chunk;
      }
    });
    stop = s.close;
    const { port } = new URL(s.url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    socket.pause();
    // 400 chunks are 25 MB; with the client not reading, only what fits in the socket buffers is pulled:
    // once the response asks for 'drain', writeStream waits for it and takes nothing more from the source.
    const res = await s.answer;
    await expect.poll(() => res.writableNeedDrain, { timeout: 10_000 }).toBe(true);
    expect(produced).toBeLessThan(200);
    const everything = new Promise<void>((resolve) => {
      let text = '';
      socket.on('data', (d: Buffer) => {
        text = (text + d.toString('latin1')).slice(-16);
        if (text.endsWith('\r\n0\r\n\r\n')) resolve();
      });
    });
    socket.resume();
    await s.done;
    await everything;
    expect(produced).toBe(400);
    expect(pulledWhileFull).toBe(0);
    socket.destroy();
  });

  it('returns the source (its finally runs) when the client goes away mid-answer', async () => {
    let cleanedUp = false;
    let release: (() => void) | undefined;
    const s = await serve(async function* () {
      try {
        yield 'data: first\n\n';
        // Held until the test lets it go: the client leaves meanwhile.
        await new Promise<void>((resolve) => (release = resolve));
        yield 'data: never read\n\n';
        yield 'data: never made\n\n';
      } finally {
        cleanedUp = true;
      }
    });
    stop = s.close;
    const controller = new AbortController();
    const res = await fetch(s.url, { signal: controller.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const answer = await s.answer;
    const left = new Promise((resolve) => answer.once('close', resolve));
    controller.abort();
    await left;
    release?.();
    await s.done;
    expect(cleanedUp).toBe(true);
  });

  it('destroys the response when the source throws', async () => {
    const s = await serve(async function* () {
      yield 'data: 1\n\n';
      throw new Error('source broke');
    });
    stop = s.close;
    // Whether the head got out first or not, the client never sees a complete answer.
    await expect(fetch(s.url).then((res) => res.text())).rejects.toThrow();
    await s.done;
  });

  it('ends the answer only once the state store holds what it wrote (state.storing)', async () => {
    let stored: (() => void) | undefined;
    const state = { storing: new Promise<void>((resolve) => (stored = resolve)) };
    let ended = false;
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.once('finish', () => (ended = true));
      void writeStream(
        res,
        (async function* () {
          yield 'data: 1\n\n';
        })(),
        state,
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    stop = () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('data: 1\n\n');
    // The source is done; the write to the store is not: the answer stays open.
    await new Promise((resolve) => setImmediate(resolve));
    expect(ended).toBe(false);
    stored?.();
    expect((await reader.read()).done).toBe(true);
    expect(ended).toBe(true);
  });
});

describe('responseHead', () => {
  const to = (dropped?: readonly string[]) => ({
    res: undefined as unknown as http.ServerResponse,
    id: 'req-1',
    url: '/v1/chat/completions',
    baseHeaders: { 'x-content-type-options': 'nosniff' },
    state: { start: performance.now(), backendMs: 0, backend: null, model: null, dropped },
  });

  it('names the fields dropped with notice in x-proxy-dropped', () => {
    const head = responseHead(to(['metadata', 'tools[1](web_search)']), { 'content-type': 'x/y' });
    expect(head['x-proxy-dropped']).toBe('metadata, tools[1](web_search)');
    expect(head['x-request-id']).toBe('req-1');
    expect(head['content-type']).toBe('x/y');
  });

  it('sends no x-proxy-dropped header when nothing was dropped', () => {
    expect('x-proxy-dropped' in responseHead(to(), undefined)).toBe(false);
  });

  it("carries the key's rate-limit headers, which an upstream error's own replace", () => {
    const limited = to();
    const state = limited.state as typeof limited.state & { limitHeaders?: Record<string, string> };
    state.limitHeaders = {
      'x-ratelimit-limit-requests': '10',
      'x-ratelimit-remaining-requests': '9',
      'x-ratelimit-reset-requests': '1m0s',
    };
    const head = responseHead(limited, { 'x-ratelimit-limit-requests': '500' });
    expect(head['x-ratelimit-limit-requests']).toBe('500');
    expect(head['x-ratelimit-remaining-requests']).toBe('9');
    expect(head['x-ratelimit-reset-requests']).toBe('1m0s');
    expect(head['x-request-id']).toBe('req-1');
    expect('x-ratelimit-limit-requests' in responseHead(to(), undefined)).toBe(false);
  });
});
