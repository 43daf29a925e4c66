import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';

/**
 * Key rotation without a restart (README, "Rotating proxy keys without a restart") against the real CLI: keys
 * file, YAML, SIGHUP, POST /admin/reload. The new key is an admin key (`role=admin` in the keys file): it
 * also asks for the reloads.
 */
const OLD = 'rotation-old-key-0123456789abcdef';
const NEW = 'rotation-new-key-fedcba9876543210';
const YAML_KEY = 'rotation-yaml-key-00112233445566';
const LATER_YAML_KEY = 'rotation-yaml-key-later-77889900';
const PROVIDER_KEY = 'sk-provider-rotation-abcdefghijk';
const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

describe('key rotation without a restart', () => {
  let dir: string;
  let keysFile: string;
  let configFile: string;
  let upstream: FakeProvider;
  let proxy: ProxyProcess;

  /** Replaces a file the way editors and config management do: write aside, then rename over it. */
  const replaceFile = (file: string, text: string) => {
    const aside = `${file}.tmp`;
    writeFileSync(aside, text);
    renameSync(aside, file);
  };

  const status = async (key: string): Promise<number> => {
    const res = await fetch(`${proxy.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
    await res.arrayBuffer();
    return res.status;
  };

  const reload = (key: string) =>
    fetch(`${proxy.url}/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });

  /** Polls: the proxy picks up a changed file on its own schedule (file watch), not the test's. */
  const eventuallyStatus = async (key: string, expected: number, what: string): Promise<void> => {
    await expect.poll(() => status(key), { message: what, timeout: 10_000, interval: 25 }).toBe(expected);
  };

  const errorLines = () =>
    proxy
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .filter((line) => line.level === 50);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lip-rotation-'));
    keysFile = join(dir, 'keys.txt');
    configFile = join(dir, 'config.yaml');
    writeFileSync(keysFile, `# proxy keys\nold:${OLD}\n`);
    writeFileSync(configFile, `auth:\n  api_keys:\n    - name: yaml\n      sha256: ${sha256(YAML_KEY)}\n`);
    upstream = await startFakeProvider();
    // No --trusted-ip: every failure in this file counts, so keep them below the block threshold.
    proxy = await startProxyProcess(['--api-keys-file', keysFile, '--default-backend', 'openai'], {
      CONFIG_FILE: configFile,
      OPENAI_API_KEY: PROVIDER_KEY,
      OPENAI_API_BASE_URL: upstream.baseUrls.openai,
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts with the keys of the file and the YAML', async () => {
    expect(await status(OLD)).toBe(200);
    expect(await status(YAML_KEY)).toBe(200);
  });

  it('picks up a key added to the keys file, without a restart or a signal', async () => {
    replaceFile(keysFile, `old:${OLD}\nnew:sha256:${sha256(NEW)} role=admin\n`);
    await eventuallyStatus(NEW, 200, 'new key after the file changed');
    expect(await status(OLD)).toBe(200);
  });

  it('re-reads the YAML auth.api_keys on SIGHUP', async () => {
    writeFileSync(
      configFile,
      `auth:\n  api_keys:\n    - name: yaml\n      sha256: ${sha256(YAML_KEY)}\n    - name: later\n      key: ${LATER_YAML_KEY}\n`,
    );
    proxy.child.kill('SIGHUP');
    await eventuallyStatus(LATER_YAML_KEY, 200, 'YAML key after SIGHUP');
    expect(proxy.child.exitCode).toBeNull();
  });

  it('lets a stream in flight finish after its key is removed; the key is refused at once after', async () => {
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: OLD, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'fault-hold-rotation',
      stream: true,
      messages: [{ role: 'user', content: 'in flight' }],
    });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();

    replaceFile(keysFile, `new:sha256:${sha256(NEW)} role=admin\n`);
    const res = await reload(NEW);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ reloaded: true, keys: 3 });
    expect(await status(OLD)).toBe(401);

    upstream.release();
    let text = first.value?.choices[0]?.delta.content ?? '';
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      text += next.value.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe('echo: in flight');
  });

  it('keeps the old keys when the file breaks, and logs an ERROR with the line number', async () => {
    replaceFile(keysFile, `new:sha256:${sha256(NEW)} role=admin\nthis line has no name separator\n`);
    await expect.poll(() => errorLines().length, { timeout: 10_000, interval: 25 }).toBeGreaterThan(0);
    expect(errorLines()).toHaveLength(1);
    expect(errorLines()[0]?.msg).toMatch(/line 2/);
    expect(await status(NEW)).toBe(200);

    const res = await reload(NEW);
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('reload_failed');
    expect(body.error.message).toMatch(/line 2/);
    expect(await status(NEW)).toBe(200);

    const health = await fetch(`${proxy.url}/internal/health`, {
      headers: { authorization: `Bearer ${NEW}` },
    });
    expect(((await health.json()) as { auth: Record<string, unknown> }).auth.last_reload_error).toMatch(
      /line 2/,
    );
  });

  it('never writes a key to the logs', () => {
    for (const key of [OLD, NEW, YAML_KEY, LATER_YAML_KEY, PROVIDER_KEY]) {
      expect(proxy.stdout()).not.toContain(key);
      expect(proxy.stderr()).not.toContain(key);
    }
  });
});
