import { describe, expect, it } from 'vitest';
import { MemorySessionStore } from './store.js';

describe('MemorySessionStore', () => {
  it('keeps settings per key and removes empty ones', async () => {
    const store = new MemorySessionStore({ maxSessions: 10, ttlSeconds: 60 });
    expect(store.any).toBe(false);
    await store.set('a', { model: 'm' });
    expect(store.any).toBe(true);
    expect(await store.get('a')).toEqual({ model: 'm' });
    expect(await store.get('b')).toBeUndefined();
    await store.set('a', {});
    expect(await store.get('a')).toBeUndefined();
    expect(store.any).toBe(false);
  });

  it('forgets a session idle past the TTL, and a request keeps it alive', async () => {
    let now = 0;
    const store = new MemorySessionStore({ maxSessions: 10, ttlSeconds: 10 }, () => now);
    await store.set('a', { temperature: 1 });
    now = 9_000;
    expect(await store.get('a')).toEqual({ temperature: 1 });
    now = 18_000;
    expect(await store.get('a')).toEqual({ temperature: 1 });
    now = 28_001;
    expect(await store.get('a')).toBeUndefined();
  });

  it('is bounded: the least recently used session goes first', async () => {
    const store = new MemorySessionStore({ maxSessions: 2, ttlSeconds: 60 });
    await store.set('a', { model: 'a' });
    await store.set('b', { model: 'b' });
    await store.get('a');
    await store.set('c', { model: 'c' });
    expect(await store.get('b')).toBeUndefined();
    expect(await store.get('a')).toEqual({ model: 'a' });
  });
});
