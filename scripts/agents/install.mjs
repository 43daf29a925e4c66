#!/usr/bin/env node
/**
 * Installs the pinned coding agents (package.json and package-lock.json beside this file) with npm into
 * agentsDir() — outside the repository, shared by every clone of one machine — unless that exact lock is
 * installed there already. README.md beside this file says why they are not devDependencies.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENTS, INSTALLED_MARKER, LOCK, MANIFEST, agentVersion, agentsDir } from './index.mjs';

const dir = agentsDir();
if (existsSync(join(dir, INSTALLED_MARKER))) {
  console.log(`coding agents: already installed in ${dir}`);
  process.exit(0);
}
const started = Date.now();
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
copyFileSync(MANIFEST, join(dir, 'package.json'));
copyFileSync(LOCK, join(dir, 'package-lock.json'));
// `npm install` with the lock, not `npm ci`: opencode-ai names platform packages the registry does not have
// at its version, which npm leaves out of the lock and `npm ci` then calls out of sync. The lock still pins
// every version and integrity that is installed.
const npm = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--loglevel=error'], {
  cwd: dir,
  stdio: 'inherit',
  env: { ...process.env, CI: 'true' },
});
if (npm.status !== 0) {
  console.error(`coding agents: npm ci failed in ${dir} (exit ${npm.status})`);
  process.exit(1);
}
const versions = Object.keys(AGENTS).map((name) => `${name} ${agentVersion(name)}`);
writeFileSync(join(dir, INSTALLED_MARKER), `${versions.join('\n')}\n`);
console.log(
  `coding agents: installed ${versions.join(', ')} in ${dir} (${Math.round((Date.now() - started) / 1000)} s)`,
);
