import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url);
const readJson = (path: string): unknown => JSON.parse(readFileSync(new URL(path, root), 'utf8'));
const manifest = readJson('package.json') as { dependencies: Record<string, string> };
const lock = readJson('package-lock.json') as {
  packages: Record<string, { version?: string; dependencies?: Record<string, string> }>;
};

/** Packages whose internal `<package>/lib/...` modules the source imports (not their public entry point). */
function packagesImportedByInternalPath(): string[] {
  const found = new Set<string>();
  const sourceRoot = fileURLToPath(new URL('src', root));
  for (const file of readdirSync(sourceRoot, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts')) continue;
    const text = readFileSync(join(sourceRoot, file), 'utf8');
    for (const match of text.matchAll(/from '((?:@[\w.-]+\/)?[\w.-]+)\/lib\//g))
      found.add(match[1] as string);
  }
  return [...found].sort();
}

describe('dependencies', () => {
  it('finds the packages the source reaches into', () => {
    expect(packagesImportedByInternalPath()).toEqual(['prom-client', 'undici']);
  });

  // Internal paths are not a package's API: a ^ range would let an install pick a release that moved them.
  it.each(packagesImportedByInternalPath())('pins %s exactly, in package.json and the lock', (name) => {
    const installed = lock.packages[`node_modules/${name}`]?.version;
    expect(manifest.dependencies[name]).toBe(installed);
    expect(lock.packages['']?.dependencies?.[name]).toBe(installed);
  });
});
