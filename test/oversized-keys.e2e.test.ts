import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';

/**
 * Keys of 40 KB through the real CLI. A proxy key that large is refused at startup with one line naming it;
 * a provider key that large is accepted, logging keeps working, and the key shows nowhere.
 */
const KB40 = 40 * 1024;
/** base64 (with `+`, `/`): its JSON and URL forms differ from it. */
const bigSecret = (prefix: string): string =>
  prefix +
  randomBytes(KB40)
    .toString('base64')
    .slice(0, KB40 - prefix.length);
const dir = mkdtempSync(join(tmpdir(), 'lip-oversized-'));
const file = (name: string, content: string): string => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

/** No piece of the key: its start, middle and end (a key cut short would leak all but its tail). */
function expectAbsent(text: string, secret: string, where: string): void {
  for (const at of [0, 16, secret.length >> 1, secret.length - 40]) {
    expect(text.includes(secret.slice(at, at + 32)), `a piece of the key at ${at} in ${where}`).toBe(false);
  }
}

describe('a 40 KB proxy key is refused at startup', () => {
  const key = bigSecret('');
  const strong = 'oversized-test-strong-key-0123456789';

  it.each([
    ['LLM_INTERACTIVE_PROXY_API_KEY', [], { LLM_INTERACTIVE_PROXY_API_KEY: key }, 'env'],
    [
      'API_KEYS',
      [],
      { LLM_INTERACTIVE_PROXY_API_KEY: strong, API_KEYS: `short-ok-key-0123456789,${key}` },
      'API_KEYS[1]',
    ],
    [
      'YAML auth.api_keys {name, key}',
      ['--config', file('named.yaml', `auth:\n  api_keys:\n    - name: pasted\n      key: "${key}"\n`)],
      {},
      'pasted',
    ],
    [
      'YAML auth.api_keys string',
      ['--config', file('plain.yaml', `auth:\n  api_keys:\n    - "${key}"\n`)],
      {},
      'api_keys[0]',
    ],
    ['the keys file', ['--api-keys-file', file('keys', `ci:${strong}\nbig:${key}\n`)], {}, 'big'],
  ])('from %s: exit 1, one line naming the key, never the key', async (_source, args, env, name) => {
    const result = await runCli([...args, '--port', '0'], env);
    expect(result.timedOut).toBe(false);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `llm-interactive-proxy: proxy keys: API key "${name}" is ${KB40} bytes long: a proxy key may be at most ` +
        '1024 bytes (`llm-interactive-proxy keygen` makes a strong 43-character one)\n',
    );
    expectAbsent(result.stdout + result.stderr, key, 'the output');
  });
});

describe('a 40 KB provider key', () => {
  const provider = bigSecret('sk-proj-');
  const custom = bigSecret('');
  const proxyKey = 'oversized-test-proxy-key-Zq7xW2vB9nL4';
  let upstream: FakeProvider;
  let proxy: ProxyProcess;
  let keysFile: string;
  const bodies: string[] = [];
  let reloadAnswer: { status: number; body: string };

  beforeAll(async () => {
    upstream = await startFakeProvider();
    // An admin key (role=admin): the refused reload below is asked for on the operator endpoint.
    keysFile = file('rotating-keys', `ci:${proxyKey} role=admin\n`);
    proxy = await startProxyProcess(
      [
        '--default-backend',
        'mock',
        '--api-keys-file',
        keysFile,
        '--log-level',
        'debug',
        '--log-file',
        join(dir, 'proxy.log'),
        '--capture-file',
        join(dir, 'capture.jsonl'),
      ],
      { OPENAI_API_KEY: provider, OPENAI_API_BASE_URL: upstream.baseUrls.openai, CUSTOM_API_KEY: custom },
    );
    const headers = { authorization: `Bearer ${proxyKey}`, 'content-type': 'application/json' };
    const chat = async (model: string, content: string, stream = false): Promise<void> => {
      const res = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ model, stream, messages: [{ role: 'user', content }] }),
      });
      bodies.push(await res.text());
    };
    // Through the embedded mock, which echoes the prompt; and to the upstream (whose server refuses a 40 KB
    // Authorization header: an upstream error the proxy logs and answers).
    await chat('mock:echo', `my keys: ${provider} and ${custom}`);
    await chat('mock:echo', `streamed ${JSON.stringify(provider)} ${custom}`, true);
    await chat('openai:gpt-4o', `to the upstream ${custom}`);
    // A key over 1 KiB put in the keys file: the reload is refused, the old key stays in use.
    writeFileSync(keysFile, `ci:${proxyKey} role=admin\nbig:${custom}\n`);
    const reload = await fetch(`${proxy.url}/admin/reload`, {
      method: 'POST',
      headers: { authorization: headers.authorization },
    });
    reloadAnswer = { status: reload.status, body: await reload.text() };
    await chat('mock:echo', 'still working after the refused reload');
    expect(await proxy.stop()).toBe(0);
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('keeps logging: an access line for every request, the refused reload, the shutdown', () => {
    const lines = proxy
      .stdout()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as { level: number; msg: string; status?: number; path?: string });
    const access = lines.filter((l) => l.msg === 'request');
    expect(access.map((l) => l.path)).toEqual([
      '/v1/chat/completions',
      '/v1/chat/completions',
      '/v1/chat/completions',
      '/admin/reload',
      '/v1/chat/completions',
    ]);
    expect(access[4]?.status).toBe(200);
    const refused = lines.find((l) => l.msg.startsWith('Proxy keys not reloaded'));
    expect(refused?.level).toBe(50);
    expect(refused?.msg).toContain(`API key "big" is ${KB40} bytes long`);
    expect(lines.at(-1)?.msg).toBe('stopped');
    expect(reloadAnswer.status).toBe(500);
    expect(reloadAnswer.body).toContain('API key \\"big\\" is');
    expect(bodies[0]).toContain('(API_KEY_HAS_BEEN_REDACTED) and (API_KEY_HAS_BEEN_REDACTED)');
  });

  it('never shows the key: stdout, stderr, log file, capture files, responses', () => {
    const written: Record<string, string> = {
      stdout: proxy.stdout(),
      stderr: proxy.stderr(),
      'proxy.log': readFileSync(join(dir, 'proxy.log'), 'utf8'),
      responses: bodies.join('\n') + reloadAnswer.body,
    };
    for (const f of readdirSync(dir).filter((f) => f.startsWith('capture.jsonl'))) {
      written[f] = readFileSync(join(dir, f), 'utf8');
    }
    expect(written['capture.jsonl']?.length).toBeGreaterThan(0);
    for (const [where, text] of Object.entries(written)) {
      expectAbsent(text, provider, where);
      expectAbsent(text, custom, where);
      expectAbsent(text, JSON.stringify(custom).slice(1, -1), where);
      expectAbsent(text, encodeURIComponent(custom), where);
    }
  });
});
