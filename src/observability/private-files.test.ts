import {
  closeSync,
  existsSync,
  fstatSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../config/config-error.js';
import { loosePermissionWarnings, makePrivateDirectory, openPrivateAppend } from './private-files.js';

const root = mkdtempSync(join(tmpdir(), 'lip-private-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o777;

describe('makePrivateDirectory', () => {
  it('makes every missing level, each private, and leaves an existing one alone', () => {
    makePrivateDirectory(join(root, 'a', 'b', 'c'));
    for (const dir of ['a', 'a/b', 'a/b/c']) expect(mode(join(root, dir)), dir).toBe(0o700);
    makePrivateDirectory(join(root, 'a', 'b'));
    expect(mode(join(root, 'a', 'b'))).toBe(0o700);
  });

  it('throws when a part of the path is a file', () => {
    writeFileSync(join(root, 'plain'), '');
    expect(() => makePrivateDirectory(join(root, 'plain', 'x'))).toThrow(/ENOTDIR/);
  });
});

describe('openPrivateAppend', () => {
  it('creates the file private, in private directories, and appends', () => {
    const path = join(root, 'logs', 'proxy.log');
    const fd = openPrivateAppend('log file (--log-file)', path);
    try {
      expect(fstatSync(fd).mode & 0o777).toBe(0o600);
    } finally {
      closeSync(fd);
    }
    expect(mode(join(root, 'logs'))).toBe(0o700);
  });

  it('refuses a symbolic link, naming the setting', () => {
    const link = join(root, 'link.log');
    symlinkSync(join(root, 'elsewhere.log'), link);
    expect(() => openPrivateAppend('capture file (--capture-file)', link)).toThrow(
      new ConfigError(
        `capture file (--capture-file) ${link} is a symbolic link: refusing to write through it (give the real path)`,
      ),
    );
  });

  it('names a directory given for a file', () => {
    expect(() => openPrivateAppend('log file (--log-file)', root)).toThrow(
      `log file (--log-file) ${root} cannot be opened (EISDIR: it is a directory (give the path of a file in it))`,
    );
  });

  // Node's recursive mkdir never returns here: the proxy hung at startup instead of saying why.
  it.runIf(existsSync('/proc/self'))('answers at once for a directory /proc will not make', () => {
    expect(() => openPrivateAppend('log file (--log-file)', '/proc/nope/proxy.log')).toThrow(
      'log file (--log-file) /proc/nope/proxy.log cannot be opened (ENOENT: a directory on its path cannot be created there)',
    );
  });
});

describe('loosePermissionWarnings', () => {
  it('names a file others can read and its directory, once each', () => {
    const dir = join(root, 'open');
    makePrivateDirectory(dir);
    const file = join(dir, 'usage.jsonl');
    writeFileSync(file, '', { mode: 0o644 });
    expect(
      loosePermissionWarnings([
        { what: 'usage file (--usage-file)', path: file, directory: true },
        { what: 'usage file (--usage-file)', path: file, directory: true },
      ]),
    ).toEqual([
      `usage file (--usage-file) ${file} can be accessed by group and others (mode 644); restrict it: chmod 600 ${file}`,
    ]);
  });
});
