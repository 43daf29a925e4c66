import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.js';
import { RedisConnection } from './redis-connection.js';

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});

/** Holds the event loop, as a CPU-starved host or a long synchronous task does. */
function stallEventLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

describe('RedisConnection', () => {
  it('does not time out a command whose reply arrived while the event loop was stalled', async () => {
    const connection = new RedisConnection({ url: redis.url, commandTimeoutMs: 50 });
    try {
      await connection.ping();
      const replies = [connection.client.ping(), connection.client.echo('still here')];
      stallEventLoop(500);
      expect(await Promise.all(replies)).toEqual(['PONG', 'still here']);
    } finally {
      await connection.close();
    }
  });

  it('times out a command Redis does not answer', async () => {
    const connection = new RedisConnection({ url: redis.url, commandTimeoutMs: 50 });
    try {
      await connection.ping();
      redis.pause();
      try {
        await expect(connection.client.ping()).rejects.toThrow('Command timed out');
      } finally {
        redis.resume();
      }
    } finally {
      await connection.close();
    }
  });
});
