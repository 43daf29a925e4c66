import { describe, expect, it } from 'vitest';
import { Cancellation } from './cancel.js';
import { ConnectionGate, quickReserve } from './connection-gate.js';
import { ProxyError } from '../proxy-error.js';

const gone = () => new ProxyError(499, 'gone', { code: 'client_closed' });

describe('quickReserve', () => {
  it('keeps an eighth of the connections for quick calls, at least one from two connections up', () => {
    expect([1, 2, 4, 8, 16, 17, 4096].map(quickReserve)).toEqual([0, 1, 1, 1, 2, 2, 512]);
  });
});

describe('ConnectionGate', () => {
  it('admits calls up to its limit, streams up to the limit minus the reserve', () => {
    const gate = new ConnectionGate(4, 60_000, 'b');
    expect(gate.streamMax).toBe(3);
    expect([gate.tryEnter(true), gate.tryEnter(true), gate.tryEnter(true), gate.tryEnter(true)]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(gate.tryEnter(false)).toBe(true);
    expect(gate.tryEnter(false)).toBe(false);
    expect(gate.inFlight).toBe(4);
  });

  it('hands a freed connection to a waiting quick call before a waiting stream', async () => {
    const gate = new ConnectionGate(2, 60_000, 'b');
    expect(gate.tryEnter(true)).toBe(true);
    expect(gate.tryEnter(false)).toBe(true);
    const order: string[] = [];
    const stream = gate.wait(true, new Cancellation(), gone).then(() => order.push('stream'));
    const quick = gate.wait(false, new Cancellation(), gone).then(() => order.push('quick'));
    expect(gate.waiting).toBe(2);
    gate.leave(false);
    await quick;
    expect(order).toEqual(['quick']);
    // The stream waits for a stream's place, not for any connection: the first stream must end.
    gate.leave(false);
    expect(gate.waiting).toBe(1);
    gate.leave(true);
    await stream;
    expect(order).toEqual(['quick', 'stream']);
    expect(gate.inFlight).toBe(1);
  });

  it('does not let a newcomer pass calls already waiting', () => {
    const gate = new ConnectionGate(1, 60_000, 'b');
    expect(gate.tryEnter(false)).toBe(true);
    void gate.wait(false, new Cancellation(), gone);
    gate.leave(false);
    // The waiting call took the connection: a newcomer finds none.
    expect(gate.tryEnter(false)).toBe(false);
    expect(gate.inFlight).toBe(1);
  });

  it('refuses a wait past the timeout with a 504 and leaves the queue', async () => {
    const gate = new ConnectionGate(1, 20, 'slow-backend');
    expect(gate.tryEnter(false)).toBe(true);
    const err = await gate.wait(false, new Cancellation(), gone).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProxyError);
    expect((err as ProxyError).status).toBe(504);
    expect((err as ProxyError).message).toBe("Backend 'slow-backend' had no free connection in time");
    expect(gate.waiting).toBe(0);
    gate.leave(false);
    expect(gate.inFlight).toBe(0);
  });

  it('drops a waiting call whose client goes away', async () => {
    const gate = new ConnectionGate(1, 60_000, 'b');
    expect(gate.tryEnter(true)).toBe(true);
    const signal = new Cancellation();
    const waiting = gate.wait(true, signal, gone).catch((e: unknown) => e);
    signal.abort();
    expect(((await waiting) as ProxyError).status).toBe(499);
    expect(gate.waiting).toBe(0);
    gate.leave(true);
    expect(gate.inFlight).toBe(0);
  });
});
