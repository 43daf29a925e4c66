// Small statistics helpers: latency samples kept exactly (autocannon's own histogram rounds to whole
// milliseconds, too coarse for a 0.2 ms overhead target) and medians across rounds.

/** Growable list of latencies in milliseconds, stored as float64 so a long run does not churn objects. */
export class LatencySamples {
  #values = new Float64Array(1 << 16);
  #count = 0;

  add(ms) {
    if (this.#count === this.#values.length) {
      const bigger = new Float64Array(this.#values.length * 2);
      bigger.set(this.#values);
      this.#values = bigger;
    }
    this.#values[this.#count++] = ms;
  }

  get count() {
    return this.#count;
  }

  /** Mean, p50 and p99 in milliseconds (NaN when empty). */
  summary() {
    const sorted = this.#values.slice(0, this.#count).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    return { mean: sum / sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
  }
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
