import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, startProxyProcess } from './helpers/proxy-process.js';

/**
 * Log and capture files are created readable by the proxy's user only, never written through a symbolic
 * link, and files others can read (the keys file above all) are reported at startup.
 */
const KEY = 'private-files-proxy-key-4Tn8';
const mode = (path: string) => statSync(path).mode & 0o777;

describe('private files', () => {
  it('creates the log file, the capture file and rotated captures 0600, in a 0700 directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lip-private-'));
    const logs = join(dir, 'new-dir');
    const proxy = await startProxyProcess(
      [
        '--log-file',
        join(logs, 'proxy.log'),
        '--capture-file',
        join(dir, 'cap.jsonl'),
        '--capture-max-bytes',
        '2000',
        '--capture-max-files',
        '3',
      ],
      { LLM_INTERACTIVE_PROXY_API_KEY: KEY },
    );
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'x'.repeat(500) }] }),
      });
      expect(res.status).toBe(200);
    }
    expect(await proxy.stop()).toBe(0);
    expect(mode(logs)).toBe(0o700);
    expect(mode(join(logs, 'proxy.log'))).toBe(0o600);
    expect(mode(join(dir, 'cap.jsonl'))).toBe(0o600);
    expect(mode(join(dir, 'cap.jsonl.1'))).toBe(0o600);
    expect(proxy.stdout()).not.toContain('can be accessed by');
  });

  it.each([
    ['--log-file', 'log file (--log-file)'],
    ['--capture-file', 'capture file (--capture-file)'],
  ])('refuses to start when %s is a symbolic link, and writes nothing through it', async (flag, what) => {
    const dir = mkdtempSync(join(tmpdir(), 'lip-symlink-'));
    const target = join(dir, 'target.txt');
    writeFileSync(target, 'precious\n');
    const link = join(dir, 'link.log');
    symlinkSync(target, link);
    const result = await runCli([flag, link, '--port', '0'], { LLM_INTERACTIVE_PROXY_API_KEY: KEY });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `llm-interactive-proxy: ${what} ${link} is a symbolic link: refusing to write through it (give the real path)\n`,
    );
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
  });

  it.each([
    ['--log-file', 'log file (--log-file)'],
    ['--capture-file', 'capture file (--capture-file)'],
    ['--usage-file', 'usage file (--usage-file)'],
  ])('refuses to start when %s cannot be written, saying why', async (flag, what) => {
    const dir = mkdtempSync(join(tmpdir(), 'lip-unwritable-'));
    const aFile = join(dir, 'a-file');
    writeFileSync(aFile, '');
    const env = { LLM_INTERACTIVE_PROXY_API_KEY: KEY };
    const isDir = await runCli([flag, dir, '--port', '0'], env);
    expect(isDir.code).toBe(1);
    expect(isDir.stderr).toBe(
      `llm-interactive-proxy: ${what} ${dir} cannot be opened (EISDIR: it is a directory (give the path of a file in it))\n`,
    );
    const underFile = join(aFile, 'x.jsonl');
    const parentIsFile = await runCli([flag, underFile, '--port', '0'], env);
    expect(parentIsFile.code).toBe(1);
    expect(parentIsFile.stderr).toMatch(
      new RegExp(
        `^llm-interactive-proxy: ${what.replace(/[()-]/g, '\\$&')} ${underFile} cannot be opened \\(E(EXIST|NOTDIR): a part of its path is a file, not a directory\\)\n$`,
      ),
    );
  });

  it('warns once at startup about a keys file, log file and directory others can read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lip-loose-'));
    const keysFile = join(dir, 'keys');
    writeFileSync(keysFile, `team:${KEY}\n`);
    chmodSync(keysFile, 0o644);
    const logDir = join(dir, 'logs');
    mkdirSync(logDir);
    chmodSync(logDir, 0o750);
    const logFile = join(logDir, 'proxy.log');
    writeFileSync(logFile, '');
    chmodSync(logFile, 0o640);
    const proxy = await startProxyProcess(['--api-keys-file', keysFile, '--log-file', logFile]);
    expect(await proxy.stop()).toBe(0);
    const warnings = proxy
      .stdout()
      .split('\n')
      .filter((l) => l.includes('can be accessed by'))
      .map((l) => (JSON.parse(l) as { level: number; msg: string }).msg);
    expect(warnings).toEqual([
      `log file (--log-file) ${logFile} can be accessed by its group (mode 640); restrict it: chmod 600 ${logFile}`,
      `directory of the log file (--log-file) ${logDir} can be accessed by its group (mode 750); restrict it: chmod 700 ${logDir}`,
      `API keys file (--api-keys-file) ${keysFile} can be accessed by group and others (mode 644); restrict it: chmod 600 ${keysFile}`,
    ]);
    expect(proxy.stdout()).toMatch(/"level":40,"time":\d+,"msg":"API keys file/);
  });
});
