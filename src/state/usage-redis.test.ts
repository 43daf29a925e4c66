import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.js';
import { RedisConnection } from './redis-connection.js';
import type { UsageEntry } from './usage-ledger.js';
import { RedisUsageLedger } from './usage-redis.js';

let redis: RedisServer;
// Kept on disk: what was written before an outage is still there after the restart.
const persistDir = mkdtempSync(join(tmpdir(), 'lip-usage-redis-'));
beforeAll(async () => {
  redis = await startRedisServer(undefined, { persistDir });
});
afterAll(async () => {
  await redis.stop();
  rmSync(persistDir, { recursive: true, force: true });
});

const AT = Date.UTC(2026, 11, 7, 12);
const DAY = '2026-12-07';

function entry(input: number): UsageEntry {
  return {
    at: AT,
    key: 'hank',
    labels: [],
    backend: 'openai',
    model: 'gpt-x',
    input,
    output: 1,
    cacheRead: 0,
    cacheWrite: 0,
    costUsd: 0,
    priced: false,
  };
}

const warnings: string[] = [];
const log = { warn: (_: object, msg: string) => void warnings.push(msg) };

async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('RedisUsageLedger', () => {
  it('writes the usage kept while Redis was down once it is back, at every outage', async () => {
    const connection = new RedisConnection({ url: redis.url });
    const ledger = new RedisUsageLedger({ connection, keyPrefix: `t:${randomUUID()}:{usage}:`, log });
    try {
      await connection.ping();
      ledger.record(entry(10));
      await until(async () => (await ledger.rows(DAY, DAY)).length === 1);

      // Two outages: the first reconnect's flush must not stand in for the second's.
      for (const input of [20, 30]) {
        await redis.stop();
        ledger.record(entry(input));
        await until(() => ledger.pendingRows === 1);
        await redis.restart();
        // Written when the connection is ready again, without a read asking for it.
        await until(() => ledger.pendingRows === 0);
      }
      const [row] = await ledger.rows(DAY, DAY);
      expect(row).toMatchObject({ key: 'hank', requests: 3, input: 60, output: 3 });
    } finally {
      await ledger.close();
      await connection.close();
    }
  });
});
