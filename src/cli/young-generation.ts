import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

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
 * new space has reached the cap, and back to V8's default of 2 when V8 has shrunk it below (it does when
 * traffic is low). Growth needs a new space's worth of surviving bytes, so it cannot run past the cap
 * between two collections.
 *
 * Nothing is done when the operator chose the young generation's size themselves (either flag in the
 * node options or NODE_OPTIONS). Returns a function that stops the observer.
 */
export function capYoungGeneration(semiSpaceMb = 8): () => void {
  const chosen = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  if (/--(max-semi-space-size|semi-space-growth-factor)\b/.test(chosen)) return () => undefined;
  const cap = 2 * semiSpaceMb * 1024 * 1024;
  let factor = 2;
  const observer = new PerformanceObserver(() => {
    const want = newSpaceSize() >= cap ? 1 : 2;
    if (want !== factor) {
      v8.setFlagsFromString(`--semi-space-growth-factor=${want}`);
      factor = want;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => {
    observer.disconnect();
    if (factor !== 2) v8.setFlagsFromString('--semi-space-growth-factor=2');
  };
}

export function newSpaceSize(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}
