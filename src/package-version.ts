import { readFileSync } from 'node:fs';

/**
 * The version in the package's own package.json, read once when first imported. Read at runtime rather than
 * written into the code so a release bumps it in one place; the path is the same from `src/` (tests) and
 * from `dist/` (the installed CLI), both one level below the package root.
 */
export const PACKAGE_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
