// Starts the benchmark's servers as child processes (each with its own event loop and CPU time, apart from
// the load generator) and makes sure none outlives the benchmark: children are killed on normal exit,
// on an error and on Ctrl-C.
import { fork, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ADMIN_KEY, PROXY_KEY, UPSTREAM_KEY } from './constants.mjs';

const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const REPO_DIR = path.dirname(BENCH_DIR);
const PROJECT_MAIN = path.join(REPO_DIR, 'dist', 'cli', 'main.js');
const STARTUP_TIMEOUT_MS = 20_000;
const LISTENING = /listening on http:\/\/127\.0\.0\.1:(\d+)/;

// Settings a developer may have exported in their shell that would change what the project proxy does
// (capture on, auth off, another log level, extra keys): the benchmark measures the documented setup.
const PROJECT_ENV_OVERRIDES = [
  'CAPTURE_FILE',
  'CONFIG_FILE',
  'DISABLE_AUTH',
  'LOG_LEVEL',
  'LOG_FILE',
  'LOG_FORMAT',
  'API_KEYS',
  'API_KEYS_FILE',
  'LLM_BACKEND',
  'TRUSTED_IPS',
  'TRUSTED_PROXIES',
  'BRUTE_FORCE_PROTECTION_ENABLED',
  'BRUTE_FORCE_MAX_FAILED_ATTEMPTS',
  'BRUTE_FORCE_TTL_SECONDS',
  'BRUTE_FORCE_INITIAL_BLOCK_SECONDS',
  'BRUTE_FORCE_BLOCK_MULTIPLIER',
  'BRUTE_FORCE_MAX_BLOCK_SECONDS',
  'BRUTE_FORCE_MAX_TRACKED',
  'BRUTE_FORCE_STORE',
  'APP_HOST',
  'APP_PORT',
];

const children = new Set();

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Kills every child still running. Synchronous, so it also works from an 'exit' handler. */
export function killAll(signal = 'SIGKILL') {
  for (const child of children) {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

let cleanupInstalled = false;
/** Kills the children however the benchmark ends. */
export function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', () => killAll());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      console.error(`\nbench: ${signal}, stopping child processes`);
      killAll();
      process.exit(130);
    });
  }
}

function waitForExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return Promise.race([
    new Promise((resolve) => child.once('exit', () => resolve(true))),
    sleep(ms).then(() => false),
  ]);
}

/** Asks a child to stop (SIGTERM: the project shuts down gracefully), then kills it after graceMs. */
export async function stopChild(child, graceMs = 5_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (!(await waitForExit(child, graceMs))) {
    child.kill('SIGKILL');
    await waitForExit(child, 1_000);
  }
}

/** Forks one of the bench's own scripts; resolves with its first IPC message (it sends one when ready). */
function forkChild(script, env, { args = [], execArgv = [] } = {}) {
  const child = track(
    fork(path.isAbsolute(script) ? script : path.join(BENCH_DIR, script), args, {
      env: { ...process.env, ...env },
      execArgv,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    }),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start`)), STARTUP_TIMEOUT_MS);
    child.once('message', (msg) => {
      clearTimeout(timer);
      resolve({ child, msg });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with code ${code} before it was ready`));
    });
  });
}

/** Forks one of the bench's own servers (or a peer); it reports its port over IPC once listening. */
export async function forkServer(script, env, options) {
  const { child, msg } = await forkChild(script, env, options);
  return { child, pid: child.pid, origin: `http://127.0.0.1:${msg.port}` };
}

export function startMock({ streamChunks }) {
  return forkServer('mock-upstream.mjs', { MOCK_STREAM_CHUNKS: String(streamChunks) });
}

/** Forks the attack scenario's attacker (lib/attacker.mjs): a load generator of its own, driven over IPC. */
export async function startAttacker() {
  const { child } = await forkChild('lib/attacker.mjs', {});
  return { child, pid: child.pid };
}

/** Forks the many-streams row's quick client (lib/quick-client.mjs): a client process of its own, driven over IPC. */
export async function startQuickClient() {
  const { child } = await forkChild('lib/quick-client.mjs', {});
  return { child, pid: child.pid };
}

export function startPassthrough({ upstreamOrigin }) {
  return forkServer('passthrough.mjs', {
    PASSTHROUGH_UPSTREAM: upstreamOrigin,
    PASSTHROUGH_KEY: PROXY_KEY,
    PASSTHROUGH_UPSTREAM_KEY: UPSTREAM_KEY,
  });
}

/**
 * Starts the project proxy as users run it: auth on, log level info, JSON logs, capture off, the openai
 * backend pointed at the mock. Its stdout (the log) goes to logFile rather than a pipe, so that neither a
 * full pipe nor the benchmark's own event loop (busy generating load) can slow it down.
 */
export async function startProject({
  upstreamOrigin,
  logFile,
  nodeArgs = [],
  extraArgs = [],
  extraEnv = {},
  main = PROJECT_MAIN,
}) {
  if (!existsFile(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
  const env = { ...process.env };
  for (const name of PROJECT_ENV_OVERRIDES) delete env[name];
  Object.assign(env, {
    LLM_INTERACTIVE_PROXY_API_KEY: PROXY_KEY,
    LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
    OPENAI_API_KEY: UPSTREAM_KEY,
    OPENAI_API_BASE_URL: `${upstreamOrigin}/v1`,
    ...extraEnv,
  });
  const logFd = openSync(logFile, 'w');
  const args = [
    ...nodeArgs,
    main,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--log-format',
    'json',
    '--log-level',
    'info',
    '--default-backend',
    'openai',
    ...extraArgs,
  ];
  const child = track(
    spawn(process.execPath, args, { env, cwd: REPO_DIR, stdio: ['ignore', logFd, 'pipe'] }),
  );
  closeSync(logFd);
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    if (stderr.length < 16_384) stderr += chunk;
  });

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`project proxy exited with code ${child.exitCode}: ${stderr.trim() || '(no stderr)'}`);
    }
    const match = LISTENING.exec(readFileSync(logFile, 'utf8'));
    if (match) return { child, pid: child.pid, origin: `http://127.0.0.1:${match[1]}`, stderr: () => stderr };
    await sleep(50);
  }
  throw new Error(`project proxy did not log its listening address within ${STARTUP_TIMEOUT_MS} ms`);
}

function existsFile(file) {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Resident set size of a process in MB, from /proc (Linux). */
export function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
  return kb / 1024;
}

/** CPU time (user + system) a process has used so far, in seconds, from /proc (Linux; 10 ms ticks). */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, inside parentheses): utime is 14th, stime 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
