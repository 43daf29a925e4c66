import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cancellation } from './cancel.js';
import { UpstreamDeadlines } from './deadlines.js';
import { StreamingAnswer } from './dispatch-answers.js';
import { readText, UpstreamHttp } from './http.js';
import type { StreamControl, StreamSink, UpstreamResponse } from './types.js';

/** The proxy's side: its own pools, so nothing is shared with another test file. */
const upstream = new UpstreamHttp({ timeoutMs: 5_000 });

/** A local upstream: `/sse?chunks=N&size=S` streams N events of S bytes; others answer as their name says. */
let server: http.Server;
let origin: string;
/** Resolves when the upstream saw the client close the connection of the last `/sse` before its end. */
let closedEarly: Promise<void> = Promise.resolve();

function event(index: number, size: number): string {
  const head = `data: {"i":${index},"pad":"`;
  const tail = '"}\n\n';
  return head + 'x'.repeat(Math.max(0, size - head.length - tail.length)) + tail;
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname === '/sse') {
      const chunks = Number(url.searchParams.get('chunks'));
      const size = Number(url.searchParams.get('size'));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      closedEarly = new Promise((resolve) => res.once('close', () => !res.writableFinished && resolve()));
      let i = 0;
      const pump = () => {
        while (i < chunks) {
          if (!res.write(event(i++, size))) {
            res.once('drain', pump);
            return;
          }
        }
        res.end('data: [DONE]\n\n');
      };
      pump();
    } else if (url.pathname === '/json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    } else if (url.pathname === '/error-sse') {
      res.writeHead(500, { 'content-type': 'text/event-stream', 'retry-after': '3' });
      res.end('data: {"error":"boom"}\n\n');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await upstream.close();
  await new Promise((resolve) => server.close(resolve));
});

const direct = (path: string, signal = new Cancellation()) =>
  upstream.send({
    url: `${origin}${path}`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: Buffer.from('{"stream":true}'),
    signal,
    backendName: 'test',
    direct: true,
  });

/** Takes a stream into memory; `full(n)` says whether the sink refuses more after its n-th chunk. */
function collect(
  answer: UpstreamResponse,
  full: (n: number) => boolean = () => false,
): { done: Promise<string>; control: StreamControl; writesWhilePaused: () => number; pauses: () => number } {
  const parts: Buffer[] = [];
  let paused = false;
  let pauses = 0;
  let violations = 0;
  let settle: { resolve: (text: string) => void; reject: (err: Error) => void } | undefined;
  const done = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  const sink: StreamSink = {
    write(chunk) {
      if (paused) violations++;
      parts.push(chunk);
      if (!full(parts.length)) return true;
      paused = true;
      pauses++;
      // Resumes a little later, from another turn of the event loop, as a socket's 'drain' would.
      setTimeout(() => {
        paused = false;
        control.resume();
      }, 2);
      return false;
    },
    end: () => settle?.resolve(Buffer.concat(parts).toString('utf8')),
    fail: (err) => settle?.reject(err),
  };
  // Declared after the sink, which calls it only from a later turn of the event loop.
  const control = answer.take!(sink);
  return { done, control, writesWhilePaused: () => violations, pauses: () => pauses };
}

describe('UpstreamHttp.send, direct event streams (taken by one sink)', () => {
  it('hands a 2xx event stream to the sink whole and in order', async () => {
    const answer = await direct('/sse?chunks=20&size=200');
    expect(answer.status).toBe(200);
    expect(answer.contentType).toBe('text/event-stream');
    expect(answer.headers['content-type']).toBe('text/event-stream');
    const text = await collect(answer).done;
    const expected = Array.from({ length: 20 }, (_, i) => event(i, 200)).join('') + 'data: [DONE]\n\n';
    expect(text).toBe(expected);
  });

  it("passes the sink's backpressure back: nothing is written to a full sink until it resumes", async () => {
    const answer = await direct('/sse?chunks=150&size=16384');
    const taken = collect(answer, () => true);
    const text = await taken.done;
    expect(text.length).toBe(150 * 16384 + 'data: [DONE]\n\n'.length);
    expect(taken.pauses()).toBeGreaterThan(10);
    expect(taken.writesWhilePaused()).toBe(0);
  });

  it('reads an answer that is not a 2xx event stream whole, as for a non-streamed call', async () => {
    const json = await direct('/json');
    expect(json.take).toBeUndefined();
    expect(json.bytes?.toString('utf8')).toBe('{"ok":true}');
    const failed = await direct('/error-sse');
    expect(failed.status).toBe(500);
    expect(failed.take).toBeUndefined();
    expect(failed.headers['retry-after']).toBe('3');
    expect(await readText(failed)).toBe('data: {"error":"boom"}\n\n');
  });

  it('dispose() mid-stream aborts the upstream request', async () => {
    const answer = await direct('/sse?chunks=2000&size=16384');
    let control: StreamControl | undefined;
    const failed = new Promise<Error>((resolve) => {
      control = answer.take!({ write: () => false, end: () => undefined, fail: resolve });
    });
    expect(control).toBeDefined();
    answer.dispose();
    await closedEarly;
    expect((await failed).message).toBe('client gone');
  });

  it('the client going away (signal) mid-stream fails the sink and closes the upstream connection', async () => {
    const signal = new Cancellation();
    const answer = await direct('/sse?chunks=2000&size=16384', signal);
    const failed = new Promise<Error>((resolve) => {
      answer.take!({ write: () => false, end: () => undefined, fail: resolve });
    });
    signal.abort();
    await closedEarly;
    await expect(failed).resolves.toBeInstanceOf(Error);
  });

  it('can be iterated instead of taken', async () => {
    const answer = await direct('/sse?chunks=50&size=1000');
    const parts: Buffer[] = [];
    for await (const chunk of answer.body) parts.push(Buffer.from(chunk));
    expect(Buffer.concat(parts).toString('utf8')).toBe(
      Array.from({ length: 50 }, (_, i) => event(i, 1000)).join('') + 'data: [DONE]\n\n',
    );
  });
});

describe('StreamingAnswer', () => {
  it('holds no more than a whole answer’s limit for a stream nobody takes', () => {
    const aborted: Error[] = [];
    let resolved: UpstreamResponse | undefined;
    const answer = new StreamingAnswer(
      new Cancellation(),
      100,
      (r) => (resolved = r),
      () => undefined,
      new UpstreamDeadlines(60_000),
    );
    answer.onConnect((err) => aborted.push(err));
    answer.onHeaders(200, [Buffer.from('content-type'), Buffer.from('text/event-stream')], () => undefined);
    expect(resolved?.take).toBeDefined();
    expect(answer.onData(Buffer.alloc(60))).toBe(true);
    expect(aborted).toEqual([]);
    expect(answer.onData(Buffer.alloc(60))).toBe(false);
    expect(aborted.map((e) => (e as { code?: string }).code)).toEqual(['upstream_too_large']);
  });

  it('hands chunks that waited together to the sink as one, up to 64 KB; a later chunk as it comes', () => {
    let resolved: UpstreamResponse | undefined;
    const answer = new StreamingAnswer(
      new Cancellation(),
      1024 * 1024,
      (r) => (resolved = r),
      () => undefined,
      new UpstreamDeadlines(60_000),
    );
    answer.onConnect(() => undefined);
    answer.onHeaders(200, [Buffer.from('content-type'), Buffer.from('text/event-stream')], () => undefined);
    const events = Array.from({ length: 5 }, (_, i) => Buffer.from(event(i, 30_000)));
    for (const chunk of events.slice(0, 4)) expect(answer.onData(chunk)).toBe(true);
    const written: Buffer[] = [];
    let ended = false;
    resolved!.take!({
      write: (chunk) => written.push(chunk as Buffer) > 0,
      end: () => (ended = true),
      fail: (err) => {
        throw err;
      },
    });
    // 30 KB + 30 KB is under 64 KB, a third reaches it: three joined, then the fourth alone.
    expect(written.map((chunk) => chunk.length)).toEqual([90_000, 30_000]);
    expect(answer.onData(events[4]!)).toBe(true);
    expect(written[2]).toBe(events[4]);
    answer.onComplete();
    expect(ended).toBe(true);
    expect(Buffer.concat(written).equals(Buffer.concat(events))).toBe(true);
  });
});
