import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCli } from '../src/cli/program.js';
import { ConfigError } from '../src/config/config-error.js';
import { loadConfig } from '../src/config/load.js';
import { ConfigSchema } from '../src/config/schema.js';
import { SETTINGS, type SettingEntry } from '../src/config/settings.js';
import { resolveStateSettings } from '../src/state/settings.js';
import { runCli } from './helpers/proxy-process.js';

/** No secret on these command lines: nothing to redact. */
const keep = (text: string): string => text;

const DEFAULTS = ConfigSchema.parse({});
const defaultAt = (key: string): unknown =>
  key
    .split('.')
    .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], DEFAULTS);

function yamlFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'lip-config-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, text);
  return file;
}

/** A valid value for a setting that differs from its default, in each source's spelling. */
function sample(setting: SettingEntry): { value: unknown; text: string; yaml: string } {
  switch (setting.meta.kind) {
    case 'bool': {
      const value = !(defaultAt(setting.key) as boolean);
      return { value, text: String(value), yaml: String(value) };
    }
    case 'int':
    case 'number': {
      const value = setting.key === 'server.port' ? 8123 : setting.key.endsWith('capture_max_files') ? 7 : 42;
      return { value, text: String(value), yaml: String(value) };
    }
    case 'list':
      // CORS origins are origins; the other lists hold addresses and ranges.
      return setting.key === 'server.cors_origins'
        ? {
            value: ['https://a.example', 'http://127.0.0.1:3000'],
            text: 'https://a.example,http://127.0.0.1:3000',
            yaml: '["https://a.example", "http://127.0.0.1:3000"]',
          }
        : {
            value: ['10.0.0.0/8', '192.0.2.1'],
            text: '10.0.0.0/8,192.0.2.1',
            yaml: '["10.0.0.0/8", "192.0.2.1"]',
          };
    default: {
      const byKey: Record<string, string> = {
        'logging.level': 'debug',
        'logging.format': 'json',
        'auth.brute_force_protection.store': 'redis://127.0.0.1:6390/2',
        'state.store': 'rediss://cache.internal:6380/1',
        'backends.default_backend': 'openrouter',
        'sessions.command_prefix': '##',
        'guardrails.action': 'block',
      };
      const value = byKey[setting.key] ?? '/tmp/some/path';
      return { value, text: value, yaml: JSON.stringify(value) };
    }
  }
}

function valueAt(config: unknown, key: string): unknown {
  return key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], config);
}

function yamlFor(setting: SettingEntry, yaml: string): string {
  return setting.path
    .map((part, i) => `${'  '.repeat(i)}${part}:${i === setting.path.length - 1 ? ` ${yaml}` : ''}`)
    .join('\n');
}

describe('every setting in every form', () => {
  for (const setting of SETTINGS) {
    it(`${setting.key}: YAML, env ${setting.meta.env ?? '-'} and flag ${setting.meta.flag ?? setting.meta.offFlag ?? '-'}`, () => {
      const { value, text, yaml } = sample(setting);
      const fromYaml = loadConfig({ configFile: yamlFile(yamlFor(setting, yaml)), env: {}, cli: new Map() });
      expect(valueAt(fromYaml.config, setting.key)).toEqual(value);

      if (setting.meta.env) {
        const fromEnv = loadConfig({ env: { [setting.meta.env]: text }, cli: new Map() });
        expect(valueAt(fromEnv.config, setting.key)).toEqual(value);
      }

      const flag =
        setting.meta.kind === 'bool' ? (value ? setting.meta.flag : setting.meta.offFlag) : setting.meta.flag;
      if (flag) {
        const argv =
          setting.meta.kind === 'bool'
            ? [flag]
            : setting.meta.kind === 'list'
              ? text.split(',').flatMap((v) => [flag, v])
              : [flag, text];
        const cli = parseCli(argv, defaultAt, keep);
        expect(valueAt(loadConfig({ env: {}, cli: cli.values }).config, setting.key)).toEqual(value);
      }
    });
  }
});

describe('a boolean setting given both ways', () => {
  it('is refused, naming both flags, rather than one of them winning', () => {
    for (const argv of [
      ['--enable-brute-force-protection', '--disable-brute-force-protection'],
      ['--disable-brute-force-protection', '--enable-brute-force-protection'],
    ]) {
      expect(() => parseCli(argv, defaultAt, keep)).toThrow(
        '--enable-brute-force-protection and --disable-brute-force-protection contradict each other: give one of them',
      );
    }
    // The same flag twice says the same thing twice.
    const twice = parseCli(
      ['--disable-brute-force-protection', '--disable-brute-force-protection'],
      defaultAt,
      keep,
    );
    expect([...twice.values.values()]).toEqual([false]);
  });
});

describe('precedence: CLI > env > YAML > default', () => {
  const file = yamlFile(
    'server:\n  port: 9001\n  timeout_seconds: 30\nauth:\n  brute_force_protection:\n    max_failed_attempts: 3\n',
  );

  it('layers the four sources', () => {
    const cli = parseCli(['--port', '9003'], defaultAt, keep);
    const { config } = loadConfig({
      configFile: file,
      env: { APP_PORT: '9002', PROXY_TIMEOUT: '45', BRUTE_FORCE_TTL_SECONDS: '60' },
      cli: cli.values,
    });
    expect(config.server.port).toBe(9003); // CLI over env over YAML
    expect(config.server.timeout_seconds).toBe(45); // env over YAML
    expect(config.auth.brute_force_protection.max_failed_attempts).toBe(3); // YAML over default
    expect(config.auth.brute_force_protection.ttl_seconds).toBe(60);
    expect(config.auth.brute_force_protection.initial_block_seconds).toBe(30); // default
  });
});

describe('guardrails.shell: the shell guard’s block, and the flat keys it replaced', () => {
  const rule = (indent: string) =>
    `${indent}- {name: no-npm-publish, pattern: "^npm publish", reason: the release pipeline publishes}\n`;
  const load = (yaml: string, env: NodeJS.ProcessEnv = {}, argv: string[] = []) =>
    loadConfig({ configFile: yamlFile(yaml), env, cli: parseCli(argv, defaultAt, keep).values }).config
      .guardrails;
  const expected = {
    enabled: true,
    action: 'block',
    shell: {
      tools: ['run_in_terminal'],
      default_rules: false,
      rules: [{ name: 'no-npm-publish', pattern: '^npm publish', reason: 'the release pipeline publishes' }],
    },
  };

  it('reads the block as SPEC and README spell it', () => {
    const yaml =
      'guardrails:\n  action: block\n  shell:\n    tools: [run_in_terminal]\n    default_rules: false\n' +
      `    rules:\n${rule('      ')}`;
    expect(load(yaml)).toEqual(expected);
  });

  it('still reads the flat keys, to the same settings', () => {
    const yaml =
      'guardrails:\n  action: block\n  shell_tools: [run_in_terminal]\n  default_rules: false\n' +
      `  rules:\n${rule('    ')}`;
    expect(load(yaml)).toEqual(expected);
    // One spelling of one setting beside the other spelling of another.
    expect(load('guardrails:\n  shell_tools: [a]\n  shell:\n    default_rules: false\n').shell).toEqual({
      tools: ['a'],
      default_rules: false,
      rules: [],
    });
  });

  it('lets the env var and the flag override the YAML however it spells the tools', () => {
    for (const yaml of [
      'guardrails:\n  shell_tools: [from_yaml]\n',
      'guardrails:\n  shell:\n    tools: [from_yaml]\n',
    ]) {
      expect(load(yaml, { GUARDRAILS_SHELL_TOOLS: 'from_env' }).shell.tools).toEqual(['from_env']);
      expect(load(yaml, {}, ['--guardrails-shell-tool', 'from_flag']).shell.tools).toEqual(['from_flag']);
    }
  });

  it('refuses one setting given both ways, naming both', () => {
    const file = yamlFile('guardrails:\n  rules: []\n  shell:\n    rules: []\n');
    const run = () => loadConfig({ configFile: file, env: {}, cli: new Map() });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(
      `guardrails.rules and guardrails.shell.rules are one setting, given twice: keep guardrails.shell.rules (in ${file})`,
    );
  });

  it('names a bad value the way the YAML wrote it', () => {
    const bad = '{name: x, pattern: "(", reason: y}';
    expect(() => load(`guardrails:\n  rules: [${bad}]\n`)).toThrow(
      /^guardrails\.rules\.0\.pattern: expected a regular expression \(in /,
    );
    expect(() => load(`guardrails:\n  shell:\n    rules: [${bad}]\n`)).toThrow(
      /^guardrails\.shell\.rules\.0\.pattern: expected a regular expression \(in /,
    );
    expect(() => load('guardrails:\n  shell:\n    tool: [x]\n')).toThrow(
      /^guardrails\.shell: unknown setting "tool" \(in /,
    );
  });
});

describe('the state store: --state-store, its alias --brute-force-store, and the secret', () => {
  const SECRET = 'state-secret-for-config-tests-0123456789';
  const A = 'redis://:hunter2pass@state-a.internal:6379/0';
  const B = 'redis://bf-b.internal:6379/3';

  function resolve(sources: { yaml?: string; env?: NodeJS.ProcessEnv; argv?: string[] }, secret?: string) {
    const cli = parseCli(sources.argv ?? [], defaultAt, keep);
    const { config } = loadConfig({
      configFile: sources.yaml === undefined ? undefined : yamlFile(sources.yaml),
      env: sources.env ?? {},
      cli: cli.values,
    });
    return resolveStateSettings(config, secret);
  }

  it('defaults to memory for everything, with no secret needed', () => {
    expect(resolve({})).toEqual({
      store: 'memory',
      bruteForceStore: 'memory',
      bruteForceInState: false,
      bruteForceStoreIgnored: false,
      secret: undefined,
    });
  });

  it('takes the flag over the env var over the YAML key', () => {
    const yaml = `state:\n  store: "redis://yaml.internal:6379/0"\n`;
    expect(resolve({ yaml }, SECRET).store).toBe('redis://yaml.internal:6379/0');
    expect(resolve({ yaml, env: { STATE_STORE: 'redis://env.internal:6379/0' } }, SECRET).store).toBe(
      'redis://env.internal:6379/0',
    );
    const all = resolve(
      {
        yaml,
        env: { STATE_STORE: 'redis://env.internal:6379/0' },
        argv: ['--state-store', 'rediss://flag:6380/1'],
      },
      SECRET,
    );
    expect(all).toMatchObject({ store: 'rediss://flag:6380/1', bruteForceStore: 'rediss://flag:6380/1' });
    expect(resolve({ env: { STATE_STORE: A }, argv: ['--state-store', 'memory'] }).store).toBe('memory');
  });

  it('keeps --brute-force-store alone as it was: brute-force records alone in Redis, no secret needed', () => {
    for (const sources of [{ argv: ['--brute-force-store', B] }, { env: { BRUTE_FORCE_STORE: B } }]) {
      expect(resolve(sources)).toEqual({
        store: 'memory',
        bruteForceStore: B,
        bruteForceInState: false,
        bruteForceStoreIgnored: false,
        secret: undefined,
      });
    }
  });

  it('with both given, --state-store wins for everything (and the other is reported as ignored)', () => {
    expect(resolve({ argv: ['--state-store', A, '--brute-force-store', B] }, SECRET)).toEqual({
      store: A,
      bruteForceStore: A,
      bruteForceInState: true,
      bruteForceStoreIgnored: true,
      secret: SECRET,
    });
    expect(resolve({ env: { STATE_STORE: 'memory', BRUTE_FORCE_STORE: B } })).toMatchObject({
      store: 'memory',
      bruteForceStore: 'memory',
      bruteForceInState: false,
      bruteForceStoreIgnored: true,
    });
    expect(resolve({ argv: ['--state-store', A, '--brute-force-store', A] }, SECRET)).toMatchObject({
      bruteForceInState: true,
      bruteForceStoreIgnored: false,
    });
  });

  it('refuses a Redis state store without the secret, naming it and showing no URL or password', () => {
    for (const secret of [undefined, '', '   ']) {
      let error: unknown;
      try {
        resolve({ env: { STATE_STORE: A } }, secret);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).toMatch(/^PROXY_STATE_SECRET is not set: /);
      expect(message).not.toContain('\n');
      expect(message).not.toContain('hunter2pass');
      expect(message).not.toContain('state-a.internal');
    }
  });

  it('refuses a short secret without showing it', () => {
    const short = 'short-state-secret-abc';
    expect(() => resolve({ argv: ['--state-store', A] }, short)).toThrow(/^PROXY_STATE_SECRET is too short/);
    expect(() => resolve({ argv: ['--state-store', A] }, short)).not.toThrow(new RegExp(short));
    expect(resolve({ argv: ['--state-store', A] }, ` ${SECRET}\n`).secret).toBe(SECRET);
  });

  it('refuses a store that is neither memory nor a Redis URL, naming where it came from', () => {
    expect(() => resolve({ env: { STATE_STORE: 'postgres://x' } })).toThrow(
      /^STATE_STORE: expected "memory" or a redis:\/\/ URL/,
    );
    expect(() => resolve({ yaml: 'state:\n  store: 42\n' })).toThrow(/state\.store: expected string/);
  });
});

describe('configuration errors name what the user wrote', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    [
      'env boolean',
      () => loadConfig({ env: { DISABLE_AUTH: 'maybe' }, cli: new Map() }),
      /^DISABLE_AUTH: expected a boolean/,
    ],
    [
      'env number',
      () => loadConfig({ env: { APP_PORT: 'eighty' }, cli: new Map() }),
      /^APP_PORT: expected an integer/,
    ],
    [
      'env range',
      () => loadConfig({ env: { APP_PORT: '70000' }, cli: new Map() }),
      /^APP_PORT: expected integer <= 65535/,
    ],
    [
      'YAML range',
      () =>
        loadConfig({
          configFile: yamlFile('auth:\n  brute_force_protection:\n    max_failed_attempts: 0\n'),
          env: {},
          cli: new Map(),
        }),
      /auth\.brute_force_protection\.max_failed_attempts: expected integer >= 1/,
    ],
    [
      // A browser sends its Origin without a path: a trailing slash would never match, silently.
      'a CORS origin with a path, named by its flag',
      () => loadConfig({ env: {}, cli: new Map([['server.cors_origins', ['https://app.example.com/']]]) }),
      /^--cors-origin: expected an origin: scheme:\/\/host\[:port\] and nothing after/,
    ],
    [
      'a CORS origin with a path, named by its variable',
      () => loadConfig({ env: { CORS_ORIGINS: 'https://a.example,https://b.example/x' }, cli: new Map() }),
      /^CORS_ORIGINS: expected an origin/,
    ],
    [
      // Checked with the other settings, so the error names the flag the operator typed.
      'a trusted proxy that is no address, named by its flag with the value',
      () => loadConfig({ env: {}, cli: new Map([['auth.trusted_proxies', ['loopback', 'proxy.internal']]]) }),
      /^--trusted-proxy: "proxy\.internal" is not an IP address, a CIDR or loopback\|linklocal\|uniquelocal /,
    ],
    [
      // `toString` is on every object: a lookup of range names must not take it for one.
      'a trusted proxy named like an object member, named by its variable',
      () => loadConfig({ env: { TRUSTED_PROXIES: 'toString' }, cli: new Map() }),
      /^TRUSTED_PROXIES: "toString" is not an IP address/,
    ],
    [
      'a trusted IP with a prefix past 32 bits, named by its flag',
      () => loadConfig({ env: {}, cli: new Map([['auth.trusted_ips', ['192.0.2.0/40']]]) }),
      /^--trusted-ip: "192\.0\.2\.0\/40" is not an IP address or CIDR \(e\.g\. 10\.0\.0\.0\/8/,
    ],
    [
      // Past Node's longest timer (2^31 - 1 ms) a timer fires at once: a long wait would be none.
      'a duration longer than a timer can wait',
      () => loadConfig({ env: { SHUTDOWN_TIMEOUT: '3000000' }, cli: new Map() }),
      /^SHUTDOWN_TIMEOUT: expected number <= 2147483 \(about 24\.8 days, the longest a timer can wait\)/,
    ],
    [
      'a YAML duration longer than a timer can wait',
      () =>
        loadConfig({ configFile: yamlFile('resilience:\n  deadline_s: 9999999\n'), env: {}, cli: new Map() }),
      /resilience\.deadline_s: expected number <= 2147483 /,
    ],
    [
      'YAML type',
      () => loadConfig({ configFile: yamlFile('server:\n  port: "x"\n'), env: {}, cli: new Map() }),
      /server\.port: expected integer/,
    ],
    [
      'YAML unknown key',
      () => loadConfig({ configFile: yamlFile('auth:\n  disable_auht: true\n'), env: {}, cli: new Map() }),
      /auth: unknown setting "disable_auht"/,
    ],
    [
      // Every issue without a flag or variable to name came from the file: it says which file.
      'YAML unknown top-level key, with the file',
      () => loadConfig({ configFile: yamlFile('bogus: 1\n'), env: {}, cli: new Map() }),
      /^configuration: unknown setting "bogus" \(in \/.*config\.yaml\)$/,
    ],
    [
      // A cross-field check names the other setting as the user set it: here by its variable.
      'header timeout above the request timeout set by env',
      () =>
        loadConfig({
          env: { CLIENT_REQUEST_TIMEOUT: '30' },
          cli: new Map([['server.client_headers_timeout_seconds', 50]]),
        }),
      /^--client-headers-timeout: expected at most CLIENT_REQUEST_TIMEOUT \(30\): headers are part of the request$/,
    ],
    [
      'header timeout above the request timeout, both in YAML',
      () =>
        loadConfig({
          configFile: yamlFile(
            'server:\n  client_request_timeout_seconds: 10\n  client_headers_timeout_seconds: 20\n',
          ),
          env: {},
          cli: new Map(),
        }),
      /^server\.client_headers_timeout_seconds: expected at most server\.client_request_timeout_seconds \(10\)/,
    ],
    [
      'YAML syntax',
      () => loadConfig({ configFile: yamlFile('server: [\n'), env: {}, cli: new Map() }),
      /line \d+/,
    ],
    [
      'missing file',
      () => loadConfig({ configFile: '/nonexistent/config.yaml', env: {}, cli: new Map() }),
      /cannot be read \(ENOENT\)/,
    ],
    [
      'bad store URL',
      () => loadConfig({ env: { BRUTE_FORCE_STORE: 'postgres://x' }, cli: new Map() }),
      /^BRUTE_FORCE_STORE: expected "memory" or a redis:\/\/ URL/,
    ],
    [
      'bad api key entry',
      () =>
        loadConfig({
          configFile: yamlFile('auth:\n  api_keys:\n    - name: x\n      sha256: nothex\n'),
          env: {},
          cli: new Map(),
        }),
      /auth\.api_keys\.0/,
    ],
  ];
  for (const [label, run, message] of cases) {
    it(label, () => {
      expect(run).toThrow(ConfigError);
      expect(run).toThrow(message);
    });
  }

  it('a bad flag value exits 1 with the flag named and no stack trace', async () => {
    const { code, stderr } = await runCli(['--auth-max-failed-attempts', 'lots']);
    expect(code).toBe(1);
    expect(stderr).toContain("'--auth-max-failed-attempts <N>' argument 'lots' is invalid");
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('a key given to a flag, or as one, is masked in the error: never printed, nor its start', async () => {
    // Longer than the 40 characters a bad value's error would quote.
    const key = 'opaque-provider-key-Zq7xW2vB9nL4-0123456789abcdef';
    const env = { OPENAI_API_KEY: key };
    const given = await runCli(['--auth-max-failed-attempts', key], env);
    expect([given.code, given.stderr.split('\n')[0]]).toEqual([
      1,
      "error: option '--auth-max-failed-attempts <N>' argument '****' is invalid. expected an integer, " +
        'got a value of 49 characters',
    ]);
    const asFlag = await runCli([`--${key}`], env);
    expect([asFlag.code, asFlag.stderr.split('\n')[0]]).toEqual([1, "error: unknown option '--****'"]);
    // The same mistake in the environment.
    const inEnv = await runCli([], { ...env, BRUTE_FORCE_MAX_FAILED_ATTEMPTS: key });
    expect([inEnv.code, inEnv.stderr]).toEqual([
      1,
      'llm-interactive-proxy: BRUTE_FORCE_MAX_FAILED_ATTEMPTS: expected an integer, got a value of 49 characters\n',
    ]);
    for (const { stdout, stderr } of [given, asFlag, inEnv])
      expect(stdout + stderr).not.toContain(key.slice(0, 12));
  });
});

describe('--help', () => {
  it('lists every flag with its env var, grouped by topic', async () => {
    const { code, stdout } = await runCli(['--help']);
    expect(code).toBe(0);
    for (const heading of [
      'Server:',
      'Backends:',
      'Authentication:',
      'Brute-force protection:',
      'Shared state:',
      'Logging and capture:',
    ]) {
      expect(stdout).toContain(heading);
    }
    const flat = stdout.replace(/\s+/g, ' ');
    for (const setting of SETTINGS) {
      for (const flag of [setting.meta.flag, setting.meta.offFlag]) if (flag) expect(flat).toContain(flag);
      if (setting.meta.env) expect(flat).toContain(setting.meta.env);
    }
    expect(flat).toContain('LLM_INTERACTIVE_PROXY_API_KEY');
    expect(flat).toContain('PROXY_STATE_SECRET');
  });

  it('lists each flag and the keygen command exactly once, with no fragment of a sentence', async () => {
    const { stdout } = await runCli(['--help']);
    const entries = [...stdout.matchAll(/^ {2}(?:-\w, )?(--?[\w-]+|keygen)\b/gm)].map((m) => m[1]);
    const flags = SETTINGS.flatMap((s) => [s.meta.flag, s.meta.offFlag]).filter((f) => f !== undefined);
    expect(entries.toSorted()).toEqual(['--config', '--help', '--version', ...flags, 'keygen'].toSorted());
    const flat = stdout.replace(/\s+/g, ' ');
    expect(flat).not.toMatch(/[;[] ?default\]/);
    expect(flat).not.toContain('Turn off:');
    expect(flat).toContain(
      '--enable-brute-force-protection Block client addresses that send too many bad keys ' +
        '[env BRUTE_FORCE_PROTECTION_ENABLED; YAML auth.brute_force_protection.enabled; default true] ' +
        '--disable-brute-force-protection Opposite of --enable-brute-force-protection --auth-max-failed-attempts',
    );
    expect(flat).toContain(
      '--disable-redact-api-keys-in-prompts Leave configured secrets found in prompts as they are ' +
        '(they reach the backend) [env REDACT_API_KEYS_IN_PROMPTS; YAML auth.redact_api_keys_in_prompts; default true]',
    );
  });
});

describe('--version', () => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };

  it.each(['--version', '-V'])('%s prints the package.json version and exits 0', async (flag) => {
    const { code, stdout, stderr } = await runCli([flag]);
    expect({ code, stdout, stderr }).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });
});
