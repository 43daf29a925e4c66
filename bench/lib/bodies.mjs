// The large-body rows (docs/performance.md, "Large bodies"): non-streaming requests of a coding agent's size
// — 1 KB, 32 KB, 200 KB by default — against the pass-through and the project (and a baseline build, when
// measured), in rounds with the order rotated, as the main scenarios are. The project's RSS is sampled
// through the phase: its peak is reported with each size.
import { setTimeout as sleep } from 'node:timers/promises';
import { fmt } from './format.mjs';
import { failuresOf, measure } from './load.mjs';
import { cpuSeconds, rssMb } from './processes.mjs';
import { median } from './stats.mjs';

/** Targets of a 200 KB body: ≥ 0.8× the pass-through's throughput; 32 KB: ≥ 0.9×. */
export const BODY_TARGETS = new Map([
  [32 * 1024, 0.9],
  [200 * 1024, 0.8],
]);

export function bodySizesFromEnv(value) {
  const raw = value === undefined || value === '' ? '1024,32768,204800' : value;
  if (raw === '0' || raw === 'off') return [];
  return raw.split(',').map((part) => {
    const bytes = Number(part.trim());
    if (!Number.isInteger(bytes) || bytes <= 0) throw new Error(`BENCH_BODY_SIZES: bad size '${part}'`);
    return bytes;
  });
}

const label = (bytes) => (bytes >= 1024 ? `${Math.round(bytes / 1024)}k` : `${bytes}b`);

/** Samples the VmRSS of `pids` every 100 ms until stopped; returns each one's peak. */
function sampleRss(pids) {
  const peaks = new Map(pids.map((pid) => [pid, 0]));
  const timer = setInterval(() => {
    for (const pid of pids) {
      try {
        peaks.set(pid, Math.max(peaks.get(pid), rssMb(pid)));
      } catch {
        // The process is gone: its last peak stands.
      }
    }
  }, 100);
  return () => {
    clearInterval(timer);
    return peaks;
  };
}

/**
 * Measures every size against `targets` (each {name, origin, key, pid?}) in `rounds` rounds. Returns
 * per size: the median req/s of each target, its ratio to the pass-through's, and each target's RSS peak.
 */
export async function runBodies({ targets, sizes, rounds, durationS, connections }) {
  const results = new Map(sizes.map((bytes) => [bytes, new Map(targets.map((t) => [t.name, []]))]));
  // CPU per request: steadier than throughput on a machine others use too.
  const cpu = new Map(sizes.map((bytes) => [bytes, new Map(targets.map((t) => [t.name, []]))]));
  const rss = new Map(sizes.map((bytes) => [bytes, new Map()]));
  for (const bytes of sizes) {
    const stopSampling = sampleRss(targets.filter((t) => t.pid).map((t) => t.pid));
    for (let round = 1; round <= rounds; round++) {
      const shift = (round - 1) % targets.length;
      const order = [...targets.slice(shift), ...targets.slice(0, shift)];
      for (const target of order) {
        const cpuBefore = target.pid ? cpuSeconds(target.pid) : 0;
        const stats = await measure({
          origin: target.origin,
          key: target.key,
          stream: false,
          connections,
          durationS,
          bodyBytes: bytes,
        });
        const problems = failuresOf(stats);
        if (problems.length > 0) {
          throw new Error(
            `${target.name} body_${label(bytes)}: ${problems.join('; ')} — refusing to report these numbers`,
          );
        }
        results.get(bytes).get(target.name).push(stats.reqPerSec);
        const cpuUs = target.pid ? ((cpuSeconds(target.pid) - cpuBefore) * 1e6) / stats.requests : NaN;
        cpu.get(bytes).get(target.name).push(cpuUs);
        console.log(
          `  round ${round}/${rounds} body_${label(bytes).padEnd(5)} ${target.name.padEnd(11)} ` +
            `${fmt.rps(stats.reqPerSec).padStart(7)} req/s  mean ${fmt.ms(stats.mean)} ms  p99 ${fmt.ms(stats.p99)} ms  ` +
            `CPU ${cpuUs.toFixed(0)} µs/request`,
        );
        await sleep(200);
      }
    }
    const peaks = stopSampling();
    for (const target of targets) if (target.pid) rss.get(bytes).set(target.name, peaks.get(target.pid));
  }
  return sizes.map((bytes) => {
    const perTarget = new Map([...results.get(bytes)].map(([name, runs]) => [name, median(runs)]));
    const cpuUs = new Map([...cpu.get(bytes)].map(([name, runs]) => [name, median(runs)]));
    return { bytes, label: label(bytes), perTarget, cpuUs, rssPeak: rss.get(bytes) };
  });
}

export function printBodies(rows, connections, rounds) {
  console.log(`\nlarge bodies (non-streaming, ${connections} connections) — medians of ${rounds} rounds`);
  for (const row of rows) {
    const passthrough = row.perTarget.get('passthrough');
    const cells = [...row.perTarget].map(([name, rps]) => {
      const peak = row.rssPeak.get(name);
      const cpuUs = row.cpuUs.get(name);
      return (
        `${name} ${fmt.rps(rps)} req/s (${fmt.ratio(rps / passthrough)}, CPU ${cpuUs.toFixed(0)} µs/req` +
        `${peak ? `, RSS peak ${peak.toFixed(0)} MB` : ''})`
      );
    });
    console.log(`  ${row.label.padEnd(5)} ${cells.join('  ')}`);
  }
}

/** SUMMARY fields: `body_200k=0.85x(ok)`, judged where a size has a target. */
export function bodiesSummary(rows, target = 'project') {
  return rows.map((row) => {
    const ratio = row.perTarget.get(target) / row.perTarget.get('passthrough');
    const floor = BODY_TARGETS.get(row.bytes);
    const verdict = floor === undefined ? '' : ratio >= floor ? '(ok)' : '(MISS)';
    return {
      field: `body_${row.label}=${fmt.ratio(ratio)}${verdict}`,
      ok: floor === undefined || ratio >= floor,
    };
  });
}
