import type { AttemptSettings } from './settings.js';

/** The wait before retry `n` (0 for the first retry): full jitter over base × 2ⁿ, capped. */
export function backoffMs(n: number, settings: AttemptSettings, random: () => number = Math.random): number {
  return random() * Math.min(settings.backoffCapMs, settings.backoffBaseMs * 2 ** n);
}

/**
 * The wait a provider asked for, in seconds: `retry-after-ms` (milliseconds), else `Retry-After` (seconds,
 * or an HTTP date). Null when it asked for none or wrote something unreadable.
 */
export function retryAfterSeconds(
  headers: Record<string, string | string[] | undefined>,
  nowMs: number = Date.now(),
): number | null {
  const ms = headers['retry-after-ms'];
  if (typeof ms === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return Number(ms) / 1000;
  const value = headers['retry-after'];
  if (typeof value !== 'string') return null;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, (date - nowMs) / 1000);
}
