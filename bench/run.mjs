#!/usr/bin/env node
// The project's benchmark (SPEC §7): the project proxy against a bare node:http + undici pass-through and
// against the mock upstream itself, all measured in one run on one machine. See bench/README.md.
//
// Run: npm run bench   (builds first)   or   node bench/run.mjs   (uses the existing dist/)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { DEFAULT_STREAM_CHUNKS, PROXY_KEY, UPSTREAM_KEY } from './lib/constants.mjs';
import { failuresOf, measure } from './lib/load.mjs';
import {
  installCleanup,
  rssMb,
  startMock,
  startPassthrough,
  startProject,
  stopChild,
} from './lib/processes.mjs';
import { formatProfileSummary, summariseProfile } from './lib/profile.mjs';
import { median } from './lib/stats.mjs';
import { verifyCompletion, verifyRejectsBadKeys, verifyStream } from './lib/verify.mjs';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));

function envNumber(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name} must be a positive number, got '${raw}'`);
  return value;
}

const config = {
  durationS: envNumber('BENCH_DURATION', 3),
  rounds: envNumber('BENCH_ROUNDS', 3),
  warmupS: envNumber('BENCH_WARMUP', 2),
  streamChunks: envNumber('BENCH_STREAM_CHUNKS', DEFAULT_STREAM_CHUNKS),
  highConnections: envNumber('BENCH_CONNECTIONS', 32),
  streamConnections: envNumber('BENCH_STREAM_CONNECTIONS', 16),
  strict: ['1', 'true', 'yes', 'on'].includes(String(process.env.BENCH_STRICT ?? '').toLowerCase()),
  cpuProfile: ['1', 'true', 'yes', 'on'].includes(String(process.env.BENCH_CPU_PROF ?? '').toLowerCase()),
  keepFiles: ['1', 'true', 'yes', 'on'].includes(String(process.env.BENCH_KEEP_FILES ?? '').toLowerCase()),
};

const TARGETS = {
  throughputRatio: 0.8,
  addedLatencyMs: 0.2,
  rssMb: 120,
  redactionMBps: 100,
  captureRatio: 0.7,
};

const SCENARIOS = [
  { id: 'nonstream_c1', label: 'non-streaming, 1 connection', stream: false, connections: 1 },
  {
    id: `nonstream_c${config.highConnections}`,
    label: `non-streaming, ${config.highConnections} connections`,
    stream: false,
    connections: config.highConnections,
  },
  {
    id: `stream_c${config.streamConnections}`,
    label: `streaming ${config.streamChunks}-chunk SSE, ${config.streamConnections} connections`,
    stream: true,
    connections: config.streamConnections,
  },
];
const [C1, HIGH, STREAM] = SCENARIOS;

const fmt = {
  rps: (v) => Math.round(v).toLocaleString('en-US'),
  ms: (v) => v.toFixed(3),
  ratio: (v) => `${v.toFixed(2)}x`,
};

async function startTargets(workDir) {
  const mock = await startMock({ streamChunks: config.streamChunks });
  const passthrough = await startPassthrough({ upstreamOrigin: mock.origin });
  const profileDir = path.join(workDir, 'cpu-profile');
  const project = await startProject({
    upstreamOrigin: mock.origin,
    logFile: path.join(workDir, 'project.log'),
    nodeArgs: config.cpuProfile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [],
  });
  // The same proxy with the wire capture on (SPEC §7: capture may cost at most 30 % of throughput).
  const captured = await startProject({
    upstreamOrigin: mock.origin,
    logFile: path.join(workDir, 'project-capture.log'),
    extraArgs: [
      '--capture-file',
      path.join(workDir, 'capture.jsonl'),
      '--capture-max-bytes',
      String(50 * 1024 * 1024),
      '--capture-max-files',
      '2',
    ],
  });
  return {
    processes: { mock, passthrough, project, captured },
    profileDir,
    targets: [
      { name: 'direct', origin: mock.origin, key: UPSTREAM_KEY },
      { name: 'passthrough', origin: passthrough.origin, key: PROXY_KEY },
      { name: 'project', origin: project.origin, key: PROXY_KEY },
      { name: 'capture', origin: captured.origin, key: PROXY_KEY },
    ],
  };
}

async function verifyTargets(targets) {
  for (const target of targets) {
    if (target.name !== 'direct') await verifyRejectsBadKeys(target);
    await verifyCompletion(target);
    await verifyStream(target, config.streamChunks);
  }
  console.log('verified: every target answers 200 with the mock content (JSON and SSE); bad keys get 401');
}

/** Requests each target answered under load: the project's log must hold an access line for each. */
const requestsServed = new Map();

/** Measures one scenario against one target; any error response or socket error aborts the benchmark. */
async function runOnce(target, scenario, durationS) {
  const stats = await measure({
    origin: target.origin,
    key: target.key,
    stream: scenario.stream,
    connections: scenario.connections,
    durationS,
  });
  const problems = failuresOf(stats);
  if (problems.length > 0) {
    throw new Error(
      `${target.name} ${scenario.id}: ${problems.join('; ')} — refusing to report these numbers`,
    );
  }
  // Let the target close the finished connections before the next run starts.
  await sleep(200);
  requestsServed.set(target.name, (requestsServed.get(target.name) ?? 0) + stats.requests);
  return stats;
}

async function warmUp(targets) {
  for (const target of targets) {
    for (const scenario of [HIGH, STREAM]) await runOnce(target, scenario, config.warmupS);
  }
}

/** Rounds of A B C A B C …, so drift (thermal, other load, GC state) hits every target alike. */
async function measureRounds(targets) {
  const results = Object.fromEntries(
    SCENARIOS.map((s) => [s.id, Object.fromEntries(targets.map((t) => [t.name, []]))]),
  );
  for (let round = 1; round <= config.rounds; round++) {
    for (const scenario of SCENARIOS) {
      for (const target of targets) {
        const stats = await runOnce(target, scenario, config.durationS);
        results[scenario.id][target.name].push(stats);
        console.log(
          `  round ${round}/${config.rounds} ${scenario.id.padEnd(14)} ${target.name.padEnd(11)} ` +
            `${fmt.rps(stats.reqPerSec).padStart(7)} req/s  mean ${fmt.ms(stats.mean)} ms  ` +
            `p50 ${fmt.ms(stats.p50)} ms  p99 ${fmt.ms(stats.p99)} ms`,
        );
      }
    }
  }
  return results;
}

/** Per target: the median over rounds of each statistic. */
function medians(runs) {
  return {
    reqPerSec: median(runs.map((r) => r.reqPerSec)),
    mean: median(runs.map((r) => r.mean)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
  };
}

function printScenarioTable(scenario, perTarget) {
  console.log(`\n${scenario.id} (${scenario.label}) — medians of ${config.rounds} rounds`);
  console.log(
    `  ${'target'.padEnd(12)}${'req/s'.padStart(9)}${'mean ms'.padStart(10)}${'p50 ms'.padStart(10)}` +
      `${'p99 ms'.padStart(10)}${'vs passthrough'.padStart(16)}${'vs direct'.padStart(11)}`,
  );
  for (const [name, m] of Object.entries(perTarget)) {
    console.log(
      `  ${name.padEnd(12)}${fmt.rps(m.reqPerSec).padStart(9)}${fmt.ms(m.mean).padStart(10)}` +
        `${fmt.ms(m.p50).padStart(10)}${fmt.ms(m.p99).padStart(10)}` +
        `${fmt.ratio(m.reqPerSec / perTarget.passthrough.reqPerSec).padStart(16)}` +
        `${fmt.ratio(m.reqPerSec / perTarget.direct.reqPerSec).padStart(11)}`,
    );
  }
}

/** Runs bench/redaction.mjs (owned separately) if present, with the machine to itself; its MB/s or null. */
async function runRedactionBench() {
  const script = path.join(BENCH_DIR, 'redaction.mjs');
  if (!existsSync(script)) return null;
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  process.stdout.write(`${out.trimEnd().replace(/^/gm, '  ')}\n`);
  const mbps = Number(/([\d.]+)\s*MB\/s/.exec(out)?.[1]);
  if (!Number.isFinite(mbps)) {
    console.log(`  (redaction benchmark exited with code ${code} and printed no MB/s figure)`);
    return null;
  }
  return mbps;
}

function logStats(file) {
  const bytes = readFileSync(file);
  let lines = 0;
  for (let at = bytes.indexOf(10); at !== -1; at = bytes.indexOf(10, at + 1)) lines++;
  return { mb: bytes.length / 1024 / 1024, lines };
}

function verdict(ok) {
  return ok ? 'ok' : 'MISS';
}

async function main() {
  installCleanup();
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'llm-proxy-bench-'));
  console.log(
    `benchmark: node ${process.version}, ${os.cpus().length} CPUs, ${config.rounds} rounds × ` +
      `${config.durationS}s per run (warm-up ${config.warmupS}s), ${config.streamChunks}-chunk streams`,
  );
  console.log(
    'load generator: autocannon in this process; mock, pass-through and project are child processes',
  );

  const { processes, targets, profileDir } = await startTargets(workDir);
  const { project } = processes;
  console.log(`project log (level info): ${path.join(workDir, 'project.log')}`);
  await verifyTargets(targets);

  console.log('warming up (JIT, connection pools)…');
  await warmUp(targets);
  const rssAfterWarmup = rssMb(project.pid);

  console.log('measuring:');
  const results = await measureRounds(targets);
  const table = Object.fromEntries(
    SCENARIOS.map((s) => [
      s.id,
      Object.fromEntries(targets.map((t) => [t.name, medians(results[s.id][t.name])])),
    ]),
  );
  for (const scenario of SCENARIOS) printScenarioTable(scenario, table[scenario.id]);

  const rss = {
    project: rssMb(project.pid),
    passthrough: rssMb(processes.passthrough.pid),
    mock: rssMb(processes.mock.pid),
  };
  const log = logStats(path.join(workDir, 'project.log'));
  console.log(
    `\nmemory (VmRSS after the runs): project ${rss.project.toFixed(1)} MB (after warm-up ` +
      `${rssAfterWarmup.toFixed(1)} MB), pass-through ${rss.passthrough.toFixed(1)} MB, mock ${rss.mock.toFixed(1)} MB`,
  );
  console.log(
    `project log: ${log.mb.toFixed(1)} MB, ${log.lines.toLocaleString('en-US')} lines for ` +
      `${(requestsServed.get('project') ?? 0).toLocaleString('en-US')} requests under load (one access line each)`,
  );

  const sendStop = [
    stopChild(project.child),
    stopChild(processes.captured.child),
    stopChild(processes.passthrough.child),
    stopChild(processes.mock.child),
  ];
  await Promise.all(sendStop);

  if (config.cpuProfile) {
    const profiles = existsSync(profileDir)
      ? readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'))
      : [];
    if (profiles.length === 0) console.log('\n(no CPU profile was written: did the project exit cleanly?)');
    for (const file of profiles) {
      console.log(`\n${path.join(profileDir, file)}`);
      console.log(formatProfileSummary(summariseProfile(path.join(profileDir, file))));
    }
  }

  console.log('\nredaction:');
  const redactionMBps = await runRedactionBench();
  if (redactionMBps === null) console.log('  (bench/redaction.mjs not available)');

  const nonstreamRatio = table[HIGH.id].project.reqPerSec / table[HIGH.id].passthrough.reqPerSec;
  const streamRatio = table[STREAM.id].project.reqPerSec / table[STREAM.id].passthrough.reqPerSec;
  const captureRatio = table[HIGH.id].capture.reqPerSec / table[HIGH.id].project.reqPerSec;
  const c1 = table[C1.id];
  const added = {
    project: c1.project.mean - c1.direct.mean,
    passthrough: c1.passthrough.mean - c1.direct.mean,
    projectP50: c1.project.p50 - c1.direct.p50,
    passthroughP50: c1.passthrough.p50 - c1.direct.p50,
  };
  const checks = [
    nonstreamRatio >= TARGETS.throughputRatio,
    streamRatio >= TARGETS.throughputRatio,
    added.project <= TARGETS.addedLatencyMs,
    rss.project <= TARGETS.rssMb,
    redactionMBps === null || redactionMBps >= TARGETS.redactionMBps,
    captureRatio >= TARGETS.captureRatio,
  ];

  console.log(
    `\nSUMMARY ${HIGH.id}=${fmt.ratio(nonstreamRatio)}(${verdict(checks[0])}) ` +
      `${STREAM.id}=${fmt.ratio(streamRatio)}(${verdict(checks[1])}) ` +
      `added_latency_c1(mean): project=${added.project.toFixed(3)}ms(${verdict(checks[2])}) ` +
      `passthrough=${added.passthrough.toFixed(3)}ms ` +
      `added_latency_c1(p50): project=${added.projectP50.toFixed(3)}ms passthrough=${added.passthroughP50.toFixed(3)}ms ` +
      `project_rss=${rss.project.toFixed(0)}MB(${verdict(checks[3])}) ` +
      `redaction=${redactionMBps === null ? 'n/a' : `${redactionMBps.toFixed(0)}MB/s(${verdict(checks[4])})`} ` +
      `capture_on/off_${HIGH.id}=${fmt.ratio(captureRatio)}(${verdict(checks[5])}) ` +
      `(targets: >=${TARGETS.throughputRatio}x, <=${TARGETS.addedLatencyMs}ms, <=${TARGETS.rssMb}MB, ` +
      `>=${TARGETS.redactionMBps}MB/s, capture >=${TARGETS.captureRatio}x)`,
  );
  if (config.strict && checks.includes(false)) process.exitCode = 1;
  // The log is ~25 MB a run: kept only on request (or when it sits beside a CPU profile).
  if (config.keepFiles || config.cpuProfile) console.log(`(log and profiles kept in ${workDir})`);
  else rmSync(workDir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(`\nbench: FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
