import { afterEach, describe, expect, it, vi } from 'vitest';
import { Cancellation } from './cancel.js';
import { waitInQueue, type Waiter } from './waiting.js';

interface Tagged extends Waiter {
  readonly tag: string;
}

const gone = () => new Error('client gone');

afterEach(() => {
  vi.useRealTimers();
});

describe('waitInQueue', () => {
  it('queues the call with its fields and resolves when admitted, leaving the queue', async () => {
    const queue = new Set<Tagged>();
    const waited = waitInQueue(queue, { tag: 'a' }, new Cancellation(), gone);
    const [waiter] = [...queue];
    expect(waiter?.tag).toBe('a');
    waiter?.admit();
    await expect(waited).resolves.toBeUndefined();
    expect(queue.size).toBe(0);
  });

  it('refuses with gone() when the client leaves, before or while waiting', async () => {
    const queue = new Set<Waiter>();
    const signal = new Cancellation();
    const waited = waitInQueue(queue, {}, signal, gone);
    signal.abort();
    await expect(waited).rejects.toThrow('client gone');
    expect(queue.size).toBe(0);
    await expect(waitInQueue(queue, {}, signal, gone)).rejects.toThrow('client gone');
    expect(queue.size).toBe(0);
  });

  it("refuses with the limit's error when the wait runs out", async () => {
    vi.useFakeTimers();
    const queue = new Set<Waiter>();
    const waited = waitInQueue(queue, {}, new Cancellation(), gone, {
      ms: 50,
      error: () => new Error('no connection in time'),
    });
    const outcome = expect(waited).rejects.toThrow('no connection in time');
    vi.advanceTimersByTime(50);
    await outcome;
    expect(queue.size).toBe(0);
  });
});
