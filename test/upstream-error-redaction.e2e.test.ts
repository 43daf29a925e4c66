import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

/**
 * Backend errors echo keys, and JSON may escape any of their characters: the client, whose SDK decodes the
 * JSON (as the proxy's translator does), must still never see one — in an error body (status >= 400) nor
 * in an error event inside a 200 stream, on the same protocol and translated. The fake provider's `key-in-*`
 * faults echo the key they received: escaped (dashes as \u002d, then every character), and in a stream
 * cut inside an escape (test/fake-provider/README.md).
 */
const PROXY_KEY = 'upstream-errors-proxy-key-7Qx2';
const OPENAI_KEY = 'sk-proj-UpstreamEchoKey0123456789abcdefgh';
const ANTHROPIC_KEY = 'opaque-anthropic-provider-key-9Zt4';
const SECRETS = [PROXY_KEY, OPENAI_KEY, ANTHROPIC_KEY];

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
  let upstream: FakeProvider;
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
    // One piece before a stream's error event: the whole answer text, so the client is seen to get it.
    upstream = await startFakeProvider({ chunks: 1 });
    proxy = await startProxyProcess(
      ['--default-backend', 'openai', '--capture-file', join(dir, 'cap.jsonl')],
      {
        LLM_INTERACTIVE_PROXY_API_KEY: PROXY_KEY,
        OPENAI_API_KEY: OPENAI_KEY,
        OPENAI_API_BASE_URL: upstream.baseUrls.openai,
        ANTHROPIC_API_KEY: ANTHROPIC_KEY,
        ANTHROPIC_API_BASE_URL: upstream.baseUrls.anthropic,
      },
    );
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it.each([
    ['openai', 'fault-key-in-error', 'same protocol'],
    ['anthropic', 'openai:fault-key-in-error', 'translated'],
    ['anthropic', 'anthropic:fault-key-in-error', 'same protocol'],
    ['openai', 'anthropic:fault-key-in-error', 'translated'],
  ] as const)('a JSON error body with an escaped key: %s client, %s (%s)', async (client, model, _path) => {
    const answer = await ask(client, model);
    expect(answer.status).toBe(401);
    for (const secret of SECRETS) expect(answer.all).not.toContain(secret);
    const mask = model.includes('anthropic') ? '****' : 'sk-proj-****';
    expect(answer.all).toContain(`Incorrect API key provided: ${mask} (${mask})`);
  });

  it.each([
    ['openai', 'fault-key-in-error-text'],
    ['anthropic', 'openai:fault-key-in-error-text'],
  ] as const)('a text error body: %s client, %s', async (client, model) => {
    const answer = await ask(client, model);
    expect(answer.status).toBe(500);
    for (const secret of SECRETS) expect(answer.all).not.toContain(secret);
  });

  it.each([
    ['openai', 'fault-key-in-stream-error', 'same protocol'],
    ['anthropic', 'anthropic:fault-key-in-stream-error', 'same protocol'],
    ['anthropic', 'openai:fault-key-in-stream-error', 'translated'],
    ['openai', 'anthropic:fault-key-in-stream-error', 'translated'],
  ] as const)('an error event inside a 200 stream: %s client, %s (%s)', async (client, model, _path) => {
    const answer = await ask(client, model, true);
    expect(answer.status).toBe(200);
    expect(answer.all).toContain('echo: hi');
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
