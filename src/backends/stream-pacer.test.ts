import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../proxy-error.js';
import { Cancellation } from './cancel.js';
import {
  DEFAULT_STREAMS_PER_TURN,
  MAX_HELD_FOR_ACCEPTS,
  MAX_HOLD_FOR_ACCEPTS_MS,
  STREAMS_PER_TURN_AFTER_ACCEPTS,
  StreamPacer,
} from './stream-pacer.js';

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

  describe('while connections are being accepted', () => {
    it('starts no stream in the turn after one that accepted a connection, and its full share once a turn accepts none', async () => {
      const pacer = new StreamPacer(2);
      pacer.connectionAccepted();
      await nextTurn();
      expect(pacer.tryStart()).toBe(false);
      const order: number[] = [];
      const waits = [1, 2, 3].map((n) => pacer.wait(new Cancellation(), gone).then(() => order.push(n)));
      // Another accept: the turn after is the accepts' again.
      pacer.connectionAccepted();
      await nextTurn();
      expect(order).toEqual([]);
      expect(pacer.queued).toBe(3);
      // A turn without an accept: the streams start, a full share per turn, in arrival order.
      await nextTurn();
      expect(order).toEqual([1, 2]);
      await Promise.all(waits);
      expect(order).toEqual([1, 2, 3]);
      // Nothing waits and the turn has room: a newcomer starts at once, as without accepts.
      expect(pacer.tryStart()).toBe(true);
    });

    it('holds streams while every turn accepts, then starts them all in arrival order', async () => {
      const pacer = new StreamPacer(4);
      pacer.connectionAccepted();
      await nextTurn();
      const order: number[] = [];
      const waits: Promise<unknown>[] = [];
      for (let turn = 0; turn < 5; turn++) {
        waits.push(pacer.wait(new Cancellation(), gone).then(() => order.push(turn)));
        pacer.connectionAccepted();
        await nextTurn();
        expect(order).toEqual([]);
      }
      await Promise.all(waits);
      expect(order).toEqual([0, 1, 2, 3, 4]);
      expect(pacer.queued).toBe(0);
    });

    it(`starts the streams held for accepts ${STREAMS_PER_TURN_AFTER_ACCEPTS} a turn, then a full share again`, async () => {
      const pacer = new StreamPacer();
      pacer.connectionAccepted();
      await nextTurn();
      const held = 2 * STREAMS_PER_TURN_AFTER_ACCEPTS + 1;
      let started = 0;
      const waits = Array.from({ length: held }, () =>
        pacer.wait(new Cancellation(), gone).then(() => started++),
      );
      pacer.connectionAccepted();
      await nextTurn();
      expect(started).toBe(0);
      await nextTurn();
      expect(started).toBe(STREAMS_PER_TURN_AFTER_ACCEPTS);
      await nextTurn();
      expect(started).toBe(2 * STREAMS_PER_TURN_AFTER_ACCEPTS);
      await Promise.all(waits);
      expect(started).toBe(held);
      // All started: the next turn has the full share.
      await nextTurn();
      let now = 0;
      while (pacer.tryStart()) now++;
      expect(now).toBe(DEFAULT_STREAMS_PER_TURN);
    });

    it(`holds streams ${MAX_HOLD_FOR_ACCEPTS_MS} ms at most, then starts them a few a turn while accepts go on`, async () => {
      let clock = 0;
      const pacer = new StreamPacer(DEFAULT_STREAMS_PER_TURN, () => clock);
      pacer.connectionAccepted();
      await nextTurn();
      let started = 0;
      const waits = Array.from({ length: 3 * STREAMS_PER_TURN_AFTER_ACCEPTS }, () =>
        pacer.wait(new Cancellation(), gone).then(() => started++),
      );
      // Every turn accepts (a flood of new connections): held while the hold is young…
      for (const at of [0, 1, MAX_HOLD_FOR_ACCEPTS_MS - 1]) {
        clock = at;
        pacer.connectionAccepted();
        await nextTurn();
        expect(started).toBe(0);
      }
      // …and no longer: the accepts keep coming, the streams start anyway, a few a turn.
      clock = MAX_HOLD_FOR_ACCEPTS_MS;
      pacer.connectionAccepted();
      await nextTurn();
      expect(started).toBe(STREAMS_PER_TURN_AFTER_ACCEPTS);
      pacer.connectionAccepted();
      await nextTurn();
      expect(started).toBe(2 * STREAMS_PER_TURN_AFTER_ACCEPTS);
      await Promise.all(waits);
      expect(pacer.queued).toBe(0);
      // The next hold is measured from its own start.
      pacer.connectionAccepted();
      const next = pacer.wait(new Cancellation(), gone).then(() => started++);
      await nextTurn();
      pacer.connectionAccepted();
      await nextTurn();
      expect(started).toBe(3 * STREAMS_PER_TURN_AFTER_ACCEPTS);
      clock += MAX_HOLD_FOR_ACCEPTS_MS;
      pacer.connectionAccepted();
      await nextTurn();
      await next;
      expect(started).toBe(3 * STREAMS_PER_TURN_AFTER_ACCEPTS + 1);
    });

    it('drops a held stream whose client goes away; the others keep their places', async () => {
      const pacer = new StreamPacer(1);
      pacer.connectionAccepted();
      await nextTurn();
      const signal = new Cancellation();
      const order: string[] = [];
      const first = pacer.wait(new Cancellation(), gone).then(() => order.push('first'));
      const leaving = pacer.wait(signal, gone).catch((e: unknown) => e);
      const last = pacer.wait(new Cancellation(), gone).then(() => order.push('last'));
      signal.abort();
      expect(((await leaving) as ProxyError).status).toBe(499);
      expect(pacer.queued).toBe(2);
      await Promise.all([first, last]);
      expect(order).toEqual(['first', 'last']);
    });

    it(`takes its full share back once ${MAX_HELD_FOR_ACCEPTS} streams wait`, async () => {
      const pacer = new StreamPacer(8);
      let started = 0;
      const waits = Array.from({ length: MAX_HELD_FOR_ACCEPTS }, () =>
        pacer.wait(new Cancellation(), gone).then(() => started++),
      );
      pacer.connectionAccepted();
      await nextTurn();
      // Accepting, but the pacer holds as many as it may: this turn starts its full share.
      expect(started).toBe(8);
      // Fewer than that wait now: the next accepting turn holds them again.
      pacer.connectionAccepted();
      await nextTurn();
      expect(started).toBe(8);
      await nextTurn();
      expect(started).toBe(16);
      await Promise.all(waits);
      expect(started).toBe(MAX_HELD_FOR_ACCEPTS);
    });
  });
});
