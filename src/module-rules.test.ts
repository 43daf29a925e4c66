import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = path.dirname(fileURLToPath(import.meta.url));

/**
 * What a folder of src/ must not import (docs/architecture.md, "Dependency rules"): protocols know nothing of
 * backends, HTTP servers or auth; backends know nothing of auth, the server or the pipeline; auth is framework-
 * free (the server renders its verdicts and adapts it to Fastify); shared state serves every feature and
 * imports none; routing is policy and time only; teams policies are plain data that auth, the server and
 * the pipeline read, knowing only the configuration. Tests may drive the real thing across
 * these lines, so they are left out.
 */
const RULES: ReadonlyArray<{ folder: string; modules: string[]; packages: string[] }> = [
  { folder: 'protocols', modules: ['backends', 'server', 'pipeline', 'auth'], packages: ['fastify'] },
  { folder: 'backends', modules: ['auth', 'server', 'pipeline'], packages: ['fastify'] },
  { folder: 'auth', modules: ['server', 'pipeline'], packages: ['fastify'] },
  // The server builds the pipeline and hands it what it needs (how a failure is answered, among them); the
  // pipeline writes its answers through its own responder (src/pipeline/respond.ts), never the server's.
  { folder: 'pipeline', modules: ['server'], packages: ['fastify'] },
  // Sessions decide what commands mean; the pipeline applies them to requests.
  { folder: 'sessions', modules: ['server', 'pipeline', 'backends', 'auth'], packages: ['fastify'] },
  // Shared state holds what replicas agree on; every feature uses it, so it uses none of them.
  {
    folder: 'state',
    modules: ['server', 'pipeline', 'protocols', 'backends', 'auth', 'routing', 'teams', 'sessions'],
    packages: ['fastify'],
  },
  // Failover's policy is data and time: the pipeline step (src/pipeline/attempts.ts) applies it.
  {
    folder: 'routing',
    modules: ['backends', 'server', 'pipeline', 'auth', 'protocols'],
    packages: ['fastify', 'undici'],
  },
  {
    folder: 'teams',
    modules: ['server', 'pipeline', 'auth', 'backends', 'protocols'],
    packages: ['fastify', 'undici'],
  },
];

/** The modules a source file imports or re-exports (`import type` included): relative ones resolved. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/g)].map((match) => {
    const specifier = match[1] as string;
    return specifier.startsWith('.') ? path.resolve(path.dirname(file), specifier) : specifier;
  });
}

function sourcesOf(folder: string): string[] {
  const dir = path.join(SRC, folder);
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'))
    .map((name) => path.join(dir, name));
}

describe('module rules', () => {
  it.each(RULES)('src/$folder imports none of $modules, nor $packages', ({ folder, modules, packages }) => {
    const sources = sourcesOf(folder);
    // The folder's sources were found (a renamed folder must not pass by checking nothing).
    expect(sources.length).toBeGreaterThan(0);
    const forbidden = modules.map((name) => path.join(SRC, name) + path.sep);
    const reaching = sources.flatMap((file) =>
      importsOf(file)
        .filter(
          (target) =>
            forbidden.some((prefix) => target.startsWith(prefix)) ||
            packages.some((name) => target === name || target.startsWith(`${name}/`)),
        )
        .map(
          (target) =>
            `${path.relative(SRC, file)} → ${path.isAbsolute(target) ? path.relative(SRC, target) : target}`,
        ),
    );
    expect(reaching).toEqual([]);
  });
});
