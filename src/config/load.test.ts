import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, yamlTreeIssue } from './load.js';

const dir = mkdtempSync(join(tmpdir(), 'lip-load-'));
function errorOf(yaml: string): string {
  const configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, yaml);
  try {
    loadConfig({ configFile, env: {}, cli: new Map() });
  } catch (error) {
    return (error as Error).message.replace(` (in ${configFile})`, '');
  }
  throw new Error('expected a configuration error');
}

describe('loadConfig: how an issue is worded', () => {
  it.each([
    ['auth:\n  policies:\n    t: {rpm: 0}\n', 'auth.policies.t.rpm: expected integer >= 1'],
    ['auth:\n  policies:\n    t: {rpm: 1.5}\n', 'auth.policies.t.rpm: expected integer'],
    ['auth:\n  policies:\n    t: {rpm: "6"}\n', 'auth.policies.t.rpm: expected number'],
    [
      'backends:\n  foo: {base_url: "ftp://x"}\n',
      'backends.foo.base_url: expected an http:// or https:// URL',
    ],
    [
      'auth:\n  api_keys:\n    - {name: a, key: k-0123456789abcdefghij, role: root}\n',
      'auth.api_keys.0.role: expected one of "client", "admin"',
    ],
    [
      `auth:\n  api_keys:\n    - {name: trusted-ip, sha256: ${'a'.repeat(64)}}\n`,
      'auth.api_keys.0.name: key name "trusted-ip" is reserved (the proxy\'s name for requests from a ' +
        '--trusted-ip address that send no key): give the key another name',
    ],
    [
      'auth:\n  api_keys:\n    - 5\n',
      'auth.api_keys.0: expected a key string, {name, key} or {name, sha256}',
    ],
  ])('%j', (yaml, message) => {
    expect(errorOf(yaml)).toBe(message);
  });
});

describe('yamlTreeIssue: what would stop the next start (a reload’s check)', () => {
  it('reads the earlier spellings as loadConfig does, and names an issue as written', () => {
    expect(yamlTreeIssue({ guardrails: { shell_tools: ['a'], default_rules: false } })).toBeUndefined();
    expect(yamlTreeIssue({ guardrails: { shell: { tools: ['a'] } } })).toBeUndefined();
    expect(yamlTreeIssue({ guardrails: { rules: [{ name: 'x', pattern: '(', reason: 'y' }] } })).toBe(
      'guardrails.rules.0.pattern: expected a regular expression',
    );
    expect(yamlTreeIssue({ guardrails: { shell_tools: [], shell: { tools: [] } } })).toBe(
      'guardrails.shell_tools and guardrails.shell.tools are one setting, given twice: keep guardrails.shell.tools',
    );
  });

  it('leaves the tree it is given as it was', () => {
    const tree = { guardrails: { shell_tools: ['a'] } };
    yamlTreeIssue(tree);
    expect(tree).toEqual({ guardrails: { shell_tools: ['a'] } });
  });
});
