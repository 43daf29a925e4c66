import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from '../fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import { backendsAt, parseSseText } from './support.js';

const KEY = 'bounded-proxy-key-0123456789abcdef';
const MAX_DEPTH = 128;
const MiB = 1024 * 1024;

/**
 * One request on a raw socket, its headers first: `body` is sent only once `100 Continue` arrived. Resolves
 * with everything the server wrote until it closed the connection (the request asks it to).
 */
function expectContinueExchange(
  base: string,
  head: string,
  body: string,
): Promise<{ raw: string; sentBody: boolean }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    let raw = '';
    let sentBody = false;
    const socket = connect(Number(port), hostname, () => socket.write(head));
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      raw += chunk;
      if (!sentBody && raw.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
        sentBody = true;
        socket.write(body);
      }
    });
    socket.once('error', reject);
    socket.once('close', () => resolve({ raw, sentBody }));
  });
}

function chatHead(path: string, body: string, extra: string): string {
  return (
    `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nexpect: 100-continue\r\nconnection: close\r\n${extra}\r\n`
  );
}

describe('bounded resources', () => {
  let upstream: FakeProvider;
  let proxy: ProxyProcess;

  beforeAll(async () => {
    upstream = await startFakeProvider();
    proxy = await startProxyProcess(['--default-backend', 'openai'], backendsAt(upstream.url, KEY));
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${proxy.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...headers },
      body,
    });

  it('refuses a body nested deeper than 128 levels with 400, with and without Origin, in each envelope', async () => {
    // Built as text: a test that parsed or stringified 100,000 levels would overflow its own stack.
    const deep = (depth: number) =>
      `{"model":"m","messages":[{"role":"user","content":"x"}],"extra":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    for (const origin of [{}, { origin: 'https://ui.example' }] as Array<Record<string, string>>) {
      // The body's object and the `extra` key add one level to the array's depth.
      const ok = await post('/v1/chat/completions', deep(MAX_DEPTH - 1), origin);
      expect(ok.status).toBe(200);
      const refused = await post('/v1/chat/completions', deep(MAX_DEPTH), origin);
      expect(refused.status).toBe(400);
      expect(await refused.json()).toEqual({
        error: {
          message: 'Request body is nested too deeply (more than 128 levels of arrays and objects)',
          type: 'invalid_request_error',
          code: 'invalid_request',
          param: null,
        },
      });
      const huge = await post('/anthropic/v1/messages', deep(100_000), origin);
      expect(huge.status).toBe(400);
      expect(await huge.json()).toEqual({
        type: 'error',
        error: {
          type: 'invalid_request_error',
          message: 'Request body is nested too deeply (more than 128 levels of arrays and objects)',
        },
      });
    }
  });

  it('cuts a same-protocol stream at an endless line or an endless event, without passing it on', async () => {
    for (const fault of ['endless-line', 'endless-event']) {
      for (const origin of [{}, { origin: 'https://ui.example' }] as Array<Record<string, string>>) {
        const aborted = upstream.aborted;
        const res = await post(
          '/v1/chat/completions',
          JSON.stringify({
            model: `fault-${fault}`,
            stream: true,
            messages: [{ role: 'user', content: 'x' }],
          }),
          origin,
        );
        expect(res.status).toBe(200);
        const text = await res.text();
        // The event is held until it ends (its data must be JSON to pass): it never reaches the client.
        expect(text.length, fault).toBeLessThan(64 * 1024);
        const events = parseSseText(text);
        expect(JSON.parse(events.at(-1)!.data), fault).toEqual({
          error: {
            message: `Backend sent a stream line or event longer than ${MiB} bytes`,
            type: 'server_error',
            code: 'upstream_line_too_long',
            param: null,
          },
        });
        await upstream.waitForAborts(aborted + 1);
      }
    }
  });

  it('cuts a translated stream at an endless line or an endless event, without passing the line on', async () => {
    for (const fault of ['endless-line', 'endless-event']) {
      const aborted = upstream.aborted;
      const res = await post(
        '/anthropic/v1/messages',
        JSON.stringify({
          model: `openai:fault-${fault}`,
          stream: true,
          max_tokens: 16,
          messages: [{ role: 'user', content: 'x' }],
        }),
      );
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text.length, fault).toBeLessThan(64 * 1024);
      const last = parseSseText(text).at(-1)!;
      expect(last.event, fault).toBe('error');
      expect(JSON.parse(last.data).error.message, fault).toBe(
        `Backend sent a stream line or event longer than ${MiB} bytes`,
      );
      await upstream.waitForAborts(aborted + 1);
    }
  });

  it('answers Expect: 100-continue only after authentication, with and without Origin', async () => {
    const body = JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'continued' }] });
    for (const origin of ['', 'origin: https://ui.example\r\n']) {
      for (const credentials of ['authorization: Bearer wrong-key-0123456789\r\n', '']) {
        const refused = await expectContinueExchange(
          proxy.url,
          chatHead('/v1/chat/completions', body, origin + credentials),
          body,
        );
        expect(refused.sentBody).toBe(false);
        expect(refused.raw).toMatch(/^HTTP\/1\.1 401 /);
        expect(refused.raw).not.toContain('100 Continue');
      }
      const accepted = await expectContinueExchange(
        proxy.url,
        chatHead('/v1/chat/completions', body, `${origin}authorization: Bearer ${KEY}\r\n`),
        body,
      );
      expect(accepted.sentBody).toBe(true);
      expect(accepted.raw).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
      expect(accepted.raw).toContain('"content":"echo: continued"');
    }
  });
});
