/**
 * Tokens and cost per key, backend and model (README, Teams: usage), kept as plain numbers when an answer
 * ends and turned into `llm_proxy_tokens_total` / `llm_proxy_cost_usd_total` samples only when /metrics is
 * scraped, as request-stats.ts does for requests.
 */

export interface UsageSeries {
  readonly key: string;
  readonly backend: string;
  readonly model: string;
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  costUsd: number;
}

/** Token directions as the `direction` label names them, and the series field each reads. */
export const DIRECTIONS = [
  ['input', 'input'],
  ['output', 'output'],
  ['cache_read', 'cacheRead'],
  ['cache_write', 'cacheWrite'],
] as const;

export class UsageStats {
  private readonly byId = new Map<string, UsageSeries>();

  add(
    key: string,
    backend: string,
    model: string,
    tokens: { input: number; output: number; cacheRead: number; cacheWrite: number },
    costUsd: number,
  ): void {
    addToSeries(this.seriesOf(key, backend, model), tokens, costUsd);
  }

  /**
   * The series of `key`, `backend` and `model`, made on first use: a caller that keeps it (the spend step,
   * per key) adds to it with `addToSeries` without looking it up again. Series are never dropped: `model` is
   * the name the spend step counts it under (src/observability/model-labels.ts), so they are bounded by keys ×
   * backends × those names, not by what clients send.
   */
  seriesOf(key: string, backend: string, model: string): UsageSeries {
    const id = `${key}\u0000${backend}\u0000${model}`;
    let series = this.byId.get(id);
    if (series === undefined) {
      series = { key, backend, model, input: 0, output: 0, cacheRead: 0, cacheWrite: 0, costUsd: 0 };
      this.byId.set(id, series);
    }
    return series;
  }

  series(): Iterable<UsageSeries> {
    return this.byId.values();
  }
}

/** Adds an answer's tokens and cost to its series. */
export function addToSeries(
  series: UsageSeries,
  tokens: { input: number; output: number; cacheRead: number; cacheWrite: number },
  costUsd: number,
): void {
  series.input += tokens.input;
  series.output += tokens.output;
  series.cacheRead += tokens.cacheRead;
  series.cacheWrite += tokens.cacheWrite;
  series.costUsd += costUsd;
}
