import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigSchema } from '../config/schema.js';
import { ProxyMetrics } from '../observability/metrics.js';
import { freePort } from '../../test/helpers/redis-server.js';
import { registerAuthAdminRoutes, registerKeyReloadRoute } from '../server/admin-routes.js';
import { readYamlApiKeys, setupAuth, type AuthRuntime } from './setup.js';

let dir: string;
const runtimes: AuthRuntime[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lip-auth-setup-'));
});
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((runtime) => runtime.close()));
  rmSync(dir, { recursive: true, force: true });
});

function yaml(text: string): string {
  const file = join(dir, 'config.yaml');
  writeFileSync(file, text);
  return file;
}

function capturingLogger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as { level: number; msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

describe('readYamlApiKeys', () => {
  it('reads auth.api_keys with the startup schema, and nothing else', () => {
    const file = yaml(
      'server:\n  port: 1234\nauth:\n  api_keys:\n    - plain-key-1\n    - {name: ci, sha256: ' +
        'a'.repeat(64) +
        '}\n',
    );
    expect(readYamlApiKeys(file)).toEqual(['plain-key-1', { name: 'ci', sha256: 'a'.repeat(64) }]);
    expect(readYamlApiKeys(yaml('logging:\n  level: info\n'))).toEqual([]);
  });

  it('names the YAML line or the entry that is wrong, never the key', () => {
    expect(() =>
      readYamlApiKeys(yaml('auth:\n  api_keys:\n    - name: a\n     key: secret-value\n')),
    ).toThrow(/line \d/);
    const bad = yaml('auth:\n  api_keys:\n    - {name: ci, sha256: not-hex-secret}\n');
    expect(() => readYamlApiKeys(bad)).toThrow(/auth\.api_keys\.0\.sha256/);
    expect(() => readYamlApiKeys(bad)).not.toThrow(/not-hex-secret/);
  });
});

describe('setupAuth', () => {
  const base = (auth: Record<string, unknown>) => ConfigSchema.parse({ auth });

  it('re-reads the YAML keys on reload and tells listeners; env keys stay', async () => {
    const configFile = yaml('auth:\n  api_keys:\n    - {name: one, key: yaml-key-one}\n');
    const { logger } = capturingLogger();
    const runtime = await setupAuth({
      config: base({ api_keys: [{ name: 'one', key: 'yaml-key-one' }] }),
      env: { LLM_INTERACTIVE_PROXY_API_KEY: 'env-key-0' },
      logger,
      metrics: new ProxyMetrics(),
      redact: (text: string) => text,
      configFile,
    });
    runtimes.push(runtime);
    let changes = 0;
    runtime.onKeysChanged(() => changes++);
    expect(runtime.secrets()).toEqual(['env-key-0', 'yaml-key-one']);

    yaml('auth:\n  api_keys:\n    - {name: two, key: yaml-key-two}\n');
    const app = Fastify();
    app.decorateRequest('authKeyName', null);
    registerAuthAdminRoutes(app, { guard: runtime.guard });
    registerKeyReloadRoute(app, runtime.reloader);
    const res = await app.inject({ method: 'POST', url: '/admin/reload' });
    await app.close();
    expect(res.json()).toEqual({ reloaded: true, keys: 2 });
    expect(changes).toBe(1);
    expect(runtime.secrets()).toEqual(['env-key-0', 'yaml-key-two']);
    expect(runtime.describe()).toBe('on (2 keys)');
  });

  it('warns at a reload when the rest of the file would stop the next start', async () => {
    const configFile = yaml('auth:\n  api_keys:\n    - {name: one, key: yaml-key-one-0123456789}\n');
    const { logger, lines } = capturingLogger();
    const runtime = await setupAuth({
      config: base({ api_keys: [{ name: 'one', key: 'yaml-key-one-0123456789' }] }),
      env: {},
      logger,
      metrics: new ProxyMetrics(),
      redact: (text: string) => text,
      configFile,
    });
    runtimes.push(runtime);
    yaml('auth:\n  bogus: 1\n  api_keys:\n    - {name: two, key: yaml-key-two-0123456789}\n');
    expect(runtime.reloader!.reload('test')).toEqual({ ok: true, keys: 1 });
    expect(lines.map((l) => l.msg)).toContain(
      `Config file ${configFile} would not start the proxy: auth: unknown setting "bogus" (a reload takes only ` +
        'auth.api_keys and auth.policies from it; fix it before the next start)',
    );
  });

  it('refuses a key name given twice across sources, at start and on reload', async () => {
    const start = (env: Record<string, string>, apiKeys: unknown[], keysFile?: string) =>
      setupAuth({
        config: base({ api_keys: apiKeys, ...(keysFile ? { api_keys_file: keysFile } : {}) }),
        env,
        logger: capturingLogger().logger,
        metrics: new ProxyMetrics(),
        redact: (text: string) => text,
      });
    const keysFile = join(dir, 'keys');
    writeFileSync(keysFile, 'env:other-key-of-the-file\n');
    await expect(start({ LLM_INTERACTIVE_PROXY_API_KEY: 'env-key-0' }, [], keysFile)).rejects.toThrow(
      `proxy key name "env" is given twice (LLM_INTERACTIVE_PROXY_API_KEY, then the keys file ${keysFile})`,
    );
    await expect(
      start({}, [
        { name: 'a', key: 'yaml-key-a1' },
        { name: 'a', key: 'yaml-key-a2', role: 'admin' },
      ]),
    ).rejects.toThrow('proxy key name "a" is given twice (auth.api_keys[0], then auth.api_keys[1])');
    writeFileSync(keysFile, 'alice:alice-key-of-the-file\n');
    await expect(start({}, [{ name: 'alice', key: 'yaml-key-alice' }], keysFile)).rejects.toThrow(
      /"alice" is given twice/,
    );

    // A reload that would make two keys one: refused, the keys in use stay.
    writeFileSync(keysFile, 'bob:bob-key-of-the-file\n');
    const runtime = await start({}, [{ name: 'alice', key: 'yaml-key-alice' }], keysFile);
    runtimes.push(runtime);
    writeFileSync(keysFile, 'bob:bob-key-of-the-file\nalice:another-alice-key\n');
    expect(runtime.reloader!.reload('test')).toEqual({
      ok: false,
      error: expect.stringContaining('"alice" is given twice') as unknown,
    });
    expect(runtime.secrets()).toEqual(['yaml-key-alice', 'bob-key-of-the-file']);
  });

  it('refuses a key by a name the proxy gives what is not a key, at reload too: keys file and YAML', async () => {
    const keysFile = join(dir, 'keys');
    writeFileSync(keysFile, 'bob:bob-key-of-the-file\n');
    const configFile = yaml('auth:\n  api_keys:\n    - {name: alice, key: yaml-key-alice}\n');
    const runtime = await setupAuth({
      config: base({ api_keys: [{ name: 'alice', key: 'yaml-key-alice' }], api_keys_file: keysFile }),
      env: {},
      logger: capturingLogger().logger,
      metrics: new ProxyMetrics(),
      redact: (text: string) => text,
      configFile,
    });
    runtimes.push(runtime);
    writeFileSync(keysFile, 'bob:bob-key-of-the-file\ntrusted-ip:a-trusted-key-0123456789\n');
    expect(runtime.reloader!.reload('test')).toEqual({
      ok: false,
      error: expect.stringContaining('keys file line 2: key name "trusted-ip" is reserved') as unknown,
    });
    writeFileSync(keysFile, 'bob:bob-key-of-the-file\n');
    yaml('auth:\n  api_keys:\n    - {name: trusted-ip, key: yaml-key-alice}\n');
    expect(runtime.reloader!.reload('test')).toEqual({
      ok: false,
      error: expect.stringContaining('auth.api_keys.0.name: key name "trusted-ip" is reserved') as unknown,
    });
    expect(runtime.secrets()).toEqual(['yaml-key-alice', 'bob-key-of-the-file']);
  });

  it('starts with an unreachable Redis store, degraded, and says so in readiness and metrics', async () => {
    const { logger, lines } = capturingLogger();
    const metrics = new ProxyMetrics();
    const port = await freePort();
    const runtime = await setupAuth({
      config: base({ brute_force_protection: { store: `redis://:pw-secret@127.0.0.1:${port}/0` } }),
      env: { LLM_INTERACTIVE_PROXY_API_KEY: 'env-key-0' },
      logger,
      metrics,
      redact: (text: string) => text,
    });
    runtimes.push(runtime);
    expect(runtime.readiness()).toEqual({
      enabled: true,
      keys: 1,
      brute_force: {
        enabled: true,
        store: 'redis',
        url: `redis://:****@127.0.0.1:${port}/0`,
        status: 'degraded',
      },
    });
    expect(await metrics.registry.metrics()).toMatch(/^llm_proxy_auth_store_degraded 1$/m);
    expect(lines.filter((line) => line.level === 50)).toHaveLength(1);
    expect(JSON.stringify(lines)).not.toContain('pw-secret');
    expect(JSON.stringify(runtime.bruteForceSummary())).not.toContain('pw-secret');
  });

  it('listens for SIGHUP while running (also with auth disabled) and stops on close', async () => {
    const before = process.listenerCount('SIGHUP');
    const { logger } = capturingLogger();
    const enabled = await setupAuth({
      config: base({}),
      env: { LLM_INTERACTIVE_PROXY_API_KEY: 'env-key-0' },
      logger,
      metrics: new ProxyMetrics(),
      redact: (text: string) => text,
    });
    const disabled = await setupAuth({
      config: base({ disable_auth: true }),
      env: {},
      logger,
      metrics: new ProxyMetrics(),
      redact: (text: string) => text,
    });
    expect(process.listenerCount('SIGHUP')).toBe(before + 2);
    await enabled.close();
    await disabled.close();
    expect(process.listenerCount('SIGHUP')).toBe(before);
  });
});
