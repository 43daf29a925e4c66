#!/usr/bin/env node
// Memory benchmark (docs/performance.md targets: RSS <= 120 MB after 100k requests, no growth across repeated
// runs). Starts the mock upstream and the project proxy (auth on, log level info), sends batches of requests
// (non-streaming, plus a tenth as many streaming) and reads the proxy's VmRSS after each batch.
//
// Run after `npm run build`: node bench/memory.mjs
// Env: BENCH_MEMORY_REQUESTS (per batch, default 100000), BENCH_MEMORY_BATCHES (default 3),
//      BENCH_CONNECTIONS (default 32), BENCH_STREAM_CHUNKS (default 20).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_STREAM_CHUNKS, PROXY_KEY } from './lib/constants.mjs';
import { operatorGet } from './lib/operator.mjs';
import { failuresOf, sendAmount } from './lib/load.mjs';
import { installCleanup, rssMb, startMock, startProject, stopChild } from './lib/processes.mjs';
import { formatGrowth, judgeRss, RSS_GROWTH_TOLERANCE_MB, RSS_TARGET_MB } from './lib/rss.mjs';
import { verifyCompletion, verifyStream } from './lib/verify.mjs';

function envNumber(name, fallback) {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

const REQUESTS = envNumber('BENCH_MEMORY_REQUESTS', 100_000);
const BATCHES = envNumber('BENCH_MEMORY_BATCHES', 3);
const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 32);
const STREAM_CHUNKS = envNumber('BENCH_STREAM_CHUNKS', DEFAULT_STREAM_CHUNKS);

/** V8 heap in use, from the proxy's own /metrics (prom-client default metrics), or null if not exposed. */
async function heapUsedMb(origin) {
  try {
    const res = await operatorGet(`${origin}/metrics`);
    const text = await res.body.text();
    const match = /^\w*nodejs_heap_size_used_bytes\s+([\d.e+]+)/m.exec(text);
    return match ? Number(match[1]) / 1024 / 1024 : null;
  } catch {
    return null;
  }
}

async function batch(target, amount) {
  const runs = [
    await sendAmount({ ...target, stream: false, connections: CONNECTIONS, amount }),
    await sendAmount({
      ...target,
      stream: true,
      connections: Math.max(1, CONNECTIONS >> 1),
      amount: amount / 10,
    }),
  ];
  for (const run of runs) {
    const problems = failuresOf({ ...run, statusCodes: 'see above' });
    if (problems.length > 0) throw new Error(`memory batch: ${problems.join('; ')}`);
  }
  return runs[0].reqPerSec;
}

async function main() {
  installCleanup();
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'llm-proxy-bench-mem-'));
  const mock = await startMock({ streamChunks: STREAM_CHUNKS });
  const project = await startProject({
    upstreamOrigin: mock.origin,
    logFile: path.join(workDir, 'project.log'),
  });
  const target = { name: 'project', origin: project.origin, key: PROXY_KEY };
  await verifyCompletion(target);
  await verifyStream(target, STREAM_CHUNKS);
  console.log(
    `memory: ${BATCHES} batches of ${REQUESTS.toLocaleString('en-US')} non-streaming + ` +
      `${(REQUESTS / 10).toLocaleString('en-US')} streaming requests, ${CONNECTIONS} connections`,
  );
  console.log(`  at start: RSS ${rssMb(project.pid).toFixed(1)} MB`);

  const rss = [];
  for (let i = 1; i <= BATCHES; i++) {
    const reqPerSec = await batch(target, REQUESTS);
    await sleep(1_000); // let in-flight work and the next GC settle before reading RSS
    rss.push(rssMb(project.pid));
    const heap = await heapUsedMb(project.origin);
    console.log(
      `  after batch ${i}: RSS ${rss.at(-1).toFixed(1)} MB` +
        `${heap === null ? '' : `, heap used ${heap.toFixed(1)} MB`} (${Math.round(reqPerSec)} req/s)`,
    );
  }
  await stopChild(project.child);
  await stopChild(mock.child);
  rmSync(workDir, { recursive: true, force: true });

  const { peak, growth, rssOk, growthOk } = judgeRss(rss);
  console.log(
    `MEMORY rss_peak=${peak.toFixed(0)}MB(${rssOk ? 'ok' : 'MISS'}) ` +
      `growth_batch1_to_${BATCHES}=${formatGrowth(growth)}(${growthOk ? 'ok' : 'MISS'}) ` +
      `(targets: <=${RSS_TARGET_MB}MB, growth <=${RSS_GROWTH_TOLERANCE_MB}MB)`,
  );
  process.exitCode = rssOk && growthOk ? 0 : 1;
}

main().catch((err) => {
  console.error(`\nbench/memory: FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
