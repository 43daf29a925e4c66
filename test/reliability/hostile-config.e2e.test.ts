/**
 * Hostile configuration, through the real CLI: every malformed YAML file, env value or flag must stop the
 * proxy with exit code 1 and one clear line on stderr that names what is wrong — never a stack trace, and
 * never a silent default (a proxy that starts anyway is killed at the deadline and fails the test).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startProxyProcess } from '../helpers/proxy-process.js';

const KEY = 'hostile-config-key-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'lip-hostile-'));
const file = (name: string, content: string | Buffer): string => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

/** Nine levels of nine aliases: a few hundred bytes that would expand to hundreds of millions of nodes. */
const ALIAS_BOMB = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
  .concat(
    ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].map(
      (name, i) => `${name}: &${name} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`,
    ),
  )
  .join('\n');

/** Deterministic binary garbage, NULs and invalid UTF-8 included. */
const GARBAGE = Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 131 + 7) % 256));

type Case = [label: string, args: string[], env: Record<string, string>, expected: RegExp];

const yaml = (name: string, text: string) => ['--config', file(name, text)];

const CASES: Case[] = [
  // YAML files
  ['YAML list at the top', yaml('list.yaml', '- a\n- b\n'), {}, /list\.yaml: expected a mapping of settings/],
  ['YAML scalar at the top', yaml('scalar.yaml', 'just words\n'), {}, /scalar\.yaml: expected a mapping/],
  ['binary garbage file', ['--config', file('garbage.yaml', GARBAGE)], {}, /garbage\.yaml/],
  ['YAML alias bomb', yaml('bomb.yaml', ALIAS_BOMB), {}, /bomb\.yaml: .*alias/i],
  ['YAML duplicate key', yaml('dup.yaml', 'server:\n  port: 1\n  port: 2\n'), {}, /dup\.yaml, line \d+/],
  ['YAML tab indentation', yaml('tabs.yaml', 'server:\n\tport: 1\n'), {}, /tabs\.yaml, line \d+/],
  ['YAML section of the wrong type', yaml('section.yaml', 'logging: 5\n'), {}, /logging: expected object/],
  ['config file is a directory', ['--config', dir], {}, /cannot be read \(EISDIR\)/],
  [
    'CONFIG_FILE does not exist',
    [],
    { CONFIG_FILE: join(dir, 'nope.yaml') },
    /nope\.yaml: cannot be read \(ENOENT\)/,
  ],
  [
    'bypass path not absolute',
    yaml('bp1.yaml', 'auth:\n  bypass_paths: ["health"]\n'),
    {},
    /auth\.bypass_paths\.0: expected a path starting with \//,
  ],
  [
    'bypass path with dot segments',
    yaml('bp2.yaml', 'auth:\n  bypass_paths: ["/docs/../v1/*"]\n'),
    {},
    /auth\.bypass_paths: invalid bypass path "\/docs\/\.\.\/v1\/\*"/,
  ],
  [
    'bypass path making everything public',
    yaml('bp3.yaml', 'auth:\n  bypass_paths: ["/*"]\n'),
    {},
    /auth\.bypass_paths: .*every path public/,
  ],
  [
    'bypass path with percent-encoding',
    yaml('bp4.yaml', 'auth:\n  bypass_paths: ["/%68ealth"]\n'),
    {},
    /auth\.bypass_paths: invalid bypass path/,
  ],
  [
    'unknown custom backend type',
    yaml('b1.yaml', 'backends:\n  foo: { type: cohere, base_url: "http://x" }\n'),
    {},
    /backends\.foo\.type: expected one of "openai", "anthropic", "gemini"/,
  ],
  [
    'custom backend with an ftp base_url',
    yaml('b2.yaml', 'backends:\n  foo: { base_url: "ftp://x" }\n'),
    {},
    /backends\.foo\.base_url: expected an http:\/\/ or https:\/\/ URL/,
  ],
  [
    'custom backend with a non-URL base_url',
    yaml('b3.yaml', 'backends:\n  foo: { base_url: "not a url" }\n'),
    {},
    /backends\.foo\.base_url: expected an http:\/\/ or https:\/\/ URL/,
  ],
  [
    'custom backend without base_url',
    yaml('b4.yaml', 'backends:\n  foo: { type: openai }\n'),
    {},
    /backends\.foo\.base_url: required for a custom backend/,
  ],
  [
    'custom backend with a built-in name',
    yaml('b5.yaml', 'backends:\n  openai: { base_url: "http://x" }\n'),
    {},
    /backends\.openai: "openai" is a built-in backend/,
  ],
  [
    'custom backend with a bad api_key_env',
    yaml('b6.yaml', 'backends:\n  foo: { base_url: "http://x", api_key_env: "MY-KEY" }\n'),
    {},
    /backends\.foo\.api_key_env: expected an environment variable name/,
  ],
  [
    'custom backend with an unknown field',
    yaml('b7.yaml', 'backends:\n  foo: { base_url: "http://x", apikey: "sk-x" }\n'),
    {},
    /backends\.foo: unknown setting "apikey"/,
  ],
  [
    'Responses API on a backend that is not OpenAI-compatible',
    yaml('b8.yaml', 'backends:\n  foo: { type: anthropic, base_url: "http://x", responses: true }\n'),
    {},
    /backends\.foo\.responses: only a 'type: openai' backend/,
  ],
  [
    'api key entry of the wrong shape',
    yaml('k1.yaml', 'auth:\n  api_keys:\n    - { name: a }\n'),
    {},
    /auth\.api_keys\.0: expected exactly one of key or sha256/,
  ],
  [
    'api key entry of the wrong type',
    yaml('k2.yaml', 'auth:\n  api_keys:\n    - 5\n'),
    {},
    /auth\.api_keys\.0: expected a key string, \{name, key\} or \{name, sha256\}/,
  ],
  // Keys file
  ['keys file is a directory', ['--api-keys-file', dir], {}, /api keys file .*: cannot be read \(EISDIR\)/],
  [
    'keys file does not exist',
    ['--api-keys-file', join(dir, 'none.keys')],
    {},
    /none\.keys: cannot be read \(ENOENT\)/,
  ],
  [
    'keys file with a line without a name',
    ['--api-keys-file', file('bad.keys', '# ok\nkey-without-name\n')],
    {},
    /bad\.keys: keys file line 2: expected "name:key"/,
  ],
  [
    'keys file with a bad sha256',
    ['--api-keys-file', file('bad2.keys', 'ci:sha256:xyz\n')],
    {},
    /keys file line 1: sha256 of "ci" must be 64 hexadecimal characters/,
  ],
  // Environment
  [
    'env port out of range',
    [],
    { APP_PORT: '-1' },
    /^llm-interactive-proxy: APP_PORT: expected integer >= 0/m,
  ],
  ['env timeout zero', [], { PROXY_TIMEOUT: '0' }, /PROXY_TIMEOUT: expected number >= 0\.001/],
  ['env timeout not a number', [], { PROXY_TIMEOUT: '2m' }, /PROXY_TIMEOUT: expected a number, got "2m"/],
  ['env body limit fractional', [], { MAX_BODY_BYTES: '1.5' }, /MAX_BODY_BYTES: expected an integer/],
  ['env unknown log level', [], { LOG_LEVEL: 'verbose' }, /LOG_LEVEL: expected one of "trace"/],
  [
    'env unknown log format',
    [],
    { LOG_FORMAT: 'xml' },
    /LOG_FORMAT: expected one of "auto", "json", "pretty"/,
  ],
  [
    'env multiplier below 1',
    [],
    { BRUTE_FORCE_BLOCK_MULTIPLIER: '0.5' },
    /BRUTE_FORCE_BLOCK_MULTIPLIER: expected number >= 1/,
  ],
  [
    'env boolean not a boolean',
    [],
    { BRUTE_FORCE_PROTECTION_ENABLED: 'maybe' },
    /BRUTE_FORCE_PROTECTION_ENABLED: expected a boolean/,
  ],
  [
    'env trusted proxy not a CIDR',
    [],
    { TRUSTED_PROXIES: '10.0.0.0/8,bogus' },
    /TRUSTED_PROXIES: "bogus" is not an IP address, a CIDR or loopback/,
  ],
  [
    'env trusted ip prefix too long',
    [],
    { TRUSTED_IPS: '1.2.3.4/33' },
    /TRUSTED_IPS: "1\.2\.3\.4\/33" is not an IP address or CIDR/,
  ],
  [
    'env header timeout above request timeout',
    [],
    { CLIENT_HEADERS_TIMEOUT: '90' },
    /CLIENT_HEADERS_TIMEOUT: expected at most --client-request-timeout \(60\)/,
  ],
  [
    'env store of an unknown kind',
    [],
    { BRUTE_FORCE_STORE: 'mysql://x' },
    /BRUTE_FORCE_STORE: expected "memory" or a redis:\/\/ URL/,
  ],
  // Flags
  ['flag port out of range', ['--port', '99999'], {}, /--port: expected integer <= 65535/],
  ['flag timeout negative', ['--timeout', '-1'], {}, /--timeout: expected number >= 0\.001/],
  [
    'flag trusted proxy not an address',
    ['--trusted-proxy', '300.1.1.1'],
    {},
    /--trusted-proxy: "300\.1\.1\.1" is not an IP address/,
  ],
  [
    'flag trusted ip not an address',
    ['--trusted-ip', 'localhost'],
    {},
    /--trusted-ip: "localhost" is not an IP address or CIDR/,
  ],
  [
    'flag unknown default backend',
    ['--default-backend', 'nope:model'],
    {},
    /default backend "nope" is unknown; known backends: openai/,
  ],
  [
    'flag host that does not resolve',
    ['--host', '999.1.1.1'],
    {},
    /cannot listen on 999\.1\.1\.1:0 \(--host\/--port\)/,
  ],
  ['flag unknown option', ['--unknown-flag'], {}, /unknown option '--unknown-flag'/],
  ['flag body limit zero', ['--max-body-bytes', '0'], {}, /--max-body-bytes: expected integer >= 1/],
  // TLS
  [
    'TLS certificate without key',
    ['--tls-cert', file('only.pem', 'x')],
    {},
    /HTTPS needs both a certificate and a key: .*--tls-key, TLS_KEY_FILE/,
  ],
  [
    'TLS key without certificate',
    [],
    { TLS_KEY_FILE: file('only-key.pem', 'x') },
    /HTTPS needs both a certificate and a key: .*--tls-cert, TLS_CERT_FILE/,
  ],
  [
    'TLS certificate unreadable',
    ['--tls-cert', join(dir, 'missing.pem'), '--tls-key', file('k.pem', 'x')],
    {},
    /TLS certificate file \(--tls-cert\) .*missing\.pem: cannot be read \(ENOENT\)/,
  ],
  [
    'TLS key unreadable',
    ['--tls-cert', file('c.pem', 'x'), '--tls-key', dir],
    {},
    /TLS key file \(--tls-key\) .*: cannot be read \(EISDIR\)/,
  ],
  [
    'TLS files that are not PEM',
    ['--tls-cert', file('junk-cert.pem', GARBAGE), '--tls-key', file('junk-key.pem', 'junk')],
    {},
    /TLS certificate .*junk-cert\.pem and key .*junk-key\.pem are not a usable pair/,
  ],
];

describe.concurrent('hostile configuration: a clear startup error naming it', () => {
  for (const [label, args, env, expected] of CASES) {
    it(label, async () => {
      // --port 0 keeps a proxy that wrongly starts off port 8000; it would mask APP_PORT (flags win).
      const port = env.APP_PORT === undefined ? ['--port', '0'] : [];
      const result = await runCli([...port, ...args], { LLM_INTERACTIVE_PROXY_API_KEY: KEY, ...env });
      expect(result.timedOut, `${label}: the proxy started instead of refusing\n${result.stdout}`).toBe(
        false,
      );
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toMatch(expected);
      expect(result.stderr, 'no stack trace').not.toMatch(/\n\s+at /);
      expect(result.stdout).not.toContain('listening on');
      expect(result.stderr).not.toContain(KEY);
    });
  }
});

describe('harmless configuration files start normally', () => {
  const started: Array<{ stop(): Promise<unknown> }> = [];
  beforeAll(() => mkdirSync(join(dir, 'ok'), { recursive: true }));
  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop()));
  });

  for (const [label, text] of [
    ['an empty YAML file', ''],
    ['a YAML file of comments only', '# nothing configured here\n\n# nor here\n'],
    ['a YAML document marker only', '---\n'],
  ] as const) {
    it(label, async () => {
      const proxy = await startProxyProcess(
        ['--config', file(`ok/${label.replaceAll(' ', '-')}.yaml`, text)],
        {
          LLM_INTERACTIVE_PROXY_API_KEY: KEY,
        },
      );
      started.push(proxy);
      expect((await fetch(`${proxy.url}/health`)).status).toBe(200);
    });
  }
});
