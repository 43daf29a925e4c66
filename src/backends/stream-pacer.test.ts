import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../proxy-error.js';
import { Cancellation } from './cancel.js';
import { DEFAULT_STREAMS_PER_TURN, StreamPacer } from './stream-pacer.js';

const gone = () => new ProxyError(499, 'gone', { code: 'client_closed' });

describe('StreamPacer', () => {
  it('starts its share of streams in one turn and no more', () => {
    const pacer = new StreamPacer(2);
    expect([pacer.tryStart(), pacer.tryStart(), pacer.tryStart()]).toEqual([true, true, false]);
    expect(new StreamPacer().perTurn).toBe(DEFAULT_STREAMS_PER_TURN);
  });

  it('starts the streams that waited in the next turns, in arrival order, a share per turn', async () => {
    const pacer = new StreamPacer(2);
    expect(pacer.tryStart()).toBe(true);
    expect(pacer.tryStart()).toBe(true);
    const order: number[] = [];
    const waits = [1, 2, 3, 4, 5].map((n) => pacer.wait(new Cancellation(), gone).then(() => order.push(n)));
    expect(pacer.queued).toBe(5);
    await nextTurn();
    expect(order).toEqual([1, 2]);
    // A newcomer does not pass the calls already waiting, even in a turn with room.
    expect(pacer.tryStart()).toBe(false);
    await nextTurn();
    expect(order).toEqual([1, 2, 3, 4]);
    await Promise.all(waits);
    expect(order).toEqual([1, 2, 3, 4, 5]);
    expect(pacer.queued).toBe(0);
  });

  it('gives every turn its share again once nothing waits', async () => {
    const pacer = new StreamPacer(1);
    expect(pacer.tryStart()).toBe(true);
    expect(pacer.tryStart()).toBe(false);
    await nextTurn();
    expect(pacer.tryStart()).toBe(true);
  });

  it('drops a waiting call whose client goes away, and starts the next in its place', async () => {
    const pacer = new StreamPacer(1);
    expect(pacer.tryStart()).toBe(true);
    const signal = new Cancellation();
    const leaving = pacer.wait(signal, gone).catch((e: unknown) => e);
    let started = false;
    const staying = pacer.wait(new Cancellation(), gone).then(() => (started = true));
    signal.abort();
    expect(((await leaving) as ProxyError).status).toBe(499);
    expect(pacer.queued).toBe(1);
    await staying;
    expect(started).toBe(true);
    expect(pacer.queued).toBe(0);
  });

  it('refuses at once a call whose client is already gone', async () => {
    const pacer = new StreamPacer(1);
    const signal = new Cancellation();
    signal.abort();
    const err = await pacer.wait(signal, gone).catch((e: unknown) => e);
    expect((err as ProxyError).status).toBe(499);
    expect(pacer.queued).toBe(0);
  });
});
