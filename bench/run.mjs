#!/usr/bin/env node
// The project's benchmark (targets in docs/performance.md): the project proxy against a bare node:http +
// undici pass-through and against the mock upstream itself, all measured in one run on one machine. See
// bench/README.md.
//
// Run: npm run bench   (builds first)   or   node bench/run.mjs   (uses the existing dist/)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { attackSummary, ATTACK_P99_RATIO_TARGET, runAttackScenario } from './lib/attack.mjs';
import { DEFAULT_STREAM_CHUNKS, PROXY_KEY, UPSTREAM_KEY } from './lib/constants.mjs';
import { bodiesSummary, bodySizesFromEnv, printBodies, runBodies } from './lib/bodies.mjs';
import { fmt, verdict } from './lib/format.mjs';
import {
  formatManyStreams,
  manyStreamsConfig,
  manyStreamsSummary,
  runManyStreams,
} from './lib/many-streams.mjs';
import {
  AGENT_SESSION_HEADERS,
  agentRequestBody,
  ANTHROPIC_PATH,
  anthropicRequestBody,
  CHAT_PATH,
  failuresOf,
  measure,
  RESPONSES_PATH,
  responsesRequestBody,
} from './lib/load.mjs';
import {
  cpuSeconds,
  installCleanup,
  rssMb,
  startMock,
  startPassthrough,
  startProject,
  stopChild,
} from './lib/processes.mjs';
import { baselineMain, peersFromEnv, startPeer } from './lib/peers.mjs';
import { formatProfileSummary, summariseProfile } from './lib/profile.mjs';
import {
  formatGrowth,
  judgeRss,
  RSS_GROWTH_TOLERANCE_MB,
  RSS_MIN_REQUESTS,
  RSS_TARGET_MB,
} from './lib/rss.mjs';
import { median } from './lib/stats.mjs';
import { runTranslation, translationConfig } from './lib/translation.mjs';
import { verifyCompletion, verifyRejectsBadKeys, verifyResponses, verifyStream } from './lib/verify.mjs';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));

function envNumber(name, fallback, { zero = false } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !zero))
    throw new Error(`${name} must be a ${zero ? 'non-negative' : 'positive'} number, got '${raw}'`);
  return value;
}

const config = {
  durationS: envNumber('BENCH_DURATION', 3),
  rounds: envNumber('BENCH_ROUNDS', 3),
  warmupS: envNumber('BENCH_WARMUP', 2),
  // Seconds of unmeasured load given to each target right before each of its measured runs (0: none).
  preRunS: envNumber('BENCH_PRE_RUN', 1, { zero: true }),
  streamChunks: envNumber('BENCH_STREAM_CHUNKS', DEFAULT_STREAM_CHUNKS),
  highConnections: envNumber('BENCH_CONNECTIONS', 32),
  streamConnections: envNumber('BENCH_STREAM_CONNECTIONS', 16),
  attackConnections: envNumber('BENCH_ATTACK_CONNECTIONS', 32),
  attackAddresses: envNumber('BENCH_ATTACK_ADDRESSES', 1000),
  strict: ['1', 'true', 'yes', 'on'].includes(String(process.env.BENCH_STRICT ?? '').toLowerCase()),
  cpuProfile: ['1', 'true', 'yes', 'on'].includes(String(process.env.BENCH_CPU_PROF ?? '').toLowerCase()),
  keepFiles: ['1', 'true', 'yes', 'on'].includes(String(process.env.BENCH_KEEP_FILES ?? '').toLowerCase()),
  peers: peersFromEnv(process.env.BENCH_PEERS),
  // Which parts run: the main scenarios (with the attack and redaction), the large bodies, the many streams,
  // the translation pairs.
  only: new Set(
    String(process.env.BENCH_ONLY || 'main,bodies,streams,translation')
      .split(',')
      .map((part) => part.trim()),
  ),
  bodySizes: bodySizesFromEnv(process.env.BENCH_BODY_SIZES),
  bodyConnections: envNumber('BENCH_BODY_CONNECTIONS', 8),
  manyStreams: manyStreamsConfig(process.env),
  translation: translationConfig(process.env),
};

const TARGETS = {
  throughputRatio: 0.8,
  // Added mean latency at 1 connection: at most this, and at most this many times the pass-through's.
  addedLatencyMs: 0.25,
  addedLatencyVsPassthrough: 1.5,
  redactionMBps: 100,
  captureRatio: 0.7,
  // The Responses API passed through, against chat completions passed through by the same build.
  responsesRatio: 0.9,
  // Routes and resilience configured, nothing failing: every request tried by failover (one attempt).
  routesRatio: 0.9,
  // An Anthropic client's stream translated to an OpenAI backend, over the same-protocol stream (issue #22).
  translatedStreamRatio: 0.7,
  // Sessions, commands, the loop guard and the dangerous-command guard on (the defaults), nothing firing,
  // against the same proxy with all of them off; an agent's request (a shell tool offered, tool turns).
  guardsRatio: 0.9,
  // Per-key limits configured (rpm and max_concurrent, the key's and a label's), nothing refused.
  limitsRatio: 0.9,
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

async function startTargets(workDir) {
  const mock = await startMock({ streamChunks: config.streamChunks });
  const passthrough = await startPassthrough({ upstreamOrigin: mock.origin });
  const profileDir = path.join(workDir, 'cpu-profile');
  const project = await startProject({
    upstreamOrigin: mock.origin,
    logFile: path.join(workDir, 'project.log'),
    nodeArgs: config.cpuProfile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [],
  });
  // The same proxy with the wire capture on (target: capture may cost at most 30 % of throughput).
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
  // The Responses API: passed through to the mock's /v1/responses, and translated to chat completions
  // (`openrouter:` names a chat-completions backend on the same mock); and an Anthropic client's request
  // translated. Each judged target has a process of its own, as the chat row it is compared with does (and
  // so that the project's access-log count stays the project's): a target read in a process that another
  // target's work has shaped (its heap, its compiled code) is not compared like with like.
  const translatingProject = (name) =>
    startProject({
      upstreamOrigin: mock.origin,
      logFile: path.join(workDir, `project-${name}.log`),
      extraEnv: { OPENROUTER_API_KEY: UPSTREAM_KEY, OPENROUTER_API_BASE_URL: `${mock.origin}/v1` },
    });
  const responses = await translatingProject('responses');
  const responsesTranslated = await translatingProject('resp-xlate');
  const anthropicTranslated = await translatingProject('anth-xlate');
  const responsesRequest = (model) => ({
    path: RESPONSES_PATH,
    body: (stream) => responsesRequestBody({ stream, model }),
  });
  // The same proxy with routes and a `resilience:` section: every request takes the failover step.
  const routesConfig = path.join(workDir, 'routes.yaml');
  writeFileSync(
    routesConfig,
    'routes:\n  bench-route:\n    chain: [openai:gpt-4o-mini, openai:gpt-4o]\nresilience:\n  retries: 1\n',
  );
  const routed = await startProject({
    upstreamOrigin: mock.origin,
    logFile: path.join(workDir, 'project-routes.log'),
    extraArgs: ['--config', routesConfig],
  });
  // An agent's requests to the proxy as users run it (sessions, commands and guards on by default) and to
  // the same proxy with them all off: the guards' cost when nothing fires.
  const unguarded = await startProject({
    upstreamOrigin: mock.origin,
    logFile: path.join(workDir, 'project-unguarded.log'),
    extraArgs: ['--disable-commands', '--disable-loop-guard', '--disable-guardrails'],
  });
  const guarded = await startProject({
    upstreamOrigin: mock.origin,
    logFile: path.join(workDir, 'project-guarded.log'),
  });
  const agentRequest = { path: CHAT_PATH, body: (stream) => agentRequestBody({ stream }), chat: true };
  // The same proxy with the bench key's limits (its own rpm and max_concurrent, and a label's rpm) set far
  // above the load: every request takes all three in one acquire of the memory limit store, none refused.
  // The key comes from the YAML alone (no env key), so the requests are the limited key's.
  const limitsConfig = path.join(workDir, 'limits.yaml');
  writeFileSync(
    limitsConfig,
    'auth:\n  api_keys:\n' +
      `    - {name: bench, key: ${PROXY_KEY}, labels: [bench-team], rpm: 100000000, max_concurrent: 100000}\n` +
      '  policies:\n    bench-team: {rpm: 100000000}\n',
  );
  const limited = await startProject({
    upstreamOrigin: mock.origin,
    logFile: path.join(workDir, 'project-limits.log'),
    extraArgs: ['--config', limitsConfig],
    extraEnv: { LLM_INTERACTIVE_PROXY_API_KEY: undefined },
  });
  // Other gateways, when asked for (BENCH_PEERS): measured like the others, but not judged.
  const peers = [];
  for (const peer of config.peers) {
    const logFile = path.join(workDir, `${peer.name}.log`);
    peers.push(await startPeer(peer, { upstreamOrigin: mock.origin, logFile }));
  }
  return {
    processes: {
      mock,
      passthrough,
      project,
      captured,
      responses,
      responsesTranslated,
      anthropicTranslated,
      routed,
      guarded,
      unguarded,
      limited,
    },
    peerProcesses: peers.map((p) => p.process),
    profileDir,
    targets: [
      { name: 'direct', origin: mock.origin, key: UPSTREAM_KEY, pid: mock.pid },
      { name: 'passthrough', origin: passthrough.origin, key: PROXY_KEY, pid: passthrough.pid },
      { name: 'project', origin: project.origin, key: PROXY_KEY, pid: project.pid },
      { name: 'capture', origin: captured.origin, key: PROXY_KEY, pid: captured.pid },
      {
        name: 'responses',
        origin: responses.origin,
        pid: responses.pid,
        key: PROXY_KEY,
        request: responsesRequest('gpt-4o-mini'),
      },
      {
        name: 'resp-xlate',
        origin: responsesTranslated.origin,
        pid: responsesTranslated.pid,
        key: PROXY_KEY,
        request: responsesRequest('openrouter:gpt-4o-mini'),
      },
      {
        // An Anthropic client's request translated to the OpenAI backend (issue #22: a translated stream
        // >= 0.7x the same-protocol path).
        name: 'anth-xlate',
        origin: anthropicTranslated.origin,
        pid: anthropicTranslated.pid,
        key: PROXY_KEY,
        request: {
          path: ANTHROPIC_PATH,
          body: (stream) => anthropicRequestBody({ stream }),
          completed: (stream, text) =>
            stream ? text.includes('"type":"message_stop"') : JSON.parse(text).type === 'message',
        },
      },
      { name: 'routes', origin: routed.origin, key: PROXY_KEY, pid: routed.pid },
      {
        name: 'guards',
        origin: guarded.origin,
        pid: guarded.pid,
        key: PROXY_KEY,
        request: agentRequest,
        headers: AGENT_SESSION_HEADERS,
      },
      {
        name: 'no-guards',
        origin: unguarded.origin,
        pid: unguarded.pid,
        key: PROXY_KEY,
        request: agentRequest,
        headers: AGENT_SESSION_HEADERS,
      },
      { name: 'limits', origin: limited.origin, key: PROXY_KEY, pid: limited.pid },
      ...peers.map((p) => ({ ...p.target, pid: p.process.pid, peer: true })),
    ],
  };
}

async function verifyTargets(targets) {
  for (const target of targets) {
    if (target.request && !target.request.chat) {
      await verifyResponses(target);
      continue;
    }
    // A peer forwards the client's key to the provider: it has no proxy key of its own to refuse.
    if (target.name !== 'direct' && !target.peer) await verifyRejectsBadKeys(target);
    await verifyCompletion(target);
    try {
      await verifyStream(target, config.streamChunks);
    } catch (err) {
      // A peer that cannot stream this mock's answers is measured without streaming, and says so.
      if (!target.peer) throw err;
      target.skipStream = err instanceof Error ? err.message : String(err);
      console.log(`peer ${target.name} left out of the streaming scenario: ${target.skipStream}`);
    }
  }
  console.log('verified: every target answers 200 with the mock content (JSON and SSE); bad keys get 401');
}

/** Whether a target takes part in a scenario (a peer that failed the stream check does not stream). */
const takesPart = (target, scenario) => !(scenario.stream && target.skipStream);

/** Requests each target answered under load: the project's log must hold an access line for each. */
const requestsServed = new Map();

/** Measures one scenario against one target; any error response or socket error aborts the benchmark. */
async function runOnce(target, scenario, durationS) {
  const cpuBefore = cpuSeconds(target.pid);
  const stats = await measure({
    origin: target.origin,
    key: target.key,
    stream: scenario.stream,
    connections: scenario.connections,
    durationS,
    headers: target.headers,
    request: target.request,
  });
  const problems = failuresOf(stats);
  if (problems.length > 0) {
    throw new Error(
      `${target.name} ${scenario.id}: ${problems.join('; ')} — refusing to report these numbers`,
    );
  }
  // CPU time per request of the target's process: steadier than throughput on a shared machine, where two
  // identical instances measured in one round have differed by 25 % in requests per second.
  stats.cpuUs = ((cpuSeconds(target.pid) - cpuBefore) * 1e6) / stats.requests;
  // Let the target close the finished connections before the next run starts.
  await sleep(200);
  requestsServed.set(target.name, (requestsServed.get(target.name) ?? 0) + stats.requests);
  return stats;
}

async function warmUp(targets) {
  for (const target of targets) {
    for (const scenario of [HIGH, STREAM]) {
      if (takesPart(target, scenario)) await runOnce(target, scenario, config.warmupS);
    }
  }
}

/**
 * Rounds of A B C A B C …, so drift (thermal, other load, GC state) hits every target alike. After each
 * round, the project's VmRSS and the requests it has served so far (target: no growth across runs).
 */
async function measureRounds(targets, project) {
  const results = Object.fromEntries(
    SCENARIOS.map((s) => [s.id, Object.fromEntries(targets.map((t) => [t.name, []]))]),
  );
  const rssByRound = [];
  for (let round = 1; round <= config.rounds; round++) {
    // Each round starts one target later: a target's place in the round moves its numbers by up to ~15 %
    // on this machine (measured with a build compared against itself in two places), and no target may
    // keep the same place in every round.
    const shift = (round - 1) % targets.length;
    const order = [...targets.slice(shift), ...targets.slice(0, shift)];
    for (const scenario of SCENARIOS) {
      for (const target of order) {
        if (!takesPart(target, scenario)) continue;
        // Each target sat idle while the others ran (~40 s), and any Node process's first second after an
        // idle gap costs more (V8 shrinks the young generation and a full collection in the gap drops
        // optimised code: bench/README.md, "Idle gaps"); the same unmeasured second for every target, so that
        // a ratio compares the targets, not how each came out of the gap.
        if (config.preRunS > 0) await runOnce(target, scenario, config.preRunS);
        const stats = await runOnce(target, scenario, config.durationS);
        results[scenario.id][target.name].push(stats);
        console.log(
          `  round ${round}/${config.rounds} ${scenario.id.padEnd(14)} ${target.name.padEnd(11)} ` +
            `${fmt.rps(stats.reqPerSec).padStart(7)} req/s  mean ${fmt.ms(stats.mean)} ms  ` +
            `p50 ${fmt.ms(stats.p50)} ms  p99 ${fmt.ms(stats.p99)} ms  CPU ${stats.cpuUs.toFixed(0)} µs/request`,
        );
      }
    }
    rssByRound.push({ mb: rssMb(project.pid), served: requestsServed.get('project') ?? 0 });
  }
  return { results, rssByRound };
}

/** Per target: the median over rounds of each statistic. */
function medians(runs) {
  return {
    reqPerSec: median(runs.map((r) => r.reqPerSec)),
    mean: median(runs.map((r) => r.mean)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    cpuUs: median(runs.map((r) => r.cpuUs)),
  };
}

function printScenarioTable(scenario, perTarget) {
  console.log(`\n${scenario.id} (${scenario.label}) — medians of ${config.rounds} rounds`);
  console.log(
    `  ${'target'.padEnd(12)}${'req/s'.padStart(9)}${'mean ms'.padStart(10)}${'p50 ms'.padStart(10)}` +
      `${'p99 ms'.padStart(10)}${'vs passthrough'.padStart(16)}${'vs direct'.padStart(11)}` +
      `${'CPU µs/req'.padStart(12)}`,
  );
  for (const [name, m] of Object.entries(perTarget)) {
    console.log(
      `  ${name.padEnd(12)}${fmt.rps(m.reqPerSec).padStart(9)}${fmt.ms(m.mean).padStart(10)}` +
        `${fmt.ms(m.p50).padStart(10)}${fmt.ms(m.p99).padStart(10)}` +
        `${fmt.ratio(m.reqPerSec / perTarget.passthrough.reqPerSec).padStart(16)}` +
        `${fmt.ratio(m.reqPerSec / perTarget.direct.reqPerSec).padStart(11)}` +
        `${m.cpuUs.toFixed(0).padStart(12)}`,
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

/**
 * The project's VmRSS after each round, its growth from the first round to the last, and how many
 * requests it had served (warm-up included) when the last reading was taken.
 */
function reportMemory(rssByRound, rssAfterWarmup, processes) {
  const readings = rssByRound.map((r) => r.mb);
  const memory = { ...judgeRss(readings), last: readings.at(-1), served: rssByRound.at(-1).served };
  memory.enoughRequests = memory.served >= RSS_MIN_REQUESTS;
  console.log(
    `\nmemory (VmRSS): project after warm-up ${rssAfterWarmup.toFixed(1)} MB, after each round ` +
      rssByRound.map((r) => `${r.mb.toFixed(1)} MB (${fmt.count(r.served)} requests)`).join(', ') +
      `; growth round 1 → ${rssByRound.length}: ${formatGrowth(memory.growth)} ` +
      `(up to ${RSS_GROWTH_TOLERANCE_MB} MB is GC noise)`,
  );
  console.log(
    `  pass-through ${rssMb(processes.passthrough.pid).toFixed(1)} MB, mock ${rssMb(processes.mock.pid).toFixed(1)} MB`,
  );
  if (!memory.enoughRequests) {
    console.log(
      `  NOTE: the project had served only ${fmt.count(memory.served)} requests when its RSS was read; ` +
        `the target reads it after ${fmt.count(RSS_MIN_REQUESTS)} (raise BENCH_DURATION or BENCH_ROUNDS)`,
    );
  }
  return memory;
}

function printCpuProfiles(profileDir) {
  const profiles = existsSync(profileDir)
    ? readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'))
    : [];
  if (profiles.length === 0) console.log('\n(no CPU profile was written: did the project exit cleanly?)');
  for (const file of profiles) {
    console.log(`\n${path.join(profileDir, file)}`);
    console.log(formatProfileSummary(summariseProfile(path.join(profileDir, file))));
  }
}

/** Every target (docs/performance.md) as `field=value(ok|MISS)`, plus the targets; and whether all were met. */
function summarise({ table, results, memory, redactionMBps, attack }) {
  const c1 = table[C1.id];
  const added = {
    project: c1.project.mean - c1.direct.mean,
    passthrough: c1.passthrough.mean - c1.direct.mean,
    projectP50: c1.project.p50 - c1.direct.p50,
    passthroughP50: c1.passthrough.p50 - c1.direct.p50,
  };
  // The pass-through's added latency is the floor on this machine; a ratio means nothing if it is <= 0.
  const addedRatio = added.passthrough > 0 ? fmt.ratio(added.project / added.passthrough) : 'n/a';
  // Each judged ratio is taken within each round — the two targets measured minutes apart at most, in the
  // same state of the machine — and the median of the rounds' ratios is judged: on a shared machine one
  // target's run can read 2x slower than its others (even the bare mock's), and a ratio of medians lets one
  // such run decide. The translation part judges its pairs the same way (lib/translation.mjs).
  const roundRatio = (id, on, off, stat = (run) => run.reqPerSec) =>
    median(results[id][on].map((run, round) => stat(run) / stat(results[id][off][round])));
  const nonstreamRatio = roundRatio(HIGH.id, 'project', 'passthrough');
  const streamRatio = roundRatio(STREAM.id, 'project', 'passthrough');
  const captureRatio = roundRatio(HIGH.id, 'capture', 'project');
  const responsesRatio = (id, name = 'responses') => roundRatio(id, name, 'project');
  const anthropicRatio = responsesRatio(STREAM.id, 'anth-xlate');
  const lowerOfScenarios = (on, off) =>
    Math.min(roundRatio(HIGH.id, on, off), roundRatio(STREAM.id, on, off));
  const routesRatio = lowerOfScenarios('routes', 'project');
  const guardsRatio = lowerOfScenarios('guards', 'no-guards');
  const limitsRatio = lowerOfScenarios('limits', 'project');
  // The same comparisons in CPU time per request (the cheaper one's over the dearer one's: read like the
  // throughput ratio, 1.00x = no cost): printed beside each on/off row, since instances differ by more in
  // throughput from run to run than a feature's cost. The verdict stays with throughput, as the targets say.
  const cpuRatio = (on, off, ids = [HIGH.id, STREAM.id]) =>
    `[cpu ${fmt.ratio(Math.min(...ids.map((id) => roundRatio(id, on, off, (run) => 1 / run.cpuUs))))}]`;
  const ok = {
    nonstream: nonstreamRatio >= TARGETS.throughputRatio,
    stream: streamRatio >= TARGETS.throughputRatio,
    addedAbs: added.project <= TARGETS.addedLatencyMs,
    addedRel: added.project <= TARGETS.addedLatencyVsPassthrough * added.passthrough,
    rss: memory.rssOk,
    growth: memory.growthOk,
    redaction: redactionMBps === null || redactionMBps >= TARGETS.redactionMBps,
    capture: captureRatio >= TARGETS.captureRatio,
    responses: responsesRatio(HIGH.id) >= TARGETS.responsesRatio,
    responsesStream: responsesRatio(STREAM.id) >= TARGETS.responsesRatio,
    routes: routesRatio >= TARGETS.routesRatio,
    anthropicStream: anthropicRatio >= TARGETS.translatedStreamRatio,
    guards: guardsRatio >= TARGETS.guardsRatio,
    limits: limitsRatio >= TARGETS.limitsRatio,
    attackP99: attack.p99Ok,
    attackRss: attack.rssOk,
  };
  const rssCount = `@${Math.round(memory.served / 1000)}k_requests${memory.enoughRequests ? '' : '(<100k!)'}`;
  const line =
    `SUMMARY ${HIGH.id}=${fmt.ratio(nonstreamRatio)}(${verdict(ok.nonstream)}) ` +
    `${STREAM.id}=${fmt.ratio(streamRatio)}(${verdict(ok.stream)}) ` +
    `added_latency_c1(mean): project=${added.project.toFixed(3)}ms(${verdict(ok.addedAbs)}) ` +
    `passthrough=${added.passthrough.toFixed(3)}ms project/passthrough=${addedRatio}(${verdict(ok.addedRel)}) ` +
    `added_latency_c1(p50): project=${added.projectP50.toFixed(3)}ms passthrough=${added.passthroughP50.toFixed(3)}ms ` +
    `project_rss=${memory.last.toFixed(0)}MB${rssCount}(${verdict(ok.rss)}) ` +
    `rss_growth_round1_to_${config.rounds}=${formatGrowth(memory.growth)}(${verdict(ok.growth)}) ` +
    `${attackSummary(attack)} ` +
    `redaction=${redactionMBps === null ? 'n/a' : `${redactionMBps.toFixed(0)}MB/s(${verdict(ok.redaction)})`} ` +
    `capture_on/off_${HIGH.id}=${fmt.ratio(captureRatio)}(${verdict(ok.capture)})${cpuRatio('capture', 'project', [HIGH.id])} ` +
    `responses/chat_passthrough_${HIGH.id}=${fmt.ratio(responsesRatio(HIGH.id))}(${verdict(ok.responses)}) ` +
    `${STREAM.id}=${fmt.ratio(responsesRatio(STREAM.id))}(${verdict(ok.responsesStream)}) ` +
    `responses_translated/chat_passthrough_${STREAM.id}=${fmt.ratio(responsesRatio(STREAM.id, 'resp-xlate'))} ` +
    `anthropic_translated/chat_passthrough_${STREAM.id}=${fmt.ratio(anthropicRatio)}(${verdict(ok.anthropicStream)}) ` +
    `routes_on/off(min of ${HIGH.id},${STREAM.id})=${fmt.ratio(routesRatio)}(${verdict(ok.routes)})${cpuRatio('routes', 'project')} ` +
    `guards_on/off(agent request, min of ${HIGH.id},${STREAM.id})=${fmt.ratio(guardsRatio)}(${verdict(ok.guards)})${cpuRatio('guards', 'no-guards')} ` +
    `limits_on/off(min of ${HIGH.id},${STREAM.id})=${fmt.ratio(limitsRatio)}(${verdict(ok.limits)})${cpuRatio('limits', 'project')} ` +
    `(targets: >=${TARGETS.throughputRatio}x, added <=${TARGETS.addedLatencyMs}ms and ` +
    `<=${TARGETS.addedLatencyVsPassthrough}x passthrough's, rss <=${RSS_TARGET_MB}MB, ` +
    `growth <=${RSS_GROWTH_TOLERANCE_MB}MB, attack p99 <=${ATTACK_P99_RATIO_TARGET}x unloaded, ` +
    `>=${TARGETS.redactionMBps}MB/s, capture >=${TARGETS.captureRatio}x, routes >=${TARGETS.routesRatio}x, ` +
    `guards >=${TARGETS.guardsRatio}x, limits >=${TARGETS.limitsRatio}x, responses >=${TARGETS.responsesRatio}x, ` +
    `anthropic translated stream >=${TARGETS.translatedStreamRatio}x)`;
  return { line, allOk: Object.values(ok).every(Boolean) };
}

/** How the project compares with a peer gateway: throughput ratios and added latency (no target: context). */
function peerLine(name, table) {
  const ratio = (id) =>
    table[id][name] ? fmt.ratio(table[id].project.reqPerSec / table[id][name].reqPerSec) : 'n/a';
  const added = (who) => (table[C1.id][who].mean - table[C1.id].direct.mean).toFixed(3);
  const cpu = (id) => (table[id][name] ? fmt.ratio(table[id][name].cpuUs / table[id].project.cpuUs) : 'n/a');
  return (
    `PEER ${name}: project/${name} ${HIGH.id}=${ratio(HIGH.id)} ${STREAM.id}=${ratio(STREAM.id)} ` +
    `${C1.id}=${ratio(C1.id)} added_latency_c1(mean): ${name}=${added(name)}ms project=${added('project')}ms ` +
    `cpu_per_request ${name}/project: ${HIGH.id}=${cpu(HIGH.id)} ${STREAM.id}=${cpu(STREAM.id)}`
  );
}

/** The large-body rows against the pass-through, the project and any baseline build (not the others). */
async function measureBodies(targets, processes, peerProcesses) {
  const pids = new Map([
    ['passthrough', processes.passthrough.pid],
    ['project', processes.project.pid],
    ...config.peers.map((peer, i) => [peer.name, peerProcesses[i].pid]),
  ]);
  const bodyTargets = targets
    .filter(
      (t) =>
        t.name === 'passthrough' ||
        t.name === 'project' ||
        config.peers.some((p) => p.project && p.name === t.name),
    )
    .map((t) => ({ ...t, pid: pids.get(t.name) }));
  console.log(`large bodies: ${config.bodySizes.join(', ')} bytes, ${config.bodyConnections} connections`);
  const rows = await runBodies({
    targets: bodyTargets,
    sizes: config.bodySizes,
    rounds: config.rounds,
    durationS: config.durationS,
    connections: config.bodyConnections,
  });
  printBodies(rows, config.bodyConnections, config.rounds);
  return rows;
}

/** The many-streams row, for the project and (when measured) the baseline build, each on a fresh instance. */
async function measureManyStreams(workDir) {
  const results = [];
  const runs = [
    { name: 'project' },
    ...config.peers.filter((p) => p.project).map((p) => ({ name: p.name, main: baselineMain() })),
  ];
  for (const run of runs) {
    console.log(`many streams: ${run.name}, ${config.manyStreams.count} streams…`);
    const result = await runManyStreams({ workDir, settings: config.manyStreams, ...run });
    console.log(formatManyStreams(result));
    results.push(result);
  }
  return results;
}

/** BENCH_ONLY=attack: the attack row on its own, against a mock of its own. */
async function runAttackOnly(workDir) {
  const mock = await startMock({ streamChunks: config.streamChunks });
  try {
    const attack = await runAttackScenario({ upstreamOrigin: mock.origin, workDir, config });
    const baselineAttack = config.peers.some((peer) => peer.project)
      ? await runAttackScenario({
          upstreamOrigin: mock.origin,
          workDir,
          config,
          main: baselineMain(),
          label: 'baseline',
        })
      : null;
    console.log(`\nSUMMARY ${attackSummary(attack)}`);
    if (baselineAttack) console.log(`PEER baseline: ${attackSummary(baselineAttack)}`);
    if (config.strict && !(attack.p99Ok && attack.rssOk)) process.exitCode = 1;
  } finally {
    await stopChild(mock.child);
  }
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
  const runMain = config.only.has('main');
  const runBodyRows = config.only.has('bodies') && config.bodySizes.length > 0;
  const runStreams = config.only.has('streams') && config.manyStreams.count > 0;

  // The translation pairs (lib/translation.mjs) run first, on processes of their own, stopped when done.
  const translation = config.only.has('translation')
    ? await runTranslation({ workDir, settings: { ...config, ...config.translation } })
    : null;
  if (translation && config.only.size === 1) {
    console.log(`\n${translation.line}`);
    if (config.strict && !translation.allOk) process.exitCode = 1;
    if (!config.keepFiles) rmSync(workDir, { recursive: true, force: true });
    return;
  }

  // The attack row alone (BENCH_ONLY=attack): the mock and the attacked instance, the baseline's with
  // BENCH_PEERS=baseline; nothing else starts.
  if (config.only.has('attack') && !runMain) {
    await runAttackOnly(workDir);
    if (!config.keepFiles) rmSync(workDir, { recursive: true, force: true });
    return;
  }

  const { processes, peerProcesses, targets, profileDir } = await startTargets(workDir);
  const { project } = processes;
  console.log(`project log (level info): ${path.join(workDir, 'project.log')}`);
  await verifyTargets(targets);

  console.log('warming up (JIT, connection pools)…');
  await warmUp(targets);
  const rssAfterWarmup = rssMb(project.pid);

  let mainResults = null;
  if (runMain) {
    console.log('measuring:');
    const { results, rssByRound } = await measureRounds(targets, project);
    const table = Object.fromEntries(
      SCENARIOS.map((s) => [
        s.id,
        Object.fromEntries(
          targets.filter((t) => takesPart(t, s)).map((t) => [t.name, medians(results[s.id][t.name])]),
        ),
      ]),
    );
    for (const scenario of SCENARIOS) printScenarioTable(scenario, table[scenario.id]);

    const memory = reportMemory(rssByRound, rssAfterWarmup, processes);
    const log = logStats(path.join(workDir, 'project.log'));
    console.log(
      `project log: ${log.mb.toFixed(1)} MB, ${fmt.count(log.lines)} lines for ` +
        `${fmt.count(requestsServed.get('project') ?? 0)} requests under load (one access line each)`,
    );
    mainResults = { table, results, memory };
  }

  const bodyRows = runBodyRows ? await measureBodies(targets, processes, peerProcesses) : [];

  // The attack scenario has the machine to itself but the mock, which stays as its upstream.
  await Promise.all([
    stopChild(project.child),
    stopChild(processes.captured.child),
    stopChild(processes.responses.child),
    stopChild(processes.responsesTranslated.child),
    stopChild(processes.anthropicTranslated.child),
    stopChild(processes.routed.child),
    stopChild(processes.guarded.child),
    stopChild(processes.limited.child),
    stopChild(processes.unguarded.child),
    stopChild(processes.passthrough.child),
    ...peerProcesses.map((p) => stopChild(p.child)),
  ]);
  let attack = null;
  let baselineAttack = null;
  if (runMain) {
    attack = await runAttackScenario({ upstreamOrigin: processes.mock.origin, workDir, config });
    // The baseline build under the same attack, for a before/after comparison in one run.
    baselineAttack = config.peers.some((peer) => peer.project)
      ? await runAttackScenario({
          upstreamOrigin: processes.mock.origin,
          workDir,
          config,
          main: baselineMain(),
          label: 'baseline',
        })
      : null;
  }
  await stopChild(processes.mock.child);

  const streamRows = runStreams ? await measureManyStreams(workDir) : [];

  if (config.cpuProfile) printCpuProfiles(profileDir);

  let allOk = true;
  if (runMain) {
    console.log('\nredaction:');
    const redactionMBps = await runRedactionBench();
    if (redactionMBps === null) console.log('  (bench/redaction.mjs not available)');
    const summary = summarise({
      table: mainResults.table,
      results: mainResults.results,
      memory: mainResults.memory,
      redactionMBps,
      attack,
    });
    allOk = summary.allOk;
    console.log(`\n${summary.line}`);
    for (const peer of config.peers) console.log(peerLine(peer.name, mainResults.table));
    if (baselineAttack) console.log(`PEER baseline: ${attackSummary(baselineAttack)}`);
  }
  if (bodyRows.length > 0 || streamRows.length > 0) {
    const fields = [
      ...bodiesSummary(bodyRows),
      ...streamRows.filter((r) => r.name === 'project').map(manyStreamsSummary),
    ];
    allOk &&= fields.every((f) => f.ok);
    console.log(
      `SUMMARY2 ${fields.map((f) => f.field).join(' ')} (targets: body_32k >=0.9x, body_200k >=0.8x, rss <=250MB)`,
    );
    for (const peer of config.peers.filter((p) => p.project)) {
      const peerFields = bodiesSummary(bodyRows, peer.name).map((f) => f.field.replace(/\((ok|MISS)\)/, ''));
      const peerStreams = streamRows
        .filter((r) => r.name === peer.name)
        .map((r) => manyStreamsSummary(r).field);
      console.log(`PEER ${peer.name}: ${[...peerFields, ...peerStreams].join(' ')}`);
    }
  }
  if (translation) {
    console.log(translation.line);
    allOk &&= translation.allOk;
  }
  if (config.strict && !allOk) process.exitCode = 1;
  // The logs are ~25 MB a run: kept only on request (or when they sit beside a CPU profile).
  if (config.keepFiles || config.cpuProfile) console.log(`(logs and profiles kept in ${workDir})`);
  else rmSync(workDir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(`\nbench: FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
