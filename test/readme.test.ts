import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('holds the configuration reference exactly as generated from the schema', () => {
    const generated = execFileSync(process.execPath, ['scripts/config-reference.mjs'], { encoding: 'utf8' });
    expect(readme).toContain(generated.trim());
  });

  it('has a Quick start with the start and test commands', () => {
    expect(readme).toMatch(/## Quick start/);
    expect(readme).toContain('npm ci && npm run build && LLM_INTERACTIVE_PROXY_API_KEY=');
    expect(readme).toContain('bash scripts/install-test-deps.sh && npm ci && npm test');
  });
});
