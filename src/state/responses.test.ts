import { describe, expect, it } from 'vitest';
import { MemoryStoredResponses } from './responses.js';

describe('MemoryStoredResponses', () => {
  it('gives an entry back to its owner only', async () => {
    const store = new MemoryStoredResponses({ maxStored: 10, ttlSeconds: 60 });
    await store.put('resp_1', 'alice', '{"a":1}');
    expect(await store.get('resp_1', 'alice')).toEqual({ value: '{"a":1}' });
    expect(await store.get('resp_1', 'bob')).toBeUndefined();
    expect(await store.get('resp_2', 'alice')).toBeUndefined();
  });

  it('keeps owner-only entries of passed-through ids as null values', async () => {
    const store = new MemoryStoredResponses({ maxStored: 10, ttlSeconds: 60 });
    await store.put('resp_up', 'alice', null);
    expect(await store.get('resp_up', 'alice')).toEqual({ value: null });
    expect(await store.get('resp_up', 'bob')).toBeUndefined();
  });

  it('deletes for the owner only', async () => {
    const store = new MemoryStoredResponses({ maxStored: 10, ttlSeconds: 60 });
    await store.put('resp_1', 'alice', 'x');
    expect(await store.delete('resp_1', 'bob')).toBe(false);
    expect(await store.get('resp_1', 'alice')).toEqual({ value: 'x' });
    expect(await store.delete('resp_1', 'alice')).toBe(true);
    expect(await store.get('resp_1', 'alice')).toBeUndefined();
    expect(await store.delete('resp_1', 'alice')).toBe(false);
  });

  it('evicts the least recently used past maxStored', async () => {
    const store = new MemoryStoredResponses({ maxStored: 2, ttlSeconds: 60 });
    await store.put('a', 'k', '1');
    await store.put('b', 'k', '2');
    await store.get('a', 'k');
    await store.put('c', 'k', '3');
    expect(await store.get('b', 'k')).toBeUndefined();
    expect(await store.get('a', 'k')).toEqual({ value: '1' });
    expect(await store.get('c', 'k')).toEqual({ value: '3' });
  });

  it('forgets entries older than the TTL', async () => {
    let now = 1000;
    const store = new MemoryStoredResponses({ maxStored: 10, ttlSeconds: 5 }, () => now);
    await store.put('a', 'k', '1');
    now += 4999;
    expect(await store.get('a', 'k')).toEqual({ value: '1' });
    now += 2;
    expect(await store.get('a', 'k')).toBeUndefined();
  });
});
