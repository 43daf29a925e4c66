import { Command, InvalidArgumentError, Option } from 'commander';
import { parseSettingValue } from '../config/parse.js';
import { CONFIG_FILE_SETTING, EXTRA_ENV_HELP, HELP_GROUPS, type SettingMeta } from '../config/schema.js';
import { SETTINGS } from '../config/settings.js';
import { ConfigError } from '../config/errors.js';

export interface ParsedCli {
  command: 'serve' | 'keygen';
  configFile: string | undefined;
  /** Values given on the command line, keyed by dotted YAML path. */
  values: Map<string, unknown>;
}

function describe(meta: SettingMeta, fallbackDefault: unknown, yamlKey?: string): string {
  const parts = [meta.help];
  const extras: string[] = [];
  if (meta.env) extras.push(`env ${meta.env}`);
  if (yamlKey) extras.push(`YAML ${yamlKey}`);
  if (fallbackDefault !== undefined && !(Array.isArray(fallbackDefault) && fallbackDefault.length === 0)) {
    extras.push(
      `default ${Array.isArray(fallbackDefault) ? fallbackDefault.join(',') : String(fallbackDefault)}`,
    );
  }
  if (extras.length > 0) parts.push(`[${extras.join('; ')}]`);
  return parts.join(' ');
}

function valueParser(meta: SettingMeta, flag: string) {
  return (raw: string, previous: unknown): unknown => {
    try {
      if (meta.kind === 'list') {
        const items = parseSettingValue('list', raw, flag) as string[];
        return [...((previous as string[] | undefined) ?? []), ...items];
      }
      return parseSettingValue(meta.kind, raw, flag);
    } catch (err) {
      if (err instanceof ConfigError) throw new InvalidArgumentError(err.message.replace(`${flag}: `, ''));
      throw err;
    }
  };
}

/**
 * Builds the command line from the config schema: every flag, its env var and default come from the same
 * place as YAML validation, so `--help` cannot drift from what the proxy accepts.
 */
export function buildProgram(defaults: (key: string) => unknown): {
  program: Command;
  /** Commander attribute name → [dotted setting path, value to store for valueless boolean flags]. */
  attributes: Map<string, [string, boolean | null]>;
} {
  const program = new Command('llm-interactive-proxy')
    .description(
      'A secure, fast gateway between LLM clients (OpenAI, Anthropic, Gemini SDKs) and LLM providers.',
    )
    .usage('[options]  |  keygen')
    .showHelpAfterError('(run with --help for all options)')
    .allowExcessArguments(false);
  const attributes = new Map<string, [string, boolean | null]>();

  const configOpt = new Option(
    `${CONFIG_FILE_SETTING.flag} <${CONFIG_FILE_SETTING.arg}>`,
    describe(CONFIG_FILE_SETTING, undefined),
  );
  program.addOption(configOpt.helpGroup(`${CONFIG_FILE_SETTING.group}:`));

  for (const group of HELP_GROUPS) {
    for (const setting of SETTINGS.filter((s) => s.meta.group === group)) {
      const { meta } = setting;
      const fallback = defaults(setting.key);
      if (meta.kind === 'bool') {
        for (const [flag, value] of [
          [meta.flag, true],
          [meta.offFlag, false],
        ] as const) {
          if (!flag) continue;
          const sources = [
            meta.env ? `env ${meta.env}` : '',
            `YAML ${setting.key}`,
            fallback === value ? 'default' : '',
          ];
          const text = value || !meta.flag ? meta.help : `Opposite of ${meta.flag}`;
          const help = `${value || meta.flag ? text : `Turn off: ${text}`} [${sources.filter(Boolean).join('; ')}]`;
          const option = new Option(flag, help).helpGroup(`${group}:`);
          program.addOption(option);
          attributes.set(option.attributeName(), [setting.key, value]);
        }
        continue;
      }
      if (!meta.flag) continue;
      const option = new Option(
        `${meta.flag} <${meta.arg ?? 'VALUE'}>`,
        describe(meta, fallback, setting.key),
      )
        .argParser(valueParser(meta, meta.flag))
        .helpGroup(`${group}:`);
      program.addOption(option);
      attributes.set(option.attributeName(), [setting.key, null]);
    }
  }

  const envLines = EXTRA_ENV_HELP.map((e) => `  ${e.env.padEnd(46)} ${e.help}`).join('\n');
  program.addHelpText(
    'after',
    `\nOther environment variables:\n${envLines}\n\nPrecedence: command line > environment > YAML (--config) > defaults.\nSubcommands:\n  keygen  print a new random proxy key and its sha256: form for the YAML file\n`,
  );
  program
    .command('keygen')
    .description('Print a new random proxy key and its sha256: form for the YAML file');
  return { program, attributes };
}

export function parseCli(argv: string[], defaults: (key: string) => unknown): ParsedCli {
  const { program, attributes } = buildProgram(defaults);
  let command: ParsedCli['command'] = 'serve';
  program.commands[0]?.action(() => {
    command = 'keygen';
  });
  program.action(() => undefined);
  program.parse(argv, { from: 'user' });
  const opts = program.opts<Record<string, unknown>>();
  const values = new Map<string, unknown>();
  for (const [attribute, [key, flagValue]] of attributes) {
    if (opts[attribute] === undefined) continue;
    values.set(key, flagValue ?? opts[attribute]);
  }
  return { command, configFile: opts.config as string | undefined, values };
}
