#!/usr/bin/env node
// CPU time per request of the project proxy, with and without routes (the `routes` target of run.mjs: routes
// and a `resilience:` section, nothing failing), and of a baseline build (BENCH_BASELINE_DIR) the same two
// ways: "before" and "after" in one run. Throughput on a loaded machine is noise; the CPU a process spends
// per request (utime + stime from /proc, Linux) is not, or far less (docs/performance.md, "Failover's cost").
//
// Run: node bench/cpu-per-request.mjs   (dist/ built; BENCH_BASELINE_DIR=<checkout with dist/> to compare)
// BENCH_CPU_ROUNDS (5) interleaved rounds of BENCH_CPU_REQUESTS (2000) requests per target and scenario.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROXY_KEY } from './lib/constants.mjs';
import { sendAmount } from './lib/load.mjs';
import { baselineMain } from './lib/peers.mjs';
import { cpuSeconds, installCleanup, startMock, startProject, stopChild } from './lib/processes.mjs';
import { median } from './lib/stats.mjs';

const rounds = Number(process.env.BENCH_CPU_ROUNDS ?? 5);
const amount = Number(process.env.BENCH_CPU_REQUESTS ?? 2000);
// BENCH_CPU_ONLY=whole or stream: one scenario alone.
const SCENARIOS = [
  { id: 'whole_c32', stream: false, connections: 32 },
  { id: 'stream_c16', stream: true, connections: 16 },
].filter((s) => !process.env.BENCH_CPU_ONLY || s.id.startsWith(process.env.BENCH_CPU_ONLY));

installCleanup();
const workDir = mkdtempSync(path.join(os.tmpdir(), 'cpu-per-request-'));
const routesConfig = path.join(workDir, 'routes.yaml');
writeFileSync(
  routesConfig,
  'routes:\n  bench-route:\n    chain: [openai:gpt-4o-mini, openai:gpt-4o]\nresilience:\n  retries: 1\n',
);
const mock = await startMock({ streamChunks: 20 });
const builds = [{ name: 'after', main: undefined }];
if (process.env.BENCH_BASELINE_DIR) builds.unshift({ name: 'before', main: baselineMain() });
const targets = [];
for (const build of builds) {
  for (const routes of [false, true]) {
    const name = `${build.name}${routes ? '+routes' : ''}`;
    const project = await startProject({
      upstreamOrigin: mock.origin,
      logFile: path.join(workDir, `${name}.log`),
      extraArgs: routes ? ['--config', routesConfig] : [],
      ...(build.main ? { main: build.main } : {}),
    });
    targets.push({ name, project, samples: Object.fromEntries(SCENARIOS.map((s) => [s.id, []])) });
  }
}
console.log(
  `cpu per request: ${rounds} rounds × ${amount} requests; load average ${os.loadavg()[0].toFixed(1)}`,
);
for (const target of targets) {
  for (const s of SCENARIOS) {
    await sendAmount({ origin: target.project.origin, key: PROXY_KEY, ...s, amount: 500 });
  }
}
for (let round = 0; round < rounds; round++) {
  // Each round starts one target later: no target keeps the same place.
  const order = targets.map((_, i) => targets[(i + round) % targets.length]);
  for (const s of SCENARIOS) {
    for (const target of order) {
      const pid = target.project.pid;
      const before = cpuSeconds(pid);
      const result = await sendAmount({ origin: target.project.origin, key: PROXY_KEY, ...s, amount });
      if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0)
        throw new Error(`${target.name} ${s.id}: ${JSON.stringify(result)}`);
      target.samples[s.id].push(((cpuSeconds(pid) - before) * 1e6) / result.requests);
    }
  }
}
console.log(`µs of CPU per request (median of ${rounds}); load average now ${os.loadavg()[0].toFixed(1)}`);
console.log(['target'.padEnd(16), ...SCENARIOS.map((s) => s.id.padStart(12))].join(''));
const medians = {};
for (const target of targets) {
  medians[target.name] = Object.fromEntries(SCENARIOS.map((s) => [s.id, median(target.samples[s.id])]));
  console.log(
    [
      target.name.padEnd(16),
      ...SCENARIOS.map((s) => medians[target.name][s.id].toFixed(0).padStart(12)),
    ].join(''),
  );
}
for (const build of builds) {
  const ratios = SCENARIOS.map(
    (s) => `${s.id}=${(medians[build.name][s.id] / medians[`${build.name}+routes`][s.id]).toFixed(2)}x`,
  );
  console.log(`${build.name}: routes_on/off as CPU per request off ÷ on: ${ratios.join(' ')}`);
}
for (const target of targets) await stopChild(target.project.child);
await stopChild(mock.child);
rmSync(workDir, { recursive: true, force: true });
