// The attack scenario (docs/performance.md, the attack row): 1,000 addresses send bad keys at full speed
// while one valid client sends normal traffic; the valid client's p99 must stay within 2× of its unloaded
// p99, and the proxy's memory under the cap.
//
// A second project instance runs as if behind a reverse proxy (--trusted-proxy 127.0.0.1), so that each
// request can name its client in X-Forwarded-For, with brute-force protection on (the default, passed
// explicitly so a changed default cannot turn the scenario into a plain 401 flood). The valid client is
// measured in this process like every other latency, alone and under attack in turn (A B A B …); the
// attacker is a child process of its own (lib/attacker.mjs), so its load generation neither shares this
// event loop nor distorts the valid client's timings.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROXY_KEY } from './constants.mjs';
import { fmt, verdict } from './format.mjs';
import { operatorGet } from './operator.mjs';
import { failuresOf, measure } from './load.mjs';
import { rssMb, startAttacker, startProject, stopChild } from './processes.mjs';
import { RSS_TARGET_MB } from './rss.mjs';
import { median } from './stats.mjs';
import { verifyBruteForceBlocks, verifyCompletion } from './verify.mjs';

export const ATTACK_P99_RATIO_TARGET = 2;
// Documentation addresses (RFC 5737): the valid client, and one blocked on purpose by the verification.
const VALID_CLIENT = '192.0.2.1';
const VERIFY_BLOCKED = '198.51.100.7';
const ATTACKER_TIMEOUT_MS = 20_000;
// autocannon opens its connections at once, but give the attack a moment to reach full speed.
const RAMP_UP_MS = 250;
// After the attack stops, let the proxy finish the attacker's last requests and close its sockets.
const SETTLE_MS = 500;

/** The attacker's next IPC message of `type`; its death or silence is an error. */
function nextMessage(child, type) {
  return new Promise((resolve, reject) => {
    const done = (settle, value) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      settle(value);
    };
    const onMessage = (msg) => msg.type === type && done(resolve, msg);
    const onExit = (code) => done(reject, new Error(`attacker exited with code ${code}`));
    const timer = setTimeout(
      () => done(reject, new Error(`attacker sent no '${type}' within ${ATTACKER_TIMEOUT_MS} ms`)),
      ATTACKER_TIMEOUT_MS,
    );
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function attackOn(attacker, options) {
  const running = nextMessage(attacker.child, 'running');
  attacker.child.send({ type: 'start', ...options });
  await running;
  await sleep(RAMP_UP_MS);
}

/** Stops the attack; its counts: requests, statuses {code: n}, errors, timeouts, durationS. */
async function attackOff(attacker) {
  const stopped = nextMessage(attacker.child, 'stopped');
  attacker.child.send({ type: 'stop' });
  return stopped;
}

/** 401 (bad key) and 429 (address blocked) are what an attacker should get; anything else is a fault. */
function attackFaults(counts) {
  const faults = Object.entries(counts.statuses)
    .filter(([code]) => code !== '401' && code !== '429')
    .map(([code, n]) => `${n} × status ${code}`);
  if (counts.errors > 0) faults.push(`${counts.errors} socket errors (${counts.timeouts} timeouts)`);
  return faults;
}

/** The valid client: correct key, its own address, 1 connection. Anything but 200s aborts the benchmark. */
async function measureValidClient(target, durationS) {
  const stats = await measure({
    origin: target.origin,
    key: PROXY_KEY,
    stream: false,
    connections: 1,
    durationS,
    headers: { 'x-forwarded-for': VALID_CLIENT },
  });
  const problems = failuresOf(stats);
  if (problems.length > 0) {
    throw new Error(
      `attack scenario, valid client: ${problems.join('; ')} — refusing to report these numbers`,
    );
  }
  return stats;
}

/** Addresses the proxy tracks and blocks, from GET /admin/auth/blocks; null if it does not say. */
async function blockStats(origin) {
  try {
    const res = await operatorGet(`${origin}/admin/auth/blocks`);
    const body = await res.body.json();
    return Number.isFinite(body.tracked) ? { tracked: body.tracked, blocked: body.blocked_count } : null;
  } catch {
    return null;
  }
}

function printRun(round, config, label, stats, extra = '') {
  console.log(
    `  round ${round}/${config.rounds} ${'attack_c1'.padEnd(14)} ${label.padEnd(11)} ` +
      `${fmt.rps(stats.reqPerSec).padStart(7)} req/s  mean ${fmt.ms(stats.mean)} ms  ` +
      `p50 ${fmt.ms(stats.p50)} ms  p99 ${fmt.ms(stats.p99)} ms${extra}`,
  );
}

function statusLine(statuses) {
  const codes = Object.keys(statuses).sort();
  return codes.length === 0
    ? 'none'
    : codes.map((code) => `${code}: ${fmt.count(statuses[code])}`).join(', ');
}

/** Rounds of unloaded, attacked (A B A B …); the attacked instance's RSS after each attack. */
async function measureAttackRounds(target, attacker, config) {
  const runs = { unloaded: [], attacked: [], attacks: [], rss: [] };
  for (let round = 1; round <= config.rounds; round++) {
    const unloaded = await measureValidClient(target, config.durationS);
    runs.unloaded.push(unloaded);
    printRun(round, config, 'unloaded', unloaded);
    await sleep(200);

    await attackOn(attacker, {
      origin: target.origin,
      connections: config.attackConnections,
      addresses: config.attackAddresses,
    });
    const attacked = await measureValidClient(target, config.durationS);
    const counts = await attackOff(attacker);
    const faults = attackFaults(counts);
    if (faults.length > 0) {
      throw new Error(`attack scenario: the attacker got ${faults.join('; ')} (want only 401 and 429)`);
    }
    runs.attacked.push(attacked);
    runs.attacks.push(counts);
    runs.rss.push(rssMb(target.pid));
    printRun(
      round,
      config,
      'attacked',
      attacked,
      `  | attacker ${fmt.rps(counts.requests / counts.durationS)} req/s (${statusLine(counts.statuses)})` +
        `  RSS ${runs.rss.at(-1).toFixed(1)} MB`,
    );
    await sleep(SETTLE_MS);
  }
  return runs;
}

function sumStatuses(attacks) {
  const total = {};
  for (const { statuses } of attacks) {
    for (const [code, n] of Object.entries(statuses)) total[code] = (total[code] ?? 0) + n;
  }
  return total;
}

function printAttackReport(config, runs, result, blocks) {
  console.log(
    `\nattack_c1 (valid client ${VALID_CLIENT}, 1 connection, non-streaming; attacker: ` +
      `${fmt.count(config.attackAddresses)} addresses, ${config.attackConnections} connections, wrong keys) ` +
      `— medians of ${config.rounds} rounds`,
  );
  console.log(
    `  ${'valid client'.padEnd(14)}${'req/s'.padStart(9)}${'mean ms'.padStart(10)}${'p50 ms'.padStart(10)}` +
      `${'p99 ms'.padStart(10)}`,
  );
  for (const [name, list] of [
    ['unloaded', runs.unloaded],
    ['attacked', runs.attacked],
  ]) {
    const m = (key) => median(list.map((r) => r[key]));
    console.log(
      `  ${name.padEnd(14)}${fmt.rps(m('reqPerSec')).padStart(9)}${fmt.ms(m('mean')).padStart(10)}` +
        `${fmt.ms(m('p50')).padStart(10)}${fmt.ms(m('p99')).padStart(10)}`,
    );
  }
  console.log(
    `  p99 attacked ÷ unloaded: ${fmt.ratio(result.p99Ratio)} (target <= ${ATTACK_P99_RATIO_TARGET}x)`,
  );
  const total = sumStatuses(runs.attacks);
  const requests = runs.attacks.reduce((sum, a) => sum + a.requests, 0);
  const attackRps = median(runs.attacks.map((a) => a.requests / a.durationS));
  console.log(
    `  attacker: ${fmt.count(requests)} requests (median ${fmt.rps(attackRps)} req/s) — ${statusLine(total)}; ` +
      'no other status, no socket errors',
  );
  console.log(
    `  attacked instance: VmRSS after each attack ${runs.rss.map((mb) => mb.toFixed(1)).join(', ')} MB ` +
      `(cap ${RSS_TARGET_MB} MB)` +
      (blocks
        ? `; ${fmt.count(blocks.tracked)} addresses tracked, ${fmt.count(blocks.blocked)} blocked`
        : ''),
  );
}

/**
 * Runs the attack scenario against a fresh project instance in front of `upstreamOrigin`. Returns the
 * median p99s, their ratio and the instance's peak RSS after an attack, with verdicts.
 */
export async function runAttackScenario({ upstreamOrigin, workDir, config, main, label = 'project' }) {
  console.log(
    `\nattack scenario (${label}): a second instance (--trusted-proxy 127.0.0.1, brute-force protection on), ` +
      `the attacker in its own process`,
  );
  const project = await startProject({
    upstreamOrigin,
    logFile: path.join(workDir, `${label}-attack.log`),
    extraArgs: ['--trusted-proxy', '127.0.0.1', '--enable-brute-force-protection'],
    ...(main ? { main } : {}),
  });
  const attacker = await startAttacker();
  try {
    const target = { name: `${label} (attack)`, origin: project.origin, key: PROXY_KEY, pid: project.pid };
    await verifyCompletion({ ...target, headers: { 'x-forwarded-for': VALID_CLIENT } });
    await verifyBruteForceBlocks(target, VERIFY_BLOCKED, VALID_CLIENT);
    console.log(
      `verified: the valid client gets 200; wrong keys from one address get 401, then 429 once it is blocked, ` +
        `while other addresses still get 200`,
    );
    await measureValidClient(target, config.warmupS);

    const runs = await measureAttackRounds(target, attacker, config);
    const unloadedP99 = median(runs.unloaded.map((r) => r.p99));
    const attackedP99 = median(runs.attacked.map((r) => r.p99));
    const rssPeak = Math.max(...runs.rss);
    const result = {
      unloadedP99,
      attackedP99,
      p99Ratio: attackedP99 / unloadedP99,
      rssPeak,
      p99Ok: attackedP99 / unloadedP99 <= ATTACK_P99_RATIO_TARGET,
      rssOk: rssPeak <= RSS_TARGET_MB,
    };
    printAttackReport(config, runs, result, await blockStats(project.origin));
    return result;
  } finally {
    await Promise.all([stopChild(attacker.child), stopChild(project.child)]);
  }
}

export function attackSummary(result) {
  return (
    `attack_p99_ratio=${fmt.ratio(result.p99Ratio)}(${verdict(result.p99Ok)}) ` +
    `attack_rss=${result.rssPeak.toFixed(0)}MB(${verdict(result.rssOk)})`
  );
}
