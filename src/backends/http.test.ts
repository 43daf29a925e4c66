import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyError } from '../proxy-error.js';
import { Cancellation } from './cancel.js';
import { readBytes, readText, UpstreamHttp } from './http.js';

/** The proxy's side: its own pools, so nothing is shared with another test file. */
const upstream = new UpstreamHttp({ timeoutMs: 300 });

/** A local upstream whose behaviour is picked by the path. */
let server: http.Server;
let origin: string;
const held: http.ServerResponse[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    if (req.url === '/json') {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.writeHead(201, { 'content-type': 'application/json', 'X-Upstream': 'yes' });
      res.end('{"ok":"✓"}');
    } else if (req.url === '/huge') {
      res.writeHead(200, { 'content-type': 'application/json' });
      const block = Buffer.alloc(1024 * 1024, 0x20);
      for (let i = 0; i < 33; i++) res.write(block);
      res.end('{}');
    } else if (req.url === '/silent') {
      held.push(res); // never answers
    } else if (req.url === '/stalls') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"partial":');
      held.push(res); // the head and a first chunk, then nothing
    } else if (req.url === '/stalls-sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"n":1}\n\n');
      held.push(res);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of held) res.destroy();
  await upstream.close();
  await new Promise((resolve) => server.close(resolve));
});

const whole = (path: string, signal = new Cancellation()) =>
  upstream.send({
    url: `${origin}${path}`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
    signal,
    backendName: 'test',
    whole: true,
  });

describe('UpstreamHttp.send, whole answers (no body stream)', () => {
  it('gives status, lower-cased headers (repeats as a list) and the bytes, also readable as `body`', async () => {
    const answer = await whole('/json');
    expect(answer.status).toBe(201);
    expect(answer.headers['x-upstream']).toBe('yes');
    expect(answer.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(answer.contentType).toBe('application/json');
    expect(answer.headers['content-type']).toBe('application/json');
    expect(answer.bytes?.toString('utf8')).toBe('{"ok":"✓"}');
    expect(await readText(answer)).toBe('{"ok":"✓"}');
    expect((await readBytes(answer)).equals(Buffer.from('{"ok":"✓"}'))).toBe(true);
    expect(await readText(answer.body)).toBe('{"ok":"✓"}');
    await expect(readText(answer, 4)).rejects.toMatchObject({ status: 502, code: 'upstream_too_large' });
  });

  it('refuses an answer over 32 MB with 502', async () => {
    await expect(whole('/huge')).rejects.toMatchObject({ status: 502, code: 'upstream_too_large' });
  });

  it('gives up with 504 when no answer comes within the timeout', async () => {
    await expect(whole('/silent')).rejects.toMatchObject({ status: 504, code: 'upstream_timeout' });
  });

  it('gives up with 504 when the body stalls after the head', async () => {
    await expect(whole('/stalls')).rejects.toMatchObject({ status: 504, code: 'upstream_timeout' });
  });

  it('fails a stream taken whole that stalls, after what had arrived', async () => {
    const answer = await upstream.send({
      url: `${origin}/stalls-sse`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
      signal: new Cancellation(),
      backendName: 'test',
      direct: true,
    });
    const got: string[] = [];
    const failure = await new Promise<Error>((resolve) => {
      answer.take!({
        write: (chunk) => got.push(chunk.toString('utf8')) > 0,
        end: () => resolve(new Error('ended')),
        fail: resolve,
      });
    });
    expect(got.join('')).toBe('data: {"n":1}\n\n');
    expect((failure as { code?: string }).code).toBe('UND_ERR_BODY_TIMEOUT');
  });

  it('stops with 499 when the client goes away first', async () => {
    const signal = new Cancellation();
    const pending = whole('/silent', signal);
    setTimeout(() => signal.abort(), 20);
    const err = (await pending.catch((e: unknown) => e)) as ProxyError;
    expect(err).toBeInstanceOf(ProxyError);
    expect(err.status).toBe(499);
  });
});

describe('UpstreamHttp.send, streams started a share per turn', () => {
  it('starts every stream of a burst over the following turns, and answers each', async () => {
    const paced = new UpstreamHttp({ timeoutMs: 5_000, streamsPerTurn: 2 });
    try {
      const answers = await Promise.all(
        Array.from({ length: 7 }, () =>
          paced.send({
            url: `${origin}/json`,
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: '{}',
            signal: new Cancellation(),
            backendName: 'test',
          }),
        ),
      );
      const bodies = await Promise.all(answers.map((answer) => readText(answer)));
      expect(answers.map((answer) => answer.status)).toEqual([201, 201, 201, 201, 201, 201, 201]);
      expect(new Set(bodies)).toEqual(new Set(['{"ok":"✓"}']));
    } finally {
      await paced.close();
    }
  });

  it('drops a stream whose client leaves while it waits for its turn (499)', async () => {
    const paced = new UpstreamHttp({ timeoutMs: 5_000, streamsPerTurn: 1 });
    const stream = (signal: Cancellation) =>
      paced.send({
        url: `${origin}/json`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
        signal,
        backendName: 'test',
      });
    try {
      const first = stream(new Cancellation());
      const signal = new Cancellation();
      const second = stream(signal).catch((e: unknown) => e);
      signal.abort();
      const err = (await second) as ProxyError;
      expect(err).toBeInstanceOf(ProxyError);
      expect(err.status).toBe(499);
      expect(await readText(await first)).toBe('{"ok":"✓"}');
    } finally {
      await paced.close();
    }
  });
});
