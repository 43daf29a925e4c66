/**
 * A YAML section of the wrong type (`server: 5`) is refused even when a flag or env var of that section is
 * given (`--port 0`): it must not be silently replaced by an empty mapping.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/proxy-process.js';

describe('a YAML section of the wrong type is an error even when a flag sets a key inside it', () => {
  it('server: 5 with --port 0', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'lip-section-')), 'config.yaml');
    writeFileSync(file, 'server: 5\n');
    // A config error exits within a second; 4 s means it started and is listening.
    const result = await runCli(
      ['--config', file, '--port', '0'],
      { LLM_INTERACTIVE_PROXY_API_KEY: 'k-0123456789' },
      4_000,
    );
    expect(result.timedOut, 'the proxy started and ignored the broken section').toBe(false);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/server: expected (object|a mapping)/);
  });
});
