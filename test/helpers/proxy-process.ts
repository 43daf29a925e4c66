import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface ProxyProcess {
  url: string;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Env for a child proxy: only what the test gives, plus PATH, so the developer's own keys never leak in. */
export function cleanEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '', NODE_ENV: 'test' };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Every proxy a test started: killed when the test worker exits, so a failed test leaves none behind. */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Starts the real CLI on a free loopback port and waits for its "listening" log line. */
export async function startProxyProcess(
  args: string[] = [],
  env: Record<string, string | undefined> = {},
): Promise<ProxyProcess> {
  const child = spawn(process.execPath, [CLI, '--port', '0', '--log-format', 'json', ...args], {
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let watchdog: NodeJS.Timeout | undefined;
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const match = /"msg":"LLM Interactive Proxy listening on (https?:\/\/[^"]+)"/.exec(out);
      if (match?.[1]) {
        // Started: the watchdog is for start-up only and must never kill a proxy in the middle of a test.
        clearTimeout(watchdog);
        child.stdout?.off('data', onData);
        child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => (err += c.toString('utf8')));
    void exited.then((code) =>
      reject(new Error(`proxy exited with ${code} before listening:\n${err}\n${out}`)),
    );
    // The port is read from the info-level banner: a child started above info would never show it.
    watchdog = setTimeout(() => {
      child.kill('SIGKILL'); // never leave a half-started proxy behind
      reject(new Error(`proxy did not log its listening line in time:\n${err}\n${out}`));
    }, 15_000).unref();
  });
  return {
    url,
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /**
   * True when the process did not exit by itself: it began serving (printed its `listening on` line) or was
   * still running at the deadline. Either way it was killed.
   */
  timedOut: boolean;
}

/**
 * Runs the CLI to completion (startup errors, --help, keygen): a config that should fail must exit, and one
 * that wrongly starts serving is killed as soon as it says it listens (or, silent, at `deadlineMs`) and fails
 * the test instead of hanging it. The deadline is generous because only a hang reaches it: fifty CLI starts
 * at once on a loaded two-core machine took over eight seconds each.
 */
export function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  deadlineMs = 25_000,
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: cleanEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, deadlineMs);
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
      if (!timedOut && stdout.includes('listening on')) {
        timedOut = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}
