#!/usr/bin/env node
/**
 * Records what the real coding agents send: each agent (all, or those named: `node
 * scripts/record-clients.mjs claude codex`) is run once, offline, against the fake provider, which answers
 * its first turn with a shell call of `echo hi` and its second with text; every request the provider
 * received becomes one fixture file, credentials replaced by a placeholder, in
 * test/fixtures/clients/<agent>-<version>/. With `--check-network` each agent runs under strace and every
 * connection it opened off loopback is listed (and fails the run). test/fixtures/clients/README.md says more.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENTS, REGISTRY_SINK, agentVersion, runAgent } from './agents/index.mjs';
import { startFakeProvider } from '../test/fake-provider/index.mjs';
import { sanitizeHeaders } from '../test/fixtures/clients/sanitize.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const OUT = join(ROOT, 'test', 'fixtures', 'clients');
/** The key the agents are given while recording: a placeholder, and removed from the fixtures anyway. */
const RECORDING_KEY = 'lip-recording-placeholder-key';

const checkNetwork = process.argv.includes('--check-network');
const names = process.argv.slice(2).filter((a) => a !== '--check-network');
for (const name of names) {
  if (!Object.hasOwn(AGENTS, name)) {
    console.error(`unknown agent ${name}: one of ${Object.keys(AGENTS).join(', ')}`);
    process.exit(2);
  }
}

/** The calls of a strace log that address an internet host (not loopback, not a Unix socket): connects, UDP sends (DNS). */
function offLoopback(log) {
  return log
    .split('\n')
    .filter((line) => /sa_family=AF_INET6?,/.test(line))
    .filter((line) => !/inet_addr\("127\.|inet_pton\(AF_INET6, "::1"|"::ffff:127\./.test(line));
}

/** `POST /v1/messages?beta=true` → `post-v1-messages`. */
const slug = (method, url) =>
  `${method}-${url.split('?')[0]}`
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

let failed = false;
for (const name of names.length > 0 ? names : Object.keys(AGENTS)) {
  const provider = await startFakeProvider();
  try {
    const trace = join(mkdtempSync(join(tmpdir(), 'lip-record-')), 'connect.trace');
    // With --check-network, every connect and send of the agent and its children is traced (strace must exist).
    const wrapper = checkNetwork
      ? ['strace', '-f', '-qq', '-e', 'trace=connect,sendto,sendmsg,sendmmsg', '-o', trace]
      : [];
    const result = await runAgent(name, { root: provider.url, apiKey: RECORDING_KEY, wrapper });
    if (checkNetwork) {
      const outside = offLoopback(readFileSync(trace, 'utf8'));
      rmSync(dirname(trace), { recursive: true, force: true });
      console.log(
        `${name}: ${outside.length} connection(s) off loopback${outside.length ? `:\n${outside.join('\n')}` : ''}`,
      );
      if (outside.length > 0) failed = true;
    }
    const version = agentVersion(name);
    if (result.code !== 0) {
      failed = true;
      console.error(
        `${name} ${version}: exit ${result.code} ${result.signal ?? ''}\n${result.stderr.slice(-2000)}`,
      );
      continue;
    }
    const dir = join(OUT, `${name}-${version}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    // The package-registry sink (opencode looks up its plugin package there) is no client request to the proxy.
    const requests = provider.requests.filter((r) => !r.url.startsWith(REGISTRY_SINK));
    requests.forEach((request, i) => {
      const fixture = {
        method: request.method,
        path: request.url,
        headers: sanitizeHeaders(request.headers),
        body: request.body,
      };
      const text = JSON.stringify(fixture, null, 2);
      if (text.includes(RECORDING_KEY)) throw new Error(`${name}: the key is still in request ${i + 1}`);
      const file = `${String(i + 1).padStart(2, '0')}-${slug(request.method, request.url)}.json`;
      writeFileSync(join(dir, file), `${text}\n`);
    });
    console.log(`${name} ${version}: ${requests.length} requests recorded in ${dir}`);
  } finally {
    await provider.close();
  }
}
process.exit(failed ? 1 : 0);
