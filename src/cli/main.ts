#!/usr/bin/env node
import { CommanderError } from 'commander';
import { generateProxyKey } from '../auth/keys.js';
import { ConfigError } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import { ConfigSchema } from '../config/schema.js';
import { startProxy } from '../server/start.js';

const DEFAULTS = ConfigSchema.parse({});

function defaultAt(key: string): unknown {
  return key
    .split('.')
    .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], DEFAULTS);
}

function fail(message: string): never {
  process.stderr.write(`llm-interactive-proxy: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const { parseCli } = await import('./program.js');
  const cli = parseCli(process.argv.slice(2), defaultAt);
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
  const loaded = loadConfig({ configFile, env: process.env, cli: cli.values });
  const running = await startProxy({ loaded, env: process.env, configFile });
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
  if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' || code === 'EACCES') {
    fail(`cannot listen: ${(err as Error).message}`);
  }
  fail(`failed to start: ${err instanceof Error ? err.message : String(err)}`);
});
