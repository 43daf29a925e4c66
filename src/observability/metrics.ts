import type * as Prom from 'prom-client';
import { Counter, Gauge, Registry, collectDefaultMetrics } from './prom-lean.js';
import { RequestStats } from './request-stats.js';
import { DIRECTIONS, UsageStats } from './usage-stats.js';

/** What failover has counted so far (src/pipeline/attempts.ts), read at scrape time. */
export interface FailoverCounts {
  /** Attempts by outcome: ok, retry, next, final, skipped. */
  readonly attempts: ReadonlyMap<string, number>;
  readonly invalidEventsDropped: number;
  /** Circuit breakers not closed or with failures counted. */
  readonly breakers: ReadonlyArray<{ element: string; phase: string; failures: number }>;
}

const NO_FAILOVER: FailoverCounts = { attempts: new Map(), invalidEventsDropped: 0, breakers: [] };

/** Every metric the proxy exports on /metrics (README, Endpoints), created once per server. */
export class ProxyMetrics {
  readonly registry = new Registry();
  /** Requests answered (`llm_proxy_requests_total`) and their durations, counted without prom-client. */
  private readonly requestStats = new RequestStats({
    requestsName: 'llm_proxy_requests_total',
    requestsHelp: 'Requests answered, by route, backend and status',
    durationName: 'llm_proxy_request_duration_seconds',
    durationHelp: 'Time from request to response end, by route and backend',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120],
  });
  readonly authFailures = new Counter({
    name: 'llm_proxy_auth_failures_total',
    help: 'Failed authentication attempts, by reason (missing, invalid)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly authBlocked = new Counter({
    name: 'llm_proxy_auth_blocked_requests_total',
    help: 'Requests refused with 429 because the client address is blocked',
    registers: [this.registry],
  });
  readonly blocksStarted = new Counter({
    name: 'llm_proxy_auth_blocks_started_total',
    help: 'Client addresses blocked by brute-force protection',
    registers: [this.registry],
  });
  /** Set by the auth wiring: how many client addresses the brute-force store tracks right now. */
  trackedClientsSource: () => Promise<number> = () => Promise.resolve(0);
  readonly trackedClients = new Gauge({
    name: 'llm_proxy_auth_tracked_clients',
    help: 'Client addresses currently tracked by brute-force protection',
    registers: [this.registry],
    collect: async () => {
      this.trackedClients.set(await this.trackedClientsSource());
    },
  });
  readonly captureDropped = new Counter({
    name: 'llm_proxy_capture_dropped_total',
    help: 'Wire capture entries dropped because the writer could not keep up',
    registers: [this.registry],
  });
  readonly storeDegraded = new Gauge({
    name: 'llm_proxy_auth_store_degraded',
    help: '1 while the shared brute-force store is unreachable and the memory fallback is in use',
    registers: [this.registry],
  });
  readonly stateStoreDegraded = new Gauge({
    name: 'llm_proxy_state_store_degraded',
    help: "1 while a feature's store on the Redis state store is unreachable and its memory fallback is in use",
    labelNames: ['feature'] as const,
    registers: [this.registry],
  });
  /**
   * Requests refused by a key's rpm or max_concurrent (src/pipeline/limits.ts), tpm or budget
   * (src/pipeline/spend.ts): its own or a label's.
   */
  readonly limitRejections = new Counter({
    name: 'llm_proxy_limit_rejections_total',
    help: "Requests refused with 429 by a key's limits, by key name and limit (rpm, max_concurrent, tpm, budget)",
    labelNames: ['key', 'limit'] as const,
    registers: [this.registry],
  });

  /** Set by the server's wiring: failover's counts and breakers. */
  failoverSource: () => Promise<FailoverCounts> = () => Promise.resolve(NO_FAILOVER);
  readonly failoverAttempts = new Counter({
    name: 'llm_proxy_failover_attempts_total',
    help: 'Attempts of requests tried by failover, by outcome (ok, retry, next, final, skipped)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
    collect: async () => {
      const counts = await this.failoverSource();
      this.failoverAttempts.reset();
      for (const [outcome, n] of counts.attempts) this.failoverAttempts.inc({ outcome }, n);
    },
  });
  readonly invalidEvents = new Counter({
    name: 'llm_proxy_stream_invalid_events_dropped_total',
    help: 'Backend stream events dropped because their data was not JSON',
    registers: [this.registry],
    collect: async () => {
      const counts = await this.failoverSource();
      this.invalidEvents.reset();
      this.invalidEvents.inc(counts.invalidEventsDropped);
    },
  });
  readonly breakerState = new Gauge({
    name: 'llm_proxy_breaker_state',
    help: 'Circuit breakers per backend:model that have counted failures: 1 for their state (closed, open, half_open)',
    labelNames: ['element', 'state'] as const,
    registers: [this.registry],
    collect: async () => {
      const counts = await this.failoverSource();
      this.breakerState.reset();
      for (const b of counts.breakers) this.breakerState.set({ element: b.element, state: b.phase }, 1);
    },
  });

  /**
   * Set by the server's wiring: the provider key pools (README, Routes and failover), keys by env var name —
   * how often each left the rotation, and the state each is in.
   */
  keyPoolSource: () => {
    leaves: ReadonlyArray<{ backend: string; key: string; out: number; resting: number }>;
    states: Readonly<Record<string, ReadonlyArray<{ key: string; state: string }>>>;
  } = () => ({ leaves: [], states: {} });
  readonly keyPoolLeaves = new Counter({
    name: 'llm_proxy_key_pool_leaves_total',
    help: 'Provider pool keys leaving the rotation, by backend, key (env var name) and state (out: 401/403, resting: 429)',
    labelNames: ['backend', 'key', 'state'] as const,
    registers: [this.registry],
    collect: () => {
      this.keyPoolLeaves.reset();
      for (const { backend, key, out, resting } of this.keyPoolSource().leaves) {
        if (out > 0) this.keyPoolLeaves.inc({ backend, key, state: 'out' }, out);
        if (resting > 0) this.keyPoolLeaves.inc({ backend, key, state: 'resting' }, resting);
      }
    },
  });
  readonly keyPoolState = new Gauge({
    name: 'llm_proxy_key_pool_key_state',
    help: 'Provider pool keys by backend and key (env var name): 1 for their state (ready, resting, out)',
    labelNames: ['backend', 'key', 'state'] as const,
    registers: [this.registry],
    collect: () => {
      this.keyPoolState.reset();
      for (const [backend, keys] of Object.entries(this.keyPoolSource().states))
        for (const { key, state } of keys) this.keyPoolState.set({ backend, key, state }, 1);
    },
  });

  /** Tokens and cost of answered requests (README, Teams: usage), counted by the pipeline's usage meter. */
  readonly usage = new UsageStats();
  readonly tokens = new Counter({
    name: 'llm_proxy_tokens_total',
    help: 'Tokens of answered requests by key, backend, model and direction (input, output, cache_read, cache_write)',
    labelNames: ['key', 'backend', 'model', 'direction'] as const,
    registers: [this.registry],
    collect: () => {
      this.tokens.reset();
      for (const s of this.usage.series()) {
        for (const [direction, field] of DIRECTIONS) {
          if (s[field] > 0)
            this.tokens.inc({ key: s.key, backend: s.backend, model: s.model, direction }, s[field]);
        }
      }
    },
  });
  readonly costUsd = new Counter({
    name: 'llm_proxy_cost_usd_total',
    help: 'Cost in US dollars of answered requests by key, backend and model (the price table; unpriced: 0)',
    labelNames: ['key', 'backend', 'model'] as const,
    registers: [this.registry],
    collect: () => {
      this.costUsd.reset();
      for (const s of this.usage.series())
        this.costUsd.inc({ key: s.key, backend: s.backend, model: s.model }, s.costUsd);
    },
  });

  constructor() {
    this.registry.registerMetric(this.requestStats.requests as unknown as Prom.Metric);
    this.registry.registerMetric(this.requestStats.duration as unknown as Prom.Metric);
    collectDefaultMetrics({ register: this.registry, prefix: 'llm_proxy_' });
  }

  /** Records one answered request. Label values come from the route table and backend names: bounded. */
  observeRequest(route: string, backend: string, status: number, seconds: number): void {
    this.requestStats.observe(route, backend, status, seconds);
  }
}
