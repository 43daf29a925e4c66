import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PROTOCOLS = path.dirname(fileURLToPath(import.meta.url));
const BACKENDS = path.join(PROTOCOLS, '..', 'backends');

/** The relative modules a source file imports or re-exports (`import type` included), resolved to paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'/g)].map(
    (match) => match[1] as string,
  );
  return specifiers.map((specifier) => path.resolve(path.dirname(file), specifier));
}

describe('src/protocols', () => {
  // Backends speak protocols (they name the one they speak); protocols know nothing of backends, so the two
  // never import each other in a cycle. Tests may drive a real backend, so they are left out.
  it('imports nothing from src/backends outside its tests', () => {
    const sources = readdirSync(PROTOCOLS, { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'))
      .map((name) => path.join(PROTOCOLS, name));
    expect(sources.length).toBeGreaterThan(10);
    const reaching = sources.flatMap((file) =>
      importsOf(file)
        .filter((target) => target.startsWith(BACKENDS + path.sep))
        .map((target) => `${path.relative(PROTOCOLS, file)} → ${path.relative(PROTOCOLS, target)}`),
    );
    expect(reaching).toEqual([]);
  });
});
