/**
 * The real coding agents (Claude Code, Gemini CLI, Codex CLI, opencode) as the tests and the recorder drive
 * them: where the pinned install lives, and per agent how to point it at one base URL with one key, offline,
 * in a throw-away home. README.md beside this file says how they are installed and why there.
 *
 * Plain JavaScript so that `node scripts/…` runs it as it is; index.d.mts types it for the tests.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The pins: package.json and its lock beside this file. */
export const MANIFEST = join(HERE, 'package.json');
export const LOCK = join(HERE, 'package-lock.json');

/**
 * Where the pinned agents are installed: `$LIP_AGENTS_DIR`, else a folder of the user's cache named after the
 * lock's hash, so that every clone and worktree of one machine shares one install of the same pins.
 */
export function agentsDir(env = process.env) {
  if (env.LIP_AGENTS_DIR) return env.LIP_AGENTS_DIR;
  const hash = createHash('sha256').update(readFileSync(LOCK)).digest('hex').slice(0, 12);
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'llm-interactive-proxy', `agents-${hash}`);
}

/** Written into the install folder once `npm ci` there has succeeded. */
export const INSTALLED_MARKER = '.installed';

/** The path on the given root where an agent's package lookups go instead of a registry (a 404). */
export const REGISTRY_SINK = '/npm-registry-is-off/';

/** The prompt every agent is given: the fake provider answers it with a shell call of `echo hi`. */
export const PROMPT = 'Run echo hi';

/**
 * Per agent: its npm package and binary, the protocol it speaks (the proxy front-end it needs), the base URL
 * it wants for a server root (`root` is e.g. `http://127.0.0.1:1234`, or the proxy's protocol prefix), and
 * `setup`: its arguments, environment and config files (paths relative to the throw-away home), given the
 * agent's base URL, its key, the home and the root its package lookups go to.
 * Every switch that would make it reach the network on its own is off; how that was checked is in
 * test/fixtures/clients/README.md.
 */
export const AGENTS = {
  claude: {
    package: '@anthropic-ai/claude-code',
    bin: 'claude',
    protocol: 'anthropic',
    baseUrl: (root) => root,
    setup: ({ baseUrl, apiKey }) => ({
      args: ['-p', PROMPT, '--allowedTools', 'Bash'],
      env: {
        ANTHROPIC_BASE_URL: baseUrl,
        ANTHROPIC_API_KEY: apiKey,
        DISABLE_TELEMETRY: '1',
        DISABLE_ERROR_REPORTING: '1',
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      },
      files: {},
    }),
  },
  gemini: {
    package: '@google/gemini-cli',
    bin: 'gemini',
    protocol: 'gemini',
    baseUrl: (root) => root,
    setup: ({ baseUrl, apiKey }) => ({
      // A model named on the command line: without one, a classifier call picks it first (slow, retried).
      args: ['-p', PROMPT, '--yolo', '-m', 'gemini-2.5-flash'],
      env: {
        GEMINI_API_KEY: apiKey,
        GOOGLE_GEMINI_BASE_URL: baseUrl,
        GEMINI_CLI_TRUST_WORKSPACE: 'true',
      },
      files: {
        '.gemini/settings.json': JSON.stringify({
          security: { auth: { selectedType: 'gemini-api-key' } },
          privacy: { usageStatisticsEnabled: false },
          telemetry: { enabled: false },
          general: { disableAutoUpdate: true, disableUpdateNag: true },
        }),
      },
    }),
  },
  codex: {
    package: '@openai/codex',
    bin: 'codex',
    protocol: 'responses',
    baseUrl: (root) => `${root}/v1`,
    setup: ({ baseUrl, apiKey, home }) => ({
      // gpt-5.5: a model Codex knows whose tools are plain `tools` (newer defaults nest them in `input`).
      args: [
        'exec',
        '--skip-git-repo-check',
        '--dangerously-bypass-approvals-and-sandbox',
        '-m',
        'gpt-5.5',
        PROMPT,
      ],
      env: { CODEX_HOME: join(home, '.codex'), LIP_AGENT_API_KEY: apiKey },
      files: {
        // Plugins off: with them on, Codex looks up github.com and chatgpt.com at start.
        '.codex/config.toml': [
          'model_provider = "lip"',
          'check_for_update_on_startup = false',
          '',
          '[model_providers.lip]',
          'name = "LLM Interactive Proxy"',
          `base_url = ${JSON.stringify(baseUrl)}`,
          'env_key = "LIP_AGENT_API_KEY"',
          'wire_api = "responses"',
          '',
          '[analytics]',
          'enabled = false',
          '',
          '[otel]',
          'exporter = "none"',
          '',
          '[features]',
          'plugins = false',
          'remote_plugin = false',
          '',
        ].join('\n'),
      },
    }),
  },
  opencode: {
    package: 'opencode-ai',
    bin: 'opencode',
    protocol: 'openai',
    baseUrl: (root) => `${root}/v1`,
    setup: ({ baseUrl, apiKey, sinkRoot }) => ({
      args: ['run', PROMPT],
      env: {
        OPENCODE_DISABLE_AUTOUPDATE: '1',
        OPENCODE_DISABLE_MODELS_FETCH: '1',
        OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
        OPENCODE_DISABLE_DEFAULT_PLUGINS: '1',
        OPENCODE_DISABLE_SHARE: '1',
        OPENCODE_PURE: '1',
        // Its embedded package manager, should it look anything up, asks loopback (a 404), never a registry.
        NPM_CONFIG_REGISTRY: `${sinkRoot}${REGISTRY_SINK}`,
        BUN_CONFIG_REGISTRY: `${sinkRoot}${REGISTRY_SINK}`,
      },
      files: {
        '.config/opencode/opencode.json': JSON.stringify({
          $schema: 'https://opencode.ai/config.json',
          autoupdate: false,
          share: 'disabled',
          model: 'lip/gpt-4.1',
          provider: {
            lip: {
              npm: '@ai-sdk/openai-compatible',
              name: 'LLM Interactive Proxy',
              options: { baseURL: baseUrl, apiKey },
              models: { 'gpt-4.1': { name: 'gpt-4.1', tool_call: true } },
            },
          },
          permission: { bash: 'allow', edit: 'deny', webfetch: 'deny' },
        }),
      },
    }),
  },
};

/** The installed binary of an agent; throws, saying how to install, when the pinned install is missing. */
export function agentBin(name, env = process.env) {
  const dir = agentsDir(env);
  const bin = join(dir, 'node_modules', '.bin', AGENTS[name].bin);
  if (!existsSync(join(dir, INSTALLED_MARKER)) || !existsSync(bin)) {
    throw new Error(
      `the coding agents are not installed in ${dir}: run \`node scripts/agents/install.mjs\` ` +
        '(scripts/install-test-deps.sh does)',
    );
  }
  return bin;
}

/** The installed version of an agent's package, as its package.json says. */
export function agentVersion(name, env = process.env) {
  const manifest = join(agentsDir(env), 'node_modules', AGENTS[name].package, 'package.json');
  return JSON.parse(readFileSync(manifest, 'utf8')).version;
}

/** Agent processes still running: killed (their whole group) when this process exits. */
const running = new Set();
process.once('exit', () => {
  for (const pid of running) killGroup(pid);
});

function killGroup(pid) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * Runs one agent once against `root` (a server root; the agent's own suffix is added) with `apiKey` (package
 * lookups go to `sinkRoot`, default `root`, under REGISTRY_SINK), in a
 * fresh home and working folder that are removed afterwards. The agent runs in its own process group, with
 * only PATH from this environment, no stdin, and is killed with its children at `deadlineMs` and when it
 * exits (nothing it started outlives it). `wrapper` is a command line to run it under (e.g. strace).
 */
export async function runAgent(
  name,
  { root, apiKey, sinkRoot = root, deadlineMs = 60_000, env: extraEnv = {}, wrapper = [] },
) {
  const agent = AGENTS[name];
  const bin = agentBin(name);
  const base = mkdtempSync(join(tmpdir(), `lip-agent-${name}-`));
  const home = join(base, 'home');
  const work = join(base, 'work');
  const scratch = join(base, 'tmp');
  for (const dir of [home, work, scratch]) mkdirSync(dir, { recursive: true });
  const { args, env, files } = agent.setup({ baseUrl: agent.baseUrl(root), apiKey, home, sinkRoot });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(home, path)), { recursive: true });
    writeFileSync(join(home, path), text);
  }
  const childEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    TMPDIR: scratch,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_STATE_HOME: join(home, '.local', 'state'),
    XDG_CACHE_HOME: join(home, '.cache'),
    ...env,
    ...extraEnv,
  };
  try {
    return await new Promise((resolve, reject) => {
      const [command, ...rest] = [...wrapper, bin, ...args];
      const child = spawn(command, rest, {
        cwd: work,
        env: childEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      running.add(child.pid);
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child.pid);
      }, deadlineMs);
      child.stdout.on('data', (c) => (stdout += c.toString('utf8')));
      child.stderr.on('data', (c) => (stderr += c.toString('utf8')));
      child.once('error', (error) => {
        clearTimeout(timer);
        running.delete(child.pid);
        reject(error);
      });
      // Whatever it left running in its group goes with it (and lets its pipes close).
      child.once('exit', () => killGroup(child.pid));
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        running.delete(child.pid);
        resolve({ code, signal, stdout, stderr, timedOut });
      });
    });
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
