#!/usr/bin/env node
// First: the young generation's cap must be in place before the other modules load (see the module).
import './young-generation-first.js';
import { CommanderError } from 'commander';
import { generateProxyKey } from '../auth/keys.js';
import { ConfigError } from '../config/config-error.js';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { ConfigSchema } from '../config/schema.js';
import { installFatalHandlers, UNREDACTED_ERROR_WITHHELD } from '../observability/fatal.js';
import { Redactor, collectEnvSecrets } from '../redaction/redactor.js';
import { startProxy } from '../server/start.js';
import { collectWhenIdle } from './idle-collect.js';

const DEFAULTS = ConfigSchema.parse({});

function defaultAt(key: string): unknown {
  return key
    .split('.')
    .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], DEFAULTS);
}

let envRedactor: Redactor | undefined;
/**
 * The redactor for whatever is printed on the way out (startup errors, crashes): the proxy's own once it has
 * one (it knows the keys from every source and follows rotation), until then one of the environment's.
 */
let exitRedactor: () => Redactor = () => (envRedactor ??= new Redactor(collectEnvSecrets(process.env)));
/** The log, once there is one: a crash is also written there. */
let exitLog: ((what: string, redactedText: string) => void) | undefined;

/** `text` redacted, or the fixed notice if the redactor fails: never raw text. */
function redacted(text: string): string {
  try {
    return exitRedactor().redact(text);
  } catch {
    return UNREDACTED_ERROR_WITHHELD;
  }
}

function messageOf(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'an error that cannot be shown';
  }
}

function fail(message: string): never {
  process.stderr.write(`llm-interactive-proxy: ${redacted(message)}\n`);
  process.exit(1);
}

/**
 * Loads the configuration; anything it throws that is not already a ConfigError (the YAML parser refusing
 * an alias bomb, say) still becomes one line naming the file, never a stack trace.
 */
function loadOrExplain(configFile: string | undefined, cli: Map<string, unknown>): LoadedConfig {
  try {
    return loadConfig({ configFile, env: process.env, cli });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const where = configFile ? `config file ${configFile}` : 'configuration';
    throw new ConfigError(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** `host:port` once the configuration is known, so a listen failure can say where it tried. */
let listenTarget: string | null = null;

/** Errors from `listen()` and name resolution: the fix is in --host / --port. */
const LISTEN_ERRORS = new Set([
  'EADDRINUSE',
  'EADDRNOTAVAIL',
  'EACCES',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
]);

async function main(): Promise<void> {
  installFatalHandlers({
    redactor: () => exitRedactor(),
    log: (what, text) => exitLog?.(what, text),
  });
  const { parseCli } = await import('./program.js');
  const cli = parseCli(process.argv.slice(2), defaultAt, redacted);
  if (cli.command === 'keygen') {
    const { key, sha256 } = generateProxyKey();
    process.stdout.write(
      `${key}\n` +
        `\n# Use it as the proxy key:\n#   export LLM_INTERACTIVE_PROXY_API_KEY="${key}"\n` +
        `# or keep only its hash in the YAML config:\n#   auth:\n#     api_keys:\n#       - name: my-key\n#         sha256: ${sha256}\n`,
    );
    return;
  }
  const configFile = cli.configFile ?? process.env.CONFIG_FILE;
  const loaded = loadOrExplain(configFile, cli.values);
  listenTarget = `${loaded.config.server.host}:${loaded.config.server.port}`;
  collectWhenIdle();
  const running = await startProxy({
    loaded,
    env: process.env,
    configFile,
    // Read here only: the environment is the one place the state secret may come from.
    stateSecret: process.env.PROXY_STATE_SECRET,
    onLoggingReady: ({ logger, redactor }) => {
      exitRedactor = redactor;
      exitLog = (what, text) => logger.fatal({ error: text }, `${what}: the proxy stops`);
    },
  });
  const stop = (signal: string) => {
    running.app.log.info({ signal }, 'signal received');
    running
      .shutdown()
      .then(() => process.exit(0))
      .catch(() => process.exit(1));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) fail(err.message);
  if (err instanceof CommanderError) process.exit(err.exitCode);
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code && LISTEN_ERRORS.has(code)) {
    const where = listenTarget ? ` on ${listenTarget} (--host/--port)` : '';
    fail(`cannot listen${where}: ${messageOf(err)}`);
  }
  fail(`failed to start: ${messageOf(err)}`);
});
