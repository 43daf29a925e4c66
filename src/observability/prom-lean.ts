// The parts of prom-client the proxy uses, loaded on their own. Its entry point also loads the Pushgateway,
// cluster aggregation and, through its CPU metric, @opentelemetry/api: ~4 MB of resident memory for code
// the proxy never runs (docs/performance.md: RSS ≤ 120 MB).
// `prom-client/lib/...` is not prom-client's public API: its paths and exports may change in any release,
// so package.json pins prom-client to one exact version (not a ^ range) and an upgrade is a deliberate
// edit that runs the tests against the new paths. A wrong path fails every test at once.
import type * as Prom from 'prom-client';
import CounterModule from 'prom-client/lib/counter.js';
import GaugeModule from 'prom-client/lib/gauge.js';
import eventLoopLag from 'prom-client/lib/metrics/eventLoopLag.js';
import gc from 'prom-client/lib/metrics/gc.js';
import heapSizeAndUsed from 'prom-client/lib/metrics/heapSizeAndUsed.js';
import heapSpacesSizeAndUsed from 'prom-client/lib/metrics/heapSpacesSizeAndUsed.js';
import osMemoryHeap from 'prom-client/lib/metrics/osMemoryHeap.js';
import processHandles from 'prom-client/lib/metrics/processHandles.js';
import processMaxFileDescriptors from 'prom-client/lib/metrics/processMaxFileDescriptors.js';
import processOpenFileDescriptors from 'prom-client/lib/metrics/processOpenFileDescriptors.js';
import processRequests from 'prom-client/lib/metrics/processRequests.js';
import processResources from 'prom-client/lib/metrics/processResources.js';
import processStartTime from 'prom-client/lib/metrics/processStartTime.js';
import version from 'prom-client/lib/metrics/version.js';
import RegistryModule from 'prom-client/lib/registry.js';

export const Registry = RegistryModule as typeof Prom.Registry;
export type Registry = Prom.Registry;
export const Counter = CounterModule as typeof Prom.Counter;
export type Counter<T extends string = string> = Prom.Counter<T>;
export const Gauge = GaugeModule as typeof Prom.Gauge;
export type Gauge<T extends string = string> = Prom.Gauge<T>;

type DefaultMetric = (registry: Registry, config: Record<string, unknown>) => void;

/** prom-client's default metrics but its CPU one, which is replaced below. */
const DEFAULT_METRICS = [
  processStartTime,
  osMemoryHeap,
  processOpenFileDescriptors,
  processMaxFileDescriptors,
  eventLoopLag,
  processResources,
  processHandles,
  processRequests,
  heapSizeAndUsed,
  heapSpacesSizeAndUsed,
  version,
  gc,
] as DefaultMetric[];

/** `collectDefaultMetrics` with the same metric names; `process_cpu_*` measured without OpenTelemetry. */
export function collectDefaultMetrics(config: { register: Registry; prefix: string }): void {
  for (const metric of DEFAULT_METRICS)
    metric(config.register, { eventLoopMonitoringPrecision: 10, ...config });
  processCpuSeconds(config.register, config.prefix);
}

function processCpuSeconds(registry: Registry, prefix: string): void {
  let last = process.cpuUsage();
  const registers = [registry];
  const user = new Counter({
    name: `${prefix}process_cpu_user_seconds_total`,
    help: 'Total user CPU time spent in seconds.',
    registers,
    // This one metric's collect sets all three, as prom-client's own does.
    collect() {
      const now = process.cpuUsage();
      const userSeconds = (now.user - last.user) / 1e6;
      const systemSeconds = (now.system - last.system) / 1e6;
      last = now;
      user.inc(userSeconds);
      system.inc(systemSeconds);
      total.inc(userSeconds + systemSeconds);
    },
  });
  const system = new Counter({
    name: `${prefix}process_cpu_system_seconds_total`,
    help: 'Total system CPU time spent in seconds.',
    registers,
  });
  const total = new Counter({
    name: `${prefix}process_cpu_seconds_total`,
    help: 'Total user and system CPU time spent in seconds.',
    registers,
  });
}
