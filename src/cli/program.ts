import { Command, InvalidArgumentError, Option } from 'commander';
import { parseSettingValue } from '../config/parse.js';
import { CONFIG_FILE_SETTING, EXTRA_ENV_HELP, HELP_GROUPS, type SettingMeta } from '../config/schema.js';
import { SETTINGS } from '../config/settings.js';
import { ConfigError } from '../config/config-error.js';
import { PACKAGE_VERSION } from '../package-version.js';
import type { Redact } from '../redaction/excerpt.js';

export interface ParsedCli {
  command: 'serve' | 'keygen';
  configFile: string | undefined;
  /** Values given on the command line, keyed by dotted YAML path. */
  values: Map<string, unknown>;
}

/** A default as the user would type it, or undefined when there is none worth showing (unset, empty list). */
function shownDefault(value: unknown): string | undefined {
  if (value === undefined || (Array.isArray(value) && value.length === 0)) return undefined;
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** `text [env X; YAML y; default z]`: the other places the setting is read from, and its default. */
function describe(text: string, meta: SettingMeta, fallbackDefault: unknown, yamlKey?: string): string {
  const fallback = shownDefault(fallbackDefault);
  const extras = [
    meta.env && `env ${meta.env}`,
    yamlKey && `YAML ${yamlKey}`,
    fallback !== undefined && `default ${fallback}`,
  ].filter(Boolean);
  return extras.length > 0 ? `${text} [${extras.join('; ')}]` : text;
}

/**
 * The flags of a boolean setting, each with its help: the on flag (or, alone, the off flag) carries the
 * setting's sources and default; an off flag beside an on flag is only its opposite, since the line above
 * already says where the setting comes from.
 */
function booleanFlags(
  meta: SettingMeta,
  yamlKey: string,
  fallback: unknown,
): Array<[string, boolean, string]> {
  const flags: Array<[string, boolean, string]> = [];
  if (meta.flag) flags.push([meta.flag, true, describe(meta.help, meta, fallback, yamlKey)]);
  if (meta.offFlag) {
    const help = meta.flag
      ? `Opposite of ${meta.flag}`
      : describe(meta.offHelp ?? `Set ${yamlKey} to false`, meta, fallback, yamlKey);
    flags.push([meta.offFlag, false, help]);
  }
  return flags;
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
export function buildProgram(
  defaults: (key: string) => unknown,
  redact: Redact,
): {
  program: Command;
  /** Commander attribute name → [dotted setting path, value to store for valueless boolean flags]. */
  attributes: Map<string, [string, boolean | null]>;
} {
  const program = new Command('llm-interactive-proxy')
    .description(
      'A secure, fast gateway between LLM clients (OpenAI, Anthropic, Gemini SDKs) and LLM providers.',
    )
    .usage('[options] | keygen')
    .version(PACKAGE_VERSION, '-V, --version', 'Print the version and exit')
    .helpOption('-h, --help', 'Print this help and exit')
    .showHelpAfterError('(run with --help for all options)')
    // Commander's errors quote what was typed (`argument '<value>' is invalid`, `unknown option '--<x>'`):
    // a key given to the wrong flag, or pasted as one, is masked (README, Key hygiene). Set before the
    // subcommand is added, which copies it.
    .configureOutput({ outputError: (text, write) => write(redact(text)) })
    .allowExcessArguments(false);
  const attributes = new Map<string, [string, boolean | null]>();

  const configOpt = new Option(
    `${CONFIG_FILE_SETTING.flag} <${CONFIG_FILE_SETTING.arg}>`,
    describe(CONFIG_FILE_SETTING.help, CONFIG_FILE_SETTING, undefined),
  );
  program.addOption(configOpt.helpGroup(`${CONFIG_FILE_SETTING.group}:`));

  for (const group of HELP_GROUPS) {
    for (const setting of SETTINGS.filter((s) => s.meta.group === group)) {
      const { meta } = setting;
      const fallback = defaults(setting.key);
      if (meta.kind === 'bool') {
        for (const [flag, value, help] of booleanFlags(meta, setting.key, fallback)) {
          const option = new Option(flag, help).helpGroup(`${group}:`);
          program.addOption(option);
          attributes.set(option.attributeName(), [setting.key, value]);
        }
        continue;
      }
      if (!meta.flag) continue;
      const option = new Option(
        `${meta.flag} <${meta.arg ?? 'VALUE'}>`,
        describe(meta.help, meta, fallback, setting.key),
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
    `\nOther environment variables:\n${envLines}\n\nPrecedence: command line > environment > YAML (--config) > defaults.\n`,
  );
  program
    .command('keygen')
    .description('Print a new random proxy key and its sha256: form for the YAML file');
  return { program, attributes };
}

/** `redact` masks the secrets known so far (the environment's) in the errors commander prints. */
export function parseCli(argv: string[], defaults: (key: string) => unknown, redact: Redact): ParsedCli {
  const { program, attributes } = buildProgram(defaults, redact);
  let command: ParsedCli['command'] = 'serve';
  program.commands[0]?.action(() => {
    command = 'keygen';
  });
  program.action(() => undefined);
  program.parse(argv, { from: 'user' });
  const opts = program.opts<Record<string, unknown>>();
  const values = new Map<string, unknown>();
  /** The flag that set each setting, to name two that contradict each other. */
  const setBy = new Map<string, string>();
  const flagOf = (attribute: string): string =>
    program.options.find((option) => option.attributeName() === attribute)?.long ?? attribute;
  for (const [attribute, [key, flagValue]] of attributes) {
    if (opts[attribute] === undefined) continue;
    const value = flagValue ?? opts[attribute];
    const earlier = setBy.get(key);
    // An on flag and its off flag together (`--enable-x --disable-x`): which one was meant is not known,
    // and picking one silently could turn a protection off.
    if (earlier !== undefined && values.get(key) !== value) {
      throw new ConfigError(`${earlier} and ${flagOf(attribute)} contradict each other: give one of them`);
    }
    setBy.set(key, flagOf(attribute));
    values.set(key, value);
  }
  return { command, configFile: opts.config as string | undefined, values };
}
