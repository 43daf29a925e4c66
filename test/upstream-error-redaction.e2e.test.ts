import { readFileSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

/**
 * Backend errors echo keys, and JSON may escape any of their characters: the client, whose SDK decodes the
 * JSON (as the proxy's translator does), must still never see one — in an error body (status >= 400) nor
 * in an error event inside a 200 stream, on the same protocol and translated.
 */
const PROXY_KEY = 'upstream-errors-proxy-key-7Qx2';
const OPENAI_KEY = 'sk-proj-UpstreamEchoKey0123456789abcdefgh';
const ANTHROPIC_KEY = 'opaque-anthropic-provider-key-9Zt4';
const SECRETS = [PROXY_KEY, OPENAI_KEY, ANTHROPIC_KEY];

const escapeAll = (text: string) =>
  [...text].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
const escapeDashes = (text: string) => text.replaceAll('-', '\\u002d');
/** How the backend echoes the key it was sent: escaped, so that only a decoder sees it. */
const echo = (key: string) => `Incorrect API key provided: ${escapeDashes(key)} (${escapeAll(key)})`;

/**
 * One backend for both protocols (OpenAI `/v1/chat/completions`, Anthropic `/v1/messages`); the model
 * says how it fails: `body-json` (401, JSON error), `body-text` (500, plain text), `stream-error` (200
 * stream, one piece of text, then the protocol's error event, written in two pieces cut inside the key).
 */
function startEchoingUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    req.on('end', () => {
      const anthropic = req.url === '/v1/messages';
      const key = anthropic ? ANTHROPIC_KEY : OPENAI_KEY;
      const model = String((JSON.parse(raw) as { model?: unknown }).model);
      if (model === 'body-json') {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(
          anthropic
            ? `{"type":"error","error":{"type":"authentication_error","message":"${echo(key)}"}}`
            : `{"error":{"message":"${echo(key)}","type":"invalid_request_error","code":"invalid_api_key"}}`,
        );
      } else if (model === 'body-text') {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`upstream broke while checking ${key}`);
      } else {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const error = anthropic
          ? `event: error\ndata: {"type":"error","error":{"type":"api_error","message":"${echo(key)}"}}\n\n`
          : `data: {"error":{"message":"${echo(key)}","type":"server_error"}}\n\n`;
        const first = anthropic
          ? 'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"x","content":[],"usage":{"input_tokens":1,"output_tokens":0}}}\n\n' +
            'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n' +
            'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"partial"}}\n\n'
          : 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"x","choices":[{"index":0,"delta":{"role":"assistant","content":"partial"},"finish_reason":null}]}\n\n';
        const cut = error.indexOf('\\u') + 20;
        res.write(first + error.slice(0, cut), () => res.end(error.slice(cut)));
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    }),
  );
}

/** Every string a JSON reader sees in `text`: JSON bodies and each SSE data line, decoded, keys included. */
function decoded(text: string): string {
  const docs = text.trimStart().startsWith('{')
    ? [text]
    : text
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6));
  const out: string[] = [text];
  for (const doc of docs) {
    JSON.parse(doc, (key, value: unknown) => {
      out.push(key);
      if (typeof value === 'string') out.push(value);
      return value;
    });
  }
  return out.join('\n');
}

type Client = 'openai' | 'anthropic';
const CLIENTS: Record<Client, { path: string; body: (model: string, stream: boolean) => object }> = {
  openai: {
    path: '/v1/chat/completions',
    body: (model, stream) => ({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
  },
  anthropic: {
    path: '/anthropic/v1/messages',
    body: (model, stream) => ({ model, stream, max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }),
  },
};

describe('upstream errors are redacted after decoding, same protocol and translated', () => {
  let upstream: Awaited<ReturnType<typeof startEchoingUpstream>>;
  let proxy: ProxyProcess;
  let dir: string;
  const seen: string[] = [];

  const ask = async (client: Client, model: string, stream = false) => {
    const res = await fetch(`${proxy.url}${CLIENTS[client].path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PROXY_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(CLIENTS[client].body(model, stream)),
    });
    const text = await res.text();
    seen.push(text);
    return { status: res.status, text, all: decoded(text) };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lip-upstream-errors-'));
    upstream = await startEchoingUpstream();
    proxy = await startProxyProcess(
      ['--default-backend', 'openai', '--capture-file', join(dir, 'cap.jsonl')],
      {
        LLM_INTERACTIVE_PROXY_API_KEY: PROXY_KEY,
        OPENAI_API_KEY: OPENAI_KEY,
        OPENAI_API_BASE_URL: `${upstream.url}/v1`,
        ANTHROPIC_API_KEY: ANTHROPIC_KEY,
        ANTHROPIC_API_BASE_URL: `${upstream.url}/v1`,
      },
    );
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it.each([
    ['openai', 'body-json', 'same protocol'],
    ['anthropic', 'openai:body-json', 'translated'],
    ['anthropic', 'anthropic:body-json', 'same protocol'],
    ['openai', 'anthropic:body-json', 'translated'],
  ] as const)('a JSON error body with an escaped key: %s client, %s (%s)', async (client, model, _path) => {
    const answer = await ask(client, model);
    expect(answer.status).toBe(401);
    for (const secret of SECRETS) expect(answer.all).not.toContain(secret);
    const mask = model.includes('anthropic') ? '****' : 'sk-proj-****';
    expect(answer.all).toContain(`Incorrect API key provided: ${mask} (${mask})`);
  });

  it.each([
    ['openai', 'body-text'],
    ['anthropic', 'openai:body-text'],
  ] as const)('a text error body: %s client, %s', async (client, model) => {
    const answer = await ask(client, model);
    expect(answer.status).toBe(500);
    for (const secret of SECRETS) expect(answer.all).not.toContain(secret);
  });

  it.each([
    ['openai', 'stream-error', 'same protocol'],
    ['anthropic', 'anthropic:stream-error', 'same protocol'],
    ['anthropic', 'openai:stream-error', 'translated'],
    ['openai', 'anthropic:stream-error', 'translated'],
  ] as const)('an error event inside a 200 stream: %s client, %s (%s)', async (client, model, _path) => {
    const answer = await ask(client, model, true);
    expect(answer.status).toBe(200);
    expect(answer.all).toContain('partial');
    for (const secret of SECRETS) expect(answer.all).not.toContain(secret);
    expect(answer.all).toMatch(/Incorrect API key provided: (sk-proj-)?\*\*\*\*/);
  });

  it('keeps the escaped keys out of the capture too', async () => {
    expect(await proxy.stop()).toBe(0);
    const capture = readFileSync(join(dir, 'cap.jsonl'), 'utf8');
    const strings: string[] = [];
    for (const line of capture.trim().split('\n')) {
      JSON.parse(line, (key, value: unknown) => {
        strings.push(key);
        if (typeof value === 'string') {
          strings.push(value);
          // A payload that is itself JSON (an error body, a stream's data) is read once more.
          for (const doc of value.split('\n').map((l) => l.replace(/^data: /, ''))) {
            try {
              JSON.parse(doc, (k, v: unknown) => (strings.push(k, typeof v === 'string' ? v : ''), v));
            } catch {
              // Not JSON: searched as it is.
            }
          }
        }
        return value;
      });
    }
    expect(seen.length).toBe(10);
    const all = strings.join('\n');
    for (const secret of SECRETS) expect(all).not.toContain(secret);
  });
});
