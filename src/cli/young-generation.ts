import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import type { Worker } from 'node:worker_threads';

/**
 * Caps V8's young generation at `semiSpaceMb` per semi-space (new space = twice that) from inside the
 * process, so that every way of starting the proxy (`npm start`, the `llm-interactive-proxy` bin, `node
 * dist/cli/main.js`, a container) gets it without node flags.
 *
 * Why: under load V8 doubles the new space up to 2 × 16 MB, which on its own is most of the memory the
 * proxy gains over its idle size, and the memory target is RSS ≤ 120 MB under load. 8 MB semi-spaces keep
 * RSS well below that at no measurable throughput cost, while much smaller ones cost throughput — so a cap,
 * not a fixed small size (measurements in docs/performance.md).
 *
 * How: `--max-semi-space-size` is read only when the heap is set up, but the growth factor is read each
 * time the new space grows. After every garbage collection the factor is set to 1 (no growth) once the
 * new space has reached the cap, and below it to V8's default of 2 until the cap was first reached; after
 * that, to the factor that takes the new space straight back to the cap. V8 shrinks the new space to its
 * least (1 MB semi-spaces) at the first collection after a quiet spell (its allocation rate then reads
 * low); growing back by doubling took ~40–60 collections of the next burst, each promoting the objects of
 * the requests in flight (docs/performance.md, "The first second after an idle gap"). Growth needs a new
 * space's worth of surviving bytes, so it cannot run past the cap between two collections.
 *
 * Nothing is done when the operator chose the young generation's size themselves (either flag in the
 * node options or NODE_OPTIONS). Returns a function that stops the observer.
 */
export function capYoungGeneration(semiSpaceMb = 8): () => void {
  const chosen = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  if (/--(max-semi-space-size|semi-space-growth-factor)\b/.test(chosen)) return () => undefined;
  const cap = 2 * semiSpaceMb * 1024 * 1024;
  let factor = 2;
  let reachedCap = false;
  const observer = new PerformanceObserver(() => {
    const size = newSpaceSize();
    if (size >= cap) reachedCap = true;
    const want = growthFactor(size >= cap, reachedCap, semiSpaceCapacity(), cap / 2);
    if (want !== factor) {
      v8.setFlagsFromString(`--semi-space-growth-factor=${want}`);
      factor = want;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  // Setting up a worker thread's heap (the capture's) puts V8's process-wide growth factor back to its
  // default when it is under 2: with the cap reached, the proxy's new space then doubled at its next
  // collections (to V8's 2 × 16 MB, kept under load). Set again as each worker comes online; a caller that
  // starts a worker waits for that before it allocates much (server/start.ts). Shown by
  // test/young-generation.test.ts.
  const reassert = (): void => {
    if (factor !== 2) v8.setFlagsFromString(`--semi-space-growth-factor=${factor}`);
  };
  const onWorker = (worker: Worker): void => void worker.once('online', reassert);
  process.on('worker', onWorker);
  return () => {
    observer.disconnect();
    process.off('worker', onWorker);
    if (factor !== 2) v8.setFlagsFromString('--semi-space-growth-factor=2');
  };
}

/**
 * V8's growth factor for the new space: none at the cap; doubling until the cap was first reached (start-up
 * grows as V8 would); after that, the whole multiple of the semi-space that reaches the cap in one growth, or
 * none when no whole multiple fits (a semi-space V8 shrank to an odd size stays a little under the cap).
 * `semiBytes` is the semi-space's usable capacity, a little under its size, so the multiple can overshoot
 * the cap by at most that difference (under 2 %).
 */
export function growthFactor(
  atCap: boolean,
  reachedCap: boolean,
  semiBytes: number,
  capSemiBytes: number,
): number {
  if (atCap) return 1;
  if (!reachedCap || semiBytes <= 0) return 2;
  return Math.max(1, Math.floor(capSemiBytes / semiBytes));
}

/** Bytes of the new space's two semi-spaces that are committed. */
export function newSpaceSize(): number {
  return newSpace()?.space_size ?? 0;
}

/** Usable bytes of one semi-space (what the new space holds between two collections). */
function semiSpaceCapacity(): number {
  const space = newSpace();
  return space ? space.space_used_size + space.space_available_size : 0;
}

function newSpace(): v8.HeapSpaceInfo | undefined {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
}
