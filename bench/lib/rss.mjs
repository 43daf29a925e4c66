// The memory targets of docs/performance.md (RSS <= 120 MB after 100k requests, no growth across repeated
// runs) and how a series of RSS readings is judged against them, shared by run.mjs and memory.mjs.

export const RSS_TARGET_MB = 120;
// RSS moves with GC timing; growth below this between the first and the last reading is noise.
export const RSS_GROWTH_TOLERANCE_MB = 8;
// The target reads RSS after 100k requests: a reading taken earlier says less, and the output says so.
export const RSS_MIN_REQUESTS = 100_000;

/** Peak and growth (last − first) of RSS readings in MB, with a verdict for each. */
export function judgeRss(readings) {
  const peak = Math.max(...readings);
  const growth = readings.at(-1) - readings[0];
  return {
    peak,
    growth,
    rssOk: peak <= RSS_TARGET_MB,
    growthOk: growth <= RSS_GROWTH_TOLERANCE_MB,
  };
}

/** A signed size in MB for the output: +1.2MB, -0.4MB. */
export function formatGrowth(mb) {
  return `${mb >= 0 ? '+' : ''}${mb.toFixed(1)}MB`;
}
