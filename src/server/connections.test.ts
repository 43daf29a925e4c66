import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConnectionGuard } from './connections.js';

/** A socket as the guard sees it: an address, and whether it was closed. */
function fakeSocket(remoteAddress: string): Socket & { destroyedByGuard: boolean } {
  const socket = {
    remoteAddress,
    destroyedByGuard: false,
    destroy() {
      socket.destroyedByGuard = true;
    },
  };
  return socket as unknown as Socket & { destroyedByGuard: boolean };
}

/** A refused request from `address`, as the auth gate hands it to `refuse` before answering. */
function refusedRequest(address: string): [IncomingMessage, ServerResponse] {
  const headers: Record<string, string> = {};
  const req = { socket: fakeSocket(address) } as unknown as IncomingMessage;
  const res = {
    headersSent: false,
    setHeader: (name: string, value: string) => (headers[name] = value),
  } as unknown as ServerResponse;
  return [req, res];
}

function guardAt(clock: { ms: number }) {
  return new ConnectionGuard({ isTrustedPeer: () => false, quietMs: 1000, now: () => clock.ms });
}

describe('ConnectionGuard at accept', () => {
  it('closes a blocked address reconnecting within the quiet time after its 429, not after it', () => {
    const clock = { ms: 1_000_000 };
    const guard = guardAt(clock);
    guard.refuse(...refusedRequest('203.0.113.9'), 30);

    const soon = fakeSocket('203.0.113.9');
    guard.accept(soon);
    expect(soon.destroyedByGuard).toBe(true);
    const other = fakeSocket('203.0.113.10');
    guard.accept(other);
    expect(other.destroyedByGuard).toBe(false);

    clock.ms += 1000;
    const later = fakeSocket('203.0.113.9');
    guard.accept(later);
    expect(later.destroyedByGuard).toBe(false);
  });

  it('remembers no address for a 401 (no Retry-After)', () => {
    const guard = guardAt({ ms: 1_000_000 });
    guard.refuse(...refusedRequest('203.0.113.9'));
    const socket = fakeSocket('203.0.113.9');
    guard.accept(socket);
    expect(socket.destroyedByGuard).toBe(false);
  });

  it('forgets an unblocked address at once: its next connection is accepted', () => {
    const guard = guardAt({ ms: 1_000_000 });
    guard.refuse(...refusedRequest('203.0.113.9'), 30);
    guard.refuse(...refusedRequest('2001:db8:1:2::7'), 30);

    guard.forget('203.0.113.9');
    guard.forget('2001:db8:1:2::/64');

    for (const address of ['203.0.113.9', '2001:db8:1:2::abcd']) {
      const socket = fakeSocket(address);
      guard.accept(socket);
      expect(socket.destroyedByGuard, address).toBe(false);
    }
  });
});
