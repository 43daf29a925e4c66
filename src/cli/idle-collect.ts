import v8 from 'node:v8';
import vm from 'node:vm';

/** One space of the V8 heap, as `v8.getHeapSpaceStatistics()` names and sizes it. */
export type HeapSpace = Pick<v8.HeapSpaceInfo, 'space_name' | 'space_size'>;

/** What the idle check reads; injectable for tests. */
export interface HeapReader {
  /** Bytes of the V8 heap in use (live and not yet collected). */
  used(): number;
  /** The heap's spaces with the bytes each has committed. */
  spaces(): readonly HeapSpace[];
}

export interface IdleCollectOptions {
  /** How often the heap is looked at (default 10 s). */
  checkMs?: number;
  /** Growth of the committed old generation over its quiet size that is worth one collection (default 16 MB). */
  growthBytes?: number;
  /** Less change in the heap in use than this between two looks is quiet (default 1 MB). */
  quietBytes?: number;
  /** While V8 favours memory, how often the heap is looked at for traffic's return (default 1 s). */
  favourCheckMs?: number;
  heap?: HeapReader;
  /** Runs one full collection; by default V8's own, through its `gc` extension. */
  collect?: () => void;
  /**
   * Asks V8 to favour memory over speed (true) or not (false); by default its `--optimize-for-size` flag,
   * left alone when the operator set it.
   */
  favourMemory?: (on: boolean) => void;
}

const MB = 1024 * 1024;

const v8Heap: HeapReader = {
  used: () => v8.getHeapStatistics().used_heap_size,
  spaces: () => v8.getHeapSpaceStatistics(),
};

/**
 * Bytes committed by the old generation: every space but the young generation's (`new_space` and
 * `new_large_object_space`). The young generation is left out because V8 sizes it by the allocation rate
 * alone: it shrinks it at the first scavenge of a quiet spell and grows it back by up to 2 × 8 MB in the
 * next burst (`src/cli/young-generation.ts`), and a full collection gives none of that back.
 */
export function oldGenerationBytes(spaces: readonly HeapSpace[]): number {
  let bytes = 0;
  for (const space of spaces) if (!space.space_name.startsWith('new_')) bytes += space.space_size;
  return bytes;
}

/**
 * V8's `gc()` without starting node with `--expose-gc`: the flag is set just long enough for one new context
 * to get the function (it stays bound to this process's heap), then cleared again, so that no later context
 * (a worker's, a vm's) sees a `gc` global.
 */
function v8FullCollection(): () => void {
  v8.setFlagsFromString('--expose-gc');
  try {
    return vm.runInNewContext('gc') as () => void;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

function optimizeForSize(): (on: boolean) => void {
  const chosen = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  if (/--(no-)?optimize[-_]for[-_]size\b/.test(chosen)) return () => undefined;
  return (on) => v8.setFlagsFromString(on ? '--optimize-for-size' : '--no-optimize-for-size');
}

/**
 * Gives memory back once the proxy goes quiet after a busy spell (the memory target in docs/performance.md:
 * back near the start within a minute of idle).
 *
 * Why: V8 shrinks its heap only after a full collection, and a proxy under load rarely needs one — what a
 * request leaves dies young, and the old generation grows (2,000 open streams: ~100 MB committed) without
 * reaching the size that would start one. Once the traffic stops nothing is allocated, so nothing collects
 * either: the proxy measured 191 MB a minute after 2,000 streams had ended, against 92 MB before them. One
 * full collection at that point frees the garbage (~190 → ~155 MB), and V8's memory reducer, which a
 * collection that shrank the heap wakes up, compacts the heap and gives its pages back (→ ~110 MB). The
 * reducer starts only when V8 judges the allocation rate low or is told to favour memory, and on an idle
 * proxy its rate estimate took ~50 s to say so; with `--optimize-for-size` set it runs ~8 s after the
 * collection.
 *
 * How: every `checkMs` (a timer that keeps no process alive), the heap in use is compared with the last look.
 * Quiet (it moved by less than `quietBytes`: next to nothing was allocated in between) and the committed old
 * generation more than `growthBytes` above its quiet size: V8 is told to favour memory, one collection runs, and none
 * again until there was traffic; while V8 favours memory the heap is looked at every `favourCheckMs`, and
 * the first look that sees traffic again turns V8 back to speed. Growth is judged on the old generation only
 * (`oldGenerationBytes`): the whole committed heap regrew by ~14 MB of young generation in every burst after a
 * gap, so the collection ran after bursts that had left nothing to give back, and a full collection in a gap
 * drops optimised code that the next burst recompiles (docs/performance.md, "The first second after an idle
 * gap" and "The idle collector judges the old generation"). Busy or
 * small: nothing — a request never waits for this, and a steadily loaded proxy is left to V8.
 * Returns a function that stops it.
 */
export function collectWhenIdle(options: IdleCollectOptions = {}): () => void {
  const checkMs = options.checkMs ?? 10_000;
  const growth = options.growthBytes ?? 16 * MB;
  const quietBytes = options.quietBytes ?? MB;
  const heap = options.heap ?? v8Heap;
  let collect = options.collect;
  const favourMemory = options.favourMemory ?? optimizeForSize();
  const favourCheckMs = options.favourCheckMs ?? 1000;
  let lastUsed = heap.used();
  const oldGeneration = (): number => oldGenerationBytes(heap.spaces());
  let floor = oldGeneration();
  let collected = false;
  /** Set while V8 favours memory: a look every favourCheckMs, so that returning traffic gets speed soon. */
  let favouring: NodeJS.Timeout | null = null;
  const backToSpeed = (): void => {
    if (favouring === null) return;
    clearInterval(favouring);
    favouring = null;
    favourMemory(false);
  };
  const timer = setInterval(() => {
    const used = heap.used();
    const quiet = Math.abs(used - lastUsed) < quietBytes;
    lastUsed = used;
    if (!quiet) {
      collected = false;
      backToSpeed();
      return;
    }
    const old = oldGeneration();
    if (!collected && old > floor + growth) {
      collect ??= v8FullCollection();
      favourMemory(true);
      collect();
      collected = true;
      lastUsed = heap.used();
      floor = oldGeneration();
      // Measured (docs/performance.md, fifth session): requests served while V8 favours memory cost more
      // CPU, and the 10 s look left up to 10 s of returning traffic in that mode.
      let seen = lastUsed;
      favouring = setInterval(() => {
        const now = heap.used();
        if (Math.abs(now - seen) >= quietBytes) backToSpeed();
        seen = now;
      }, favourCheckMs);
      favouring.unref();
      return;
    }
    floor = Math.min(floor, old);
  }, checkMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    backToSpeed();
  };
}
