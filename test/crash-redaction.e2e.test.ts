import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLI, cleanEnv, runCli } from './helpers/proxy-process.js';

/**
 * A crash prints nothing unredacted: the real CLI, crashed once it listens (test/fixtures/crash-preload.mjs)
 * with secrets in the error's message, a stack frame, its fields and its cause, at every log level. Every
 * byte it wrote — stdout, stderr, its log file — is searched for them.
 */
const SECRETS = {
  proxy: 'crash-canary-proxy-key-Zq7xW2vB9nL4',
  provider: 'sk-proj-CrashCanaryProviderKey0123456789ab',
  // Only in the keys file: proves the report goes through the running proxy's redactor, not the env's.
  fileKey: 'crash-canary-file-key-Hy3kP8sD1mR6',
};
const PRELOAD = pathToFileURL(join(import.meta.dirname, 'fixtures', 'crash-preload.mjs')).href;
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

interface Crash {
  code: number | null;
  stdout: string;
  stderr: string;
  log: string;
}

function crashProxy(mode: string, level: string): Promise<Crash> {
  const dir = mkdtempSync(join(tmpdir(), 'lip-crash-'));
  const keysFile = join(dir, 'keys');
  const logFile = join(dir, 'proxy.log');
  writeFileSync(keysFile, `file-key:${SECRETS.fileKey}\n`);
  const args = ['--import', PRELOAD, CLI, '--port', '0', '--log-format', 'json', '--log-level', level];
  args.push('--api-keys-file', keysFile, '--log-file', logFile, '--default-backend', 'mock');
  const child = spawn(process.execPath, args, {
    env: cleanEnv({
      LLM_INTERACTIVE_PROXY_API_KEY: SECRETS.proxy,
      OPENAI_API_KEY: SECRETS.provider,
      CRASH_MODE: mode,
      CRASH_SECRETS: JSON.stringify([SECRETS.proxy, SECRETS.provider, SECRETS.fileKey]),
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const deadline = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(deadline);
      let log = '';
      try {
        log = readFileSync(logFile, 'utf8');
      } catch {
        // No line reached the file (a level above every line written).
      }
      resolve({ code, stdout, stderr, log });
    });
  });
}

/** No secret, nor a piece of one long enough to matter, anywhere the process wrote. */
function expectNoSecret(crash: Crash): void {
  const written = `${crash.stdout}\n${crash.stderr}\n${crash.log}`;
  for (const [name, secret] of Object.entries(SECRETS)) {
    expect(written.includes(secret), `${name} in the output`).toBe(false);
    expect(written.includes(secret.slice(8, 24)), `part of ${name} in the output`).toBe(false);
  }
}

describe('a crash prints only redacted text', () => {
  it.each(LEVELS)('uncaught exception at log level %s', async (level) => {
    const crash = await crashProxy('exception', level);
    expect(crash.code).toBe(1);
    expectNoSecret(crash);
    expect(crash.stderr).toMatch(
      /^llm-interactive-proxy: uncaught exception: Error: crash with \*\*\*\* and sk-proj-\*\*\*\* and \*\*\*\*\n {4}at \*\*\*\* /,
    );
    expect(crash.stderr).toContain("detail: '****,sk-proj-****,****'");
    expect(crash.stderr).toContain('because of ****');
    const fatalLines = crash.stdout.split('\n').filter((line) => line.includes('"level":60'));
    if (level === 'silent') expect(fatalLines).toEqual([]);
    else {
      expect(fatalLines).toHaveLength(1);
      expect(JSON.parse(fatalLines[0]!)).toMatchObject({ msg: 'uncaught exception: the proxy stops' });
      expect(crash.log).toContain('uncaught exception: the proxy stops');
    }
  });

  it.each(LEVELS)('unhandled rejection at log level %s', async (level) => {
    const crash = await crashProxy('rejection', level);
    expect(crash.code).toBe(1);
    expectNoSecret(crash);
    expect(crash.stderr).toMatch(
      /^llm-interactive-proxy: unhandled promise rejection: Error: crash with \*\*\*\*/,
    );
  });

  it('a thrown string', async () => {
    const crash = await crashProxy('string', 'info');
    expect(crash.code).toBe(1);
    expectNoSecret(crash);
    expect(crash.stderr).toBe(
      'llm-interactive-proxy: uncaught exception: a thrown string with **** sk-proj-**** ****\n',
    );
  });

  it('a redactor that fails: a fixed message, nothing of the error', async () => {
    const crash = await crashProxy('broken-redactor', 'debug');
    expect(crash.code).toBe(1);
    expectNoSecret(crash);
    expect(crash.stderr).toBe(
      'llm-interactive-proxy: uncaught exception: the error details are withheld: they could not be redacted\n',
    );
  });

  it('a startup error that quotes a secret', async () => {
    const result = await runCli([], {
      OPENAI_API_KEY: SECRETS.provider,
      CONFIG_FILE: `/nonexistent/${SECRETS.provider}/config.yaml`,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'llm-interactive-proxy: config file /nonexistent/sk-proj-****/config.yaml: cannot be read (ENOENT)\n',
    );
  });
});
