import type { ModelLabels } from '../observability/model-labels.js';
import type { StateStore } from './store.js';
import { FileUsageLedger, MemoryUsageLedger, type FileLedgerLog, type UsageLedger } from './usage-ledger.js';
import { RedisUsageLedger } from './usage-redis.js';

/** The usage feature's name in key prefixes. */
export const USAGE_FEATURE = 'usage';

/**
 * The usage ledger for this proxy (README, Teams: usage): in the Redis state store when there is one (shared
 * by replicas; `--usage-file` is then not used, and a warning says so), else the `--usage-file` ledger,
 * else memory (lost at restart).
 */
export async function openUsageLedger(
  store: StateStore,
  usageFile: string | undefined,
  log: FileLedgerLog,
  /** The names models are summed under (src/observability/model-labels.ts). */
  labels: ModelLabels,
): Promise<UsageLedger> {
  const target = store.redisTarget(USAGE_FEATURE);
  if (target !== null) {
    if (usageFile !== undefined)
      log.warn({ file: usageFile }, '--usage-file is not used: usage lives in the Redis state store');
    return new RedisUsageLedger({ ...target, log, labels });
  }
  if (usageFile !== undefined) return FileUsageLedger.open(usageFile, log, labels);
  return new MemoryUsageLedger(labels);
}
