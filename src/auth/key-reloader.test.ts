import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { registerKeyReloadRoute } from '../server/admin-routes.js';
import { KeyReloader, type ReloadLogger } from './key-reloader.js';
import { hashKey, parseKeysFile, type KeyEntry } from './keys.js';

interface Logged {
  level: 'info' | 'error';
  obj: object;
  msg: string;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A keys file in a fresh directory, and a reloader over it plus one fixed (env-like) key. */
function setup(initialText: string, options: { watch?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'lip-keys-'));
  const file = join(dir, 'keys.txt');
  writeFileSync(file, initialText);
  const envKeys: KeyEntry[] = [{ name: 'env', key: 'env-key-0123456789' }];
  const load = () => [...envKeys, ...parseKeysFile(readFileSync(file, 'utf8'))];
  const logs: Logged[] = [];
  const log: ReloadLogger = {
    info: (obj, msg) => logs.push({ level: 'info', obj, msg }),
    error: (obj, msg) => logs.push({ level: 'error', obj, msg }),
  };
  const reloader = new KeyReloader({
    initial: load(),
    load,
    log,
    watchFile: options.watch ? file : undefined,
    debounceMs: 20,
  });
  cleanups.push(() => {
    reloader.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, file, reloader, logs };
}

async function eventually(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('KeyReloader', () => {
  it('swaps in the new keys on reload: a removed key stops working at once', () => {
    const { file, reloader, logs } = setup('alice:alice-key-0001\n');
    const before = reloader.keys;
    expect(before.verify('alice-key-0001')).toBe('alice');

    writeFileSync(file, `bob:sha256:${hashKey('bob-key-0002')}\n`);
    expect(reloader.reload('test')).toEqual({ ok: true, keys: 2 });
    expect(reloader.keys.verify('alice-key-0001')).toBeNull();
    expect(reloader.keys.verify('bob-key-0002')).toBe('bob');
    expect(reloader.keys.verify('env-key-0123456789')).toBe('env');
    // A request that already holds the previous set is not affected.
    expect(before.verify('alice-key-0001')).toBe('alice');
    expect(logs).toEqual([
      {
        level: 'info',
        obj: { trigger: 'test', keys: 2, added: ['bob'], removed: ['alice'] },
        msg: 'Proxy keys reloaded (test): 2 keys',
      },
    ]);
  });

  it('keeps the old keys on a bad file and logs an ERROR with the line number, never the key', () => {
    const { file, reloader, logs } = setup('alice:alice-key-0001\n');
    writeFileSync(file, '# rotated\nalice:alice-key-0001\nbroken-line-with-secret-xyz\n');
    const result = reloader.reload('test');
    expect(result).toEqual({ ok: false, error: expect.stringContaining('line 3') });
    expect(reloader.keys.verify('alice-key-0001')).toBe('alice');
    expect(reloader.lastReloadError).toContain('line 3');
    expect(logs).toHaveLength(1);
    expect(logs[0]?.level).toBe('error');
    expect(logs[0]?.msg).toContain('line 3');
    expect(JSON.stringify(logs)).not.toContain('secret-xyz');
    expect(JSON.stringify(logs)).not.toContain('alice-key-0001');
  });

  it('refuses a reload that would leave no key', () => {
    const logs: string[] = [];
    let entries: KeyEntry[] = [{ name: 'a', key: 'a-key' }];
    const reloader = new KeyReloader({
      initial: entries,
      load: () => entries,
      log: { info: () => undefined, error: (_obj, msg) => logs.push(msg) },
      signal: null,
    });
    entries = [];
    expect(reloader.reload('test')).toEqual({ ok: false, error: 'no proxy key would be left' });
    expect(reloader.keys.verify('a-key')).toBe('a');
    expect(logs).toHaveLength(1);
  });

  it('tells listeners after a successful reload only, and exposes the plaintext keys in use', () => {
    const { file, reloader } = setup('alice:alice-key-0001\n');
    let calls = 0;
    reloader.onChange(() => calls++);
    writeFileSync(file, 'carol:carol-key-0003\n');
    reloader.reload('test');
    writeFileSync(file, 'nonsense\n');
    reloader.reload('test');
    expect(calls).toBe(1);
    expect(reloader.secrets()).toEqual(['env-key-0123456789', 'carol-key-0003']);
  });

  it('reloads on SIGHUP once started, and stops listening when closed', () => {
    const { file, reloader } = setup('alice:alice-key-0001\n');
    reloader.start();
    writeFileSync(file, 'dave:dave-key-0004\n');
    process.emit('SIGHUP', 'SIGHUP');
    expect(reloader.keys.verify('dave-key-0004')).toBe('dave');
    reloader.close();
    writeFileSync(file, 'erin:erin-key-0005\n');
    process.emit('SIGHUP', 'SIGHUP');
    expect(reloader.keys.verify('erin-key-0005')).toBeNull();
  });

  it('reloads when the watched file is rewritten or replaced (as editors do)', async () => {
    const { dir, file, reloader } = setup('alice:alice-key-0001\n', { watch: true });
    reloader.start();
    writeFileSync(file, 'alice:alice-key-0001\nfrank:frank-key-0006\n');
    await eventually(() => reloader.keys.verify('frank-key-0006') === 'frank', 'the rewritten file');

    const replacement = join(dir, 'keys.txt.tmp');
    writeFileSync(replacement, 'grace:grace-key-0007\n');
    renameSync(replacement, file);
    await eventually(() => reloader.keys.verify('grace-key-0007') === 'grace', 'the replaced file');
    expect(reloader.keys.verify('alice-key-0001')).toBeNull();
  });

  it('logs a broken watched file once and keeps the old keys', async () => {
    const { file, reloader, logs } = setup('alice:alice-key-0001\n', { watch: true });
    reloader.start();
    writeFileSync(file, 'alice:alice-key-0001\n:no-name\n');
    await eventually(() => logs.some((l) => l.level === 'error'), 'the ERROR');
    expect(logs.find((l) => l.level === 'error')?.msg).toContain('line 2');
    expect(reloader.keys.verify('alice-key-0001')).toBe('alice');
  });
});

describe('POST /admin/reload', () => {
  it('answers the key count, or 500 with the error while the old keys stay', async () => {
    const { file, reloader } = setup('alice:alice-key-0001\n');
    const app = Fastify();
    cleanups.push(() => void app.close());
    app.decorateRequest('authKeyName', null);
    registerKeyReloadRoute(app, reloader);

    writeFileSync(file, 'alice:alice-key-0001\nbob:bob-key-0002\n');
    const ok = await app.inject({ method: 'POST', url: '/admin/reload' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ reloaded: true, keys: 3 });

    writeFileSync(file, 'alice:alice-key-0001\nbob\n');
    const failed = await app.inject({ method: 'POST', url: '/admin/reload' });
    expect(failed.statusCode).toBe(500);
    expect(failed.json().error.code).toBe('reload_failed');
    expect(failed.json().error.message).toContain('line 2');
    expect(failed.body).not.toContain('alice-key-0001');
    expect(reloader.keys.size).toBe(3);
  });

  it('answers 400 when authentication is disabled', async () => {
    const app = Fastify();
    cleanups.push(() => void app.close());
    registerKeyReloadRoute(app, null);
    const res = await app.inject({ method: 'POST', url: '/admin/reload' });
    expect(res.statusCode).toBe(400);
  });
});

describe('KeyReloader: oversized and weak keys', () => {
  const strong = 'strong-env-key-0123456789abcdef';

  function reloaderOver(initial: KeyEntry[]) {
    let entries = initial;
    const logs: Array<{ level: string; obj: object; msg: string }> = [];
    const log: ReloadLogger = {
      info: (obj, msg) => logs.push({ level: 'info', obj, msg }),
      warn: (obj, msg) => logs.push({ level: 'warn', obj, msg }),
      error: (obj, msg) => logs.push({ level: 'error', obj, msg }),
    };
    const reloader = new KeyReloader({ initial, load: () => entries, log, signal: null });
    return { reloader, logs, set: (next: KeyEntry[]) => (entries = next) };
  }

  it('refuses a key over 1 KiB at construction (startup), naming it', () => {
    const big = 'B'.repeat(40 * 1024);
    expect(() => reloaderOver([{ name: 'huge', key: big }])).toThrow(/^API key "huge" is 40960 bytes long/);
  });

  it('keeps the old keys when a reload brings a key over 1 KiB, and logs an ERROR without it', () => {
    const { reloader, logs, set } = reloaderOver([{ name: 'env', key: strong }]);
    const big = `${'C'.repeat(2000)}-tail`;
    set([
      { name: 'env', key: strong },
      { name: 'pasted', key: big },
    ]);
    const result = reloader.reload('test');
    expect(result).toEqual({
      ok: false,
      error: expect.stringContaining('API key "pasted" is 2005 bytes long'),
    });
    expect(reloader.keys.verify(strong)).toBe('env');
    expect(reloader.keys.size).toBe(1);
    expect(logs.map((l) => l.level)).toEqual(['error']);
    expect(JSON.stringify(logs)).not.toContain('CCCCCCCC');
  });

  it('warns once per weak key at startup, by name, and on reload only for keys newly weak', () => {
    const { reloader, logs, set } = reloaderOver([
      { name: 'env', key: strong },
      { name: 'tiny', key: 'abc' },
      { name: 'docs', key: 'your-secret-proxy-key' },
    ]);
    expect(logs).toEqual([
      {
        level: 'warn',
        obj: { keyName: 'tiny' },
        msg: expect.stringMatching(/^Proxy key "tiny" is weak: it is shorter than 20/),
      },
      {
        level: 'warn',
        obj: { keyName: 'docs' },
        msg: expect.stringMatching(/^Proxy key "docs" is weak: it is an example key/),
      },
    ]);
    expect(logs.every((l) => l.msg.includes('llm-interactive-proxy keygen'))).toBe(true);
    logs.length = 0;
    // The same weak keys again: no new warning. A weak key changed, and a new one: one warning each.
    set([
      { name: 'env', key: strong },
      { name: 'tiny', key: 'abd' },
      { name: 'docs', key: 'your-secret-proxy-key' },
      { name: 'new', sha256: hashKey('shared-team-key') },
    ]);
    expect(reloader.reload('test').ok).toBe(true);
    expect(logs.filter((l) => l.level === 'warn').map((l) => l.obj)).toEqual([
      { keyName: 'tiny' },
      { keyName: 'new' },
    ]);
    expect(JSON.stringify(logs)).not.toMatch(/"abc"|"abd"|your-secret-proxy-key|shared-team-key/);
  });
});

describe('KeyReloader: keys configured by their digest', () => {
  const hashed = 'hashed-key-0123456789abc';
  const other = 'other-key-0123456789abcd';

  it('learns a key when it is presented, for the redactor, and keeps it while its digest is configured', () => {
    const { file, reloader } = setup(`ci:sha256:${hashKey(hashed)}\nops:sha256:${hashKey(other)}\n`);
    let changes = 0;
    reloader.onSecretsChanged(() => changes++);
    expect(reloader.secrets()).toEqual(['env-key-0123456789']);

    const grant = reloader.keys.grant(hashed)!;
    expect(grant).toMatchObject({ keyName: 'ci', hashed: true });
    reloader.learn(grant, hashed);
    expect(reloader.secrets()).toEqual(['env-key-0123456789', hashed]);
    expect(changes).toBe(1);
    // Presented again: nothing changes, no listener called.
    reloader.learn(reloader.keys.grant(hashed)!, hashed);
    expect(changes).toBe(1);
    // A plaintext key's grant is never learnt (the redactor has it already).
    const plain = reloader.keys.grant('env-key-0123456789')!;
    expect(plain.hashed).toBe(false);
    reloader.learn(plain, 'env-key-0123456789');
    expect(changes).toBe(1);

    // A reload that keeps ci's digest keeps the key learnt; one that drops it forgets it.
    writeFileSync(file, `ci:sha256:${hashKey(hashed)}\n`);
    expect(reloader.reload('test').ok).toBe(true);
    expect(reloader.secrets()).toEqual(['env-key-0123456789', hashed]);
    expect(changes).toBe(2);
    writeFileSync(file, `ops:sha256:${hashKey(other)}\n`);
    expect(reloader.reload('test').ok).toBe(true);
    expect(reloader.secrets()).toEqual(['env-key-0123456789']);
  });
});
