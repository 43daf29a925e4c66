import { describe, expect, it } from 'vitest';
import type * as Prom from 'prom-client';
import { Counter, Registry } from './prom-lean.js';
// An internal path, like those of prom-lean.ts: valid for the exact prom-client version package.json pins.
import HistogramModule from 'prom-client/lib/histogram.js';
import { RequestStats } from './request-stats.js';

const Histogram = HistogramModule as typeof Prom.Histogram;
const BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1];
const NAMES = {
  requestsName: 'x_requests_total',
  requestsHelp: 'Requests answered, by route, backend and status',
  durationName: 'x_request_duration_seconds',
  durationHelp: 'Time from request to response end, by route and backend',
};

/** The same observations through prom-client's own Counter and Histogram. */
function promClientText(observations: Array<[string, string, number, number]>): Promise<string> {
  const registry = new Registry();
  const requests = new Counter({
    name: NAMES.requestsName,
    help: NAMES.requestsHelp,
    labelNames: ['route', 'backend', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: NAMES.durationName,
    help: NAMES.durationHelp,
    labelNames: ['route', 'backend'],
    buckets: BUCKETS,
    registers: [registry],
  });
  for (const [route, backend, status, seconds] of observations) {
    requests.labels({ route, backend, status: String(status) }).inc();
    duration.labels({ route, backend }).observe(seconds);
  }
  return registry.metrics();
}

describe('RequestStats', () => {
  it('prints exactly what prom-client’s Counter and Histogram print for the same requests', async () => {
    const observations: Array<[string, string, number, number]> = [
      ['/v1/chat/completions', 'openai', 200, 0.004],
      ['/v1/chat/completions', 'openai', 200, 0.001],
      ['/v1/chat/completions', 'openai', 502, 0.2],
      ['/anthropic/v1/messages', 'anthropic', 200, 3],
      ['/v1/chat/completions', 'gemini', 429, 0.0001],
      ['unmatched', '', 404, 0.05],
      ['/v1/chat/completions', 'openai', 200, 0.005],
    ];
    const stats = new RequestStats({ ...NAMES, buckets: BUCKETS });
    const registry = new Registry();
    registry.registerMetric(stats.requests as unknown as Prom.Metric);
    registry.registerMetric(stats.duration as unknown as Prom.Metric);
    for (const [route, backend, status, seconds] of observations)
      stats.observe(route, backend, status, seconds);

    const ours = await registry.metrics();
    expect(ours).toBe(await promClientText(observations));
    expect(ours).toContain('x_requests_total{route="/v1/chat/completions",backend="openai",status="200"} 3');
    expect(ours).toContain(
      'x_request_duration_seconds_bucket{le="0.005",route="/v1/chat/completions",backend="openai"} 3',
    );

    // The JSON form too (registry.getMetricsAsJSON), and reset empties both.
    const json = (await registry.getMetricsAsJSON()) as Array<{ name: string; values: unknown[] }>;
    expect(json.map((m) => m.name)).toEqual([NAMES.requestsName, NAMES.durationName]);
    registry.resetMetrics();
    expect(await registry.metrics()).toBe(await promClientText([]));
  });
});
