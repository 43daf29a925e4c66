import { describe, expect, it } from 'vitest';
import { ProxyMetrics } from './metrics.js';

describe('metrics without prom-client’s entry point', () => {
  it('exports the default process and Node.js metrics under the usual names, and the proxy’s own', async () => {
    const metrics = new ProxyMetrics();
    metrics.observeRequest('/v1/chat/completions', 'openai', 200, 0.004);
    const text = await metrics.registry.metrics();
    for (const name of [
      'llm_proxy_process_cpu_user_seconds_total',
      'llm_proxy_process_cpu_system_seconds_total',
      'llm_proxy_process_cpu_seconds_total',
      'llm_proxy_process_start_time_seconds',
      'llm_proxy_process_resident_memory_bytes',
      'llm_proxy_process_open_fds',
      'llm_proxy_nodejs_eventloop_lag_seconds',
      'llm_proxy_nodejs_heap_size_used_bytes',
      'llm_proxy_nodejs_heap_space_size_used_bytes',
      'llm_proxy_nodejs_version_info',
      'llm_proxy_nodejs_gc_duration_seconds',
      'llm_proxy_nodejs_active_handles_total',
    ]) {
      expect(text, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    }
    expect(text).toMatch(/^llm_proxy_process_cpu_seconds_total \d/m);
    expect(text).toContain(
      'llm_proxy_requests_total{route="/v1/chat/completions",backend="openai",status="200"} 1',
    );
    expect(text).toMatch(
      /^llm_proxy_request_duration_seconds_bucket\{le="0.005",route="\/v1\/chat\/completions",backend="openai"\} 1$/m,
    );
  });
});
