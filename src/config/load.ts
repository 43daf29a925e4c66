import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from './config-error.js';
import { parseSettingValue } from './parse.js';
import { ConfigSchema, YAML_ALIASES, type ProxyConfig } from './schema.js';
import { SETTINGS, settingAt } from './settings.js';

type Tree = Record<string, unknown>;

export interface ConfigSources {
  /** Path of the YAML file, if any (from `--config` or `CONFIG_FILE`). */
  configFile?: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Values given on the command line, keyed by dotted YAML path. */
  cli: Map<string, unknown>;
}

export interface LoadedConfig {
  config: ProxyConfig;
  /** Where each non-default setting came from, for the startup banner and error messages. */
  origins: Map<string, string>;
}

/** Sets a value inside the YAML tree; a section the YAML gave as something other than a mapping is an error. */
function setPath(tree: Tree, path: readonly string[], value: unknown, configFile?: string): void {
  let node = tree;
  path.slice(0, -1).forEach((part, i) => {
    const next = node[part];
    if (next === undefined || next === null) node[part] = {};
    else if (typeof next !== 'object' || Array.isArray(next)) {
      const where = path.slice(0, i + 1).join('.');
      throw new ConfigError(
        `${where}: expected a mapping of settings${configFile ? ` (in ${configFile})` : ''}`,
      );
    }
    node = node[part] as Tree;
  });
  node[path[path.length - 1] as string] = value;
}

export function readYamlFile(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`config file ${file}: cannot be read (${code})`);
  }
  const lineCounter = new LineCounter();
  // Plain (not pretty) errors: a pretty one quotes the offending line, which could hold a key.
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  const first = doc.errors[0];
  if (first) {
    const line = lineCounter.linePos(first.pos[0]).line;
    throw new ConfigError(
      `config file ${file}${line ? `, line ${line}` : ''}: ${first.message.split('\n')[0]}`,
    );
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`config file ${file}: expected a mapping of settings at the top level`);
  }
  return value as Tree;
}

/** The mapping at `path` in the tree, if there is one there. */
function mappingAt(tree: Tree, path: readonly string[]): Tree | undefined {
  let node: unknown = tree;
  for (const part of path) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
    node = (node as Tree)[part];
  }
  return typeof node === 'object' && node !== null && !Array.isArray(node) ? (node as Tree) : undefined;
}

/**
 * Moves the settings a YAML tree gives under an earlier spelling (`YAML_ALIASES`) to their place. Returns,
 * by the place (dotted), the spelling written, for error messages; one setting given both ways is an error.
 */
function applyYamlAliases(tree: Tree, configFile?: string): Map<string, string> {
  const written = new Map<string, string>();
  for (const { from, to } of YAML_ALIASES) {
    const fromPath = from.split('.');
    const parent = mappingAt(tree, fromPath.slice(0, -1));
    const leaf = fromPath[fromPath.length - 1] as string;
    if (parent === undefined || !Object.hasOwn(parent, leaf)) continue;
    const toPath = to.split('.');
    if (mappingAt(tree, toPath.slice(0, -1))?.[toPath[toPath.length - 1] as string] !== undefined) {
      throw new ConfigError(
        `${from} and ${to} are one setting, given twice: keep ${to}${configFile ? ` (in ${configFile})` : ''}`,
      );
    }
    setPath(tree, toPath, parent[leaf], configFile);
    delete parent[leaf];
    written.set(to, from);
  }
  return written;
}

/** A dotted path as the YAML wrote it: under an earlier spelling (`written`), that spelling. */
function asWritten(dotted: string, written: ReadonlyMap<string, string>): string {
  for (const [to, from] of written) {
    if (dotted === to || dotted.startsWith(`${to}.`)) return `${from}${dotted.slice(to.length)}`;
  }
  return dotted;
}

/**
 * What in a YAML file's tree would stop the proxy from starting, as `path: what` (the first such thing), or
 * undefined: for a reload, which takes only part of the file.
 */
export function yamlTreeIssue(tree: Tree): string | undefined {
  const copy = structuredClone(tree);
  let written: Map<string, string>;
  try {
    written = applyYamlAliases(copy);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  const parsed = ConfigSchema.safeParse(copy);
  const issue = parsed.success ? undefined : schemaIssues(parsed.error.issues)[0];
  if (issue === undefined) return undefined;
  return `${asWritten(issue.path.map(String).join('.'), written) || 'configuration'}: ${describeIssue(issue)}`;
}

/** `{server.client_request_timeout_seconds}` in a schema message: another setting, named as the user knows it. */
const SETTING_REFERENCE = /\{([a-z_]+(?:\.[a-z_]+)+)\}/g;

/**
 * What a schema issue expects, in the words the user sees (`expected integer >= 1`); `nameSetting` names
 * another setting a message refers to (by default its YAML path).
 */
export function describeIssue(issue: z.core.$ZodIssue, nameSetting = (key: string) => key): string {
  return issueWords(issue).replace(SETTING_REFERENCE, (_, key: string) => nameSetting(key));
}

function issueWords(issue: z.core.$ZodIssue): string {
  // A message the schema words itself ("expected …") says it best, except for a value of the wrong type
  // (a schema's message may cover that too, and misname it); zod's own messages start otherwise.
  if (issue.code !== 'invalid_type' && issue.message.startsWith('expected ')) return issue.message;
  const leaf = settingAt(issue.path as (string | number)[]);
  switch (issue.code) {
    case 'invalid_type':
      if (issue.expected === 'int') return 'expected integer';
      return `expected ${issue.expected === 'number' && leaf?.meta.kind === 'int' ? 'integer' : issue.expected}`;
    case 'too_small':
    case 'too_big': {
      const op = issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      if (issue.origin === 'number') {
        return `expected ${leaf?.meta.kind === 'int' ? 'integer' : 'number'} ${op} ${String(bound)}`;
      }
      return `expected ${issue.origin} with length ${op} ${String(bound)}`;
    }
    case 'unrecognized_keys':
      return `unknown setting${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    case 'invalid_union':
      return 'expected a key string, {name, key} or {name, sha256}';
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return issue.message;
  }
}

/**
 * The issues of a failed parse, a union's unpicked alternatives left out: an entry that is a mapping is
 * reported by the mapping's own issues (`auth.api_keys.0.role: expected one of …`), not as "no alternative
 * matched".
 */
export function schemaIssues(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== 'invalid_union') return [issue];
    const chosen = issue.errors.filter(
      (branch) => !branch.every((nested) => nested.code === 'invalid_type' && nested.path.length === 0),
    );
    if (chosen.length !== 1) return [issue];
    return schemaIssues(
      (chosen[0] ?? []).map((nested) => ({ ...nested, path: [...issue.path, ...nested.path] })),
    );
  });
}

function formatIssue(
  issue: z.core.$ZodIssue,
  origins: Map<string, string>,
  written: ReadonlyMap<string, string>,
  configFile?: string,
): string {
  const dotted = issue.path.map(String).join('.');
  // An item of a list setting (`server.cors_origins.0`) came from where the list did.
  const listPath =
    issue.path.length > 1 && typeof issue.path.at(-1) === 'number' ? issue.path.slice(0, -1) : null;
  const origin = origins.get(dotted) ?? (listPath ? origins.get(listPath.map(String).join('.')) : undefined);
  const where = origin ?? (dotted ? asWritten(dotted, written) : 'configuration');
  // Without an env var or flag to name, the issue came from the file (an unknown top-level key too).
  const suffix = !origin && configFile ? ` (in ${configFile})` : '';
  const message = describeIssue(issue, (key) => settingName(key, origins, configFile));
  return `${where}: ${message}${suffix}`;
}

/** How a setting is named to the user: as they set it (env var, flag), else its YAML path or its flag. */
function settingName(key: string, origins: Map<string, string>, configFile?: string): string {
  const origin = origins.get(key);
  if (origin !== undefined) return origin;
  const flag = SETTINGS.find((s) => s.key === key)?.meta.flag;
  return configFile !== undefined || flag === undefined ? key : flag;
}

/**
 * Merges defaults < YAML < environment < command line and validates the result. Every error names the
 * setting the way the user wrote it: the env var, the flag, or the YAML path.
 */
export function loadConfig(sources: ConfigSources): LoadedConfig {
  const tree: Tree = sources.configFile ? readYamlFile(sources.configFile) : {};
  // Before the environment and flags: they override the YAML's setting, however the YAML spelled it.
  const written = applyYamlAliases(tree, sources.configFile);
  const origins = new Map<string, string>();

  for (const setting of SETTINGS) {
    const name = setting.meta.env;
    const raw = name ? sources.env[name] : undefined;
    if (name && raw !== undefined && raw.trim() !== '') {
      setPath(tree, setting.path, parseSettingValue(setting.meta.kind, raw, name), sources.configFile);
      origins.set(setting.key, name);
    }
  }
  for (const [key, value] of sources.cli) {
    const setting = SETTINGS.find((s) => s.key === key);
    if (!setting) continue;
    setPath(tree, setting.path, value, sources.configFile);
    origins.set(key, setting.meta.flag ?? setting.meta.offFlag ?? key);
  }

  const parsed = ConfigSchema.safeParse(tree);
  if (!parsed.success) {
    const lines = schemaIssues(parsed.error.issues).map((issue) =>
      formatIssue(issue, origins, written, sources.configFile),
    );
    throw new ConfigError(lines.join('\n'));
  }
  return { config: parsed.data, origins };
}
