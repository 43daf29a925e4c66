import type { ResilienceConfig, RouteConfig } from '../config/schema.js';

/** One request's attempt policy, durations in milliseconds of the clock (README, Routes and failover). */
export interface AttemptSettings {
  /** Extra attempts on one element for a retryable failure. */
  readonly retries: number;
  /** Backoff before retry n: full jitter over base × 2ⁿ, capped. */
  readonly backoffBaseMs: number;
  readonly backoffCapMs: number;
  /** Never two attempts on one element closer than this. */
  readonly minGapMs: number;
  /** A Retry-After up to this (in the provider's seconds) is waited out on the same element. */
  readonly maxRetryAfterS: number;
  /** Multiplies a provider's Retry-After into clock milliseconds (1000 × the time scale). */
  readonly retryAfterMsPerS: number;
  readonly ttftMs: number;
  readonly stallMs: number;
  readonly maxAttempts: number;
  readonly deadlineMs: number;
  readonly breakerFailures: number;
  readonly breakerCooldownMs: number;
  /** A text stream cut after the commit point is continued by the next element (assistant prefill). */
  readonly continueStreams: boolean;
}

/** The defaults of `resilience.*`, in seconds as configured. */
export const RESILIENCE_DEFAULTS = {
  retries: 1,
  backoff_s: 0.25,
  max_retry_after_s: 10,
  ttft_timeout_s: 30,
  stall_timeout_s: 30,
  max_attempts: 6,
  deadline_s: 100,
  breaker: { failures: 3, cooldown_s: 10 },
} as const;

/** Backoff cap and the least gap between two attempts on one element, in seconds. */
const BACKOFF_CAP_S = 4;
const MIN_GAP_S = 0.5;

type NumericSetting =
  | 'retries'
  | 'backoff_s'
  | 'max_retry_after_s'
  | 'ttft_timeout_s'
  | 'stall_timeout_s'
  | 'max_attempts'
  | 'deadline_s';

type Overrides = Omit<RouteConfig, 'chain'> | ResilienceConfig | undefined;

/**
 * The settings for a request: the route's overrides over the global `resilience` section over the
 * defaults; every duration scaled by `resilience.time_scale` (1 but in tests); the first-token timeout never
 * above the proxy's `--timeout`.
 */
export function attemptSettings(
  global: ResilienceConfig | undefined,
  route: Overrides,
  timeoutMs: number,
): AttemptSettings {
  const pick = (key: NumericSetting): number => route?.[key] ?? global?.[key] ?? RESILIENCE_DEFAULTS[key];
  const ms = 1000 * (global?.time_scale ?? 1);
  return {
    retries: pick('retries'),
    backoffBaseMs: pick('backoff_s') * ms,
    backoffCapMs: BACKOFF_CAP_S * ms,
    minGapMs: MIN_GAP_S * ms,
    maxRetryAfterS: pick('max_retry_after_s'),
    retryAfterMsPerS: ms,
    ttftMs: Math.min(pick('ttft_timeout_s') * ms, timeoutMs),
    stallMs: pick('stall_timeout_s') * ms,
    maxAttempts: pick('max_attempts'),
    deadlineMs: pick('deadline_s') * ms,
    breakerFailures:
      route?.breaker?.failures ?? global?.breaker?.failures ?? RESILIENCE_DEFAULTS.breaker.failures,
    breakerCooldownMs:
      (route?.breaker?.cooldown_s ?? global?.breaker?.cooldown_s ?? RESILIENCE_DEFAULTS.breaker.cooldown_s) *
      ms,
    continueStreams: route?.continue_streams ?? global?.continue_streams ?? false,
  };
}
