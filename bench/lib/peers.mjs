// Other gateways measured beside the project, on request (BENCH_PEERS=portkey): installed once from the npm
// registry into bench/.peers (git-ignored), started on loopback against the same mock upstream.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROXY_KEY, UPSTREAM_KEY } from './constants.mjs';
import { forkServer, startProject } from './processes.mjs';

const PEERS_DIR = path.join(path.dirname(path.dirname(fileURLToPath(import.meta.url))), '.peers');
const LOOPBACK_PRELOAD = fileURLToPath(new URL('./loopback-listen.mjs', import.meta.url));

/**
 * Portkey's AI gateway, the TypeScript gateway the performance targets compare with (docs/performance.md).
 * It has no host setting, so a preload binds it to 127.0.0.1; `--headless` and NODE_ENV=production leave
 * its UI out.
 */
const PORTKEY = {
  name: 'portkey',
  packages: ['@portkey-ai/gateway@1.15.2', 'hono@4.9.7', '@hono/node-server@1.13.5'],
  main: 'node_modules/@portkey-ai/gateway/build/start-server.js',
  args: ['--headless', '--port=0'],
  /** It forwards the client's Authorization to the provider, so clients send the upstream key. */
  target: (upstreamOrigin) => ({
    key: UPSTREAM_KEY,
    headers: { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${upstreamOrigin}/v1` },
  }),
};

/**
 * The project as built in another checkout (`BENCH_BASELINE_DIR`, its `dist/` built), e.g. the commit before a
 * change: "before" and "after" measured in the same rounds of one run, set up exactly as the project is.
 */
const BASELINE = { name: 'baseline', project: true };

const KNOWN = new Map([
  [PORTKEY.name, PORTKEY],
  [BASELINE.name, BASELINE],
]);

/** The baseline checkout's CLI, or an error saying what to set. */
export function baselineMain() {
  const dir = process.env.BENCH_BASELINE_DIR;
  if (!dir) throw new Error('BENCH_PEERS=baseline needs BENCH_BASELINE_DIR: a checkout with dist/ built');
  const main = path.join(path.resolve(dir), 'dist', 'cli', 'main.js');
  if (!existsSync(main)) throw new Error(`BENCH_BASELINE_DIR: ${main} is missing (run npm run build there)`);
  return main;
}

/** The peers named in BENCH_PEERS (comma-separated); an unknown name is an error, not silently skipped. */
export function peersFromEnv(value) {
  const names = String(value ?? '')
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter(Boolean);
  return names.map((name) => {
    const peer = KNOWN.get(name);
    if (!peer)
      throw new Error(`BENCH_PEERS: unknown peer '${name}' (known: ${[...KNOWN.keys()].join(', ')})`);
    return peer;
  });
}

function install(peer) {
  const dir = path.join(PEERS_DIR, peer.name);
  if (existsSync(path.join(dir, peer.main))) return dir;
  console.log(`installing peer ${peer.name} (${peer.packages.join(', ')}) into ${dir} — once`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ private: true }, null, 2)}\n`);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', ...peer.packages], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (!existsSync(path.join(dir, peer.main)))
    throw new Error(`peer ${peer.name}: ${peer.main} missing after install`);
  return dir;
}

/** Installs (first time) and starts a peer; returns its process and benchmark target. */
export async function startPeer(peer, { upstreamOrigin, logFile }) {
  if (peer.project) {
    const server = await startProject({ upstreamOrigin, logFile, main: baselineMain() });
    return { process: server, target: { name: peer.name, origin: server.origin, key: PROXY_KEY } };
  }
  const dir = install(peer);
  const server = await forkServer(
    path.join(dir, peer.main),
    { NODE_ENV: 'production' },
    { args: peer.args, execArgv: ['--import', LOOPBACK_PRELOAD] },
  );
  return {
    process: server,
    target: { name: peer.name, origin: server.origin, ...peer.target(upstreamOrigin) },
  };
}
