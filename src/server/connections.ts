import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { clientKeyFor } from '../auth/client-address.js';

/**
 * Per-connection bounds in front of every request, before the chat lane or Fastify sees it, so that one
 * client's connection cannot make the proxy do unbounded work (README, "Brute-force protection"):
 *
 * - **Requests in flight per connection.** Node's parser hands over every request of one socket read at
 *   once: a single write of 1,000 pipelined requests would otherwise start 1,000 pieces of work. Beyond
 *   `maxInFlight`, requests wait in the connection's queue and the socket stops being read; they start as
 *   earlier ones finish. A connection that queues more than `maxQueued` is closed.
 * - **A refused request ends its connection**, when the peer is the client itself (not a trusted proxy,
 *   whose connection carries many clients' requests): the refusal goes out with `Connection: close`, and
 *   requests pipelined behind it are never judged.
 * - **A reconnecting blocked address costs next to nothing.** Once a direct client was answered 429, its
 *   new connections are closed at accept, before any request is parsed, for `quietMs` after each answered
 *   refusal while its block lasts: a person retrying by hand still reads the 429 and its Retry-After, a
 *   script hammering the proxy gets one answer per `quietMs` and resets in between.
 */
export interface ConnectionGuardOptions {
  /** Requests of one connection handled at once (default 8). */
  maxInFlight?: number;
  /** Requests of one connection waiting behind those; more closes the connection (default 4,096). */
  maxQueued?: number;
  /** True for a peer whose requests are relayed for other clients (a trusted proxy): never closed for one. */
  isTrustedPeer: (address: string) => boolean;
  /**
   * How long after an answered 429 new connections from that address are closed at accept (default 1 s;
   * 0 answers every reconnect).
   */
  quietMs?: number;
  /** Addresses remembered that way (default 10,000; the oldest go first). */
  maxRemembered?: number;
  /** Epoch milliseconds; injectable for tests. */
  now?: () => number;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

interface ConnectionState {
  inFlight: number;
  /** Pairs of request and response waiting their turn, flattened. */
  waiting: Array<IncomingMessage | ServerResponse>;
  /** Set once a refusal went out on a direct connection: whatever follows is dropped unjudged. */
  closing: boolean;
  /** Whether this guard paused the socket (and so must resume it). */
  paused: boolean;
  /** What starts a request of this connection (the server's dispatch). */
  handle: RequestHandler;
  /** Whether the peer is a trusted proxy, once a refusal asked (a refused client's connection is closed). */
  trustedPeer?: boolean;
}

interface Refused {
  blockedUntilMs: number;
  answeredAtMs: number;
}

const STATE = Symbol('llm-interactive-proxy.connection');
type GuardedSocket = Socket & { [STATE]?: ConnectionState };

export const DEFAULT_MAX_IN_FLIGHT = 8;
const DEFAULT_MAX_QUEUED = 4096;
const DEFAULT_QUIET_MS = 1000;
const DEFAULT_MAX_REMEMBERED = 10_000;

export class ConnectionGuard {
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  private readonly quietMs: number;
  private readonly maxRemembered: number;
  private readonly isTrustedPeer: (address: string) => boolean;
  private readonly now: () => number;
  /** Direct clients answered 429 lately, by client key, oldest first. */
  private readonly refused = new Map<string, Refused>();

  constructor(options: ConnectionGuardOptions) {
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.quietMs = options.quietMs ?? DEFAULT_QUIET_MS;
    this.maxRemembered = options.maxRemembered ?? DEFAULT_MAX_REMEMBERED;
    this.isTrustedPeer = options.isTrustedPeer;
    this.now = options.now ?? Date.now;
  }

  /** For the server's `connection` event: closes a connection from an address that is hammering while blocked. */
  accept(socket: Socket): void {
    if (this.refused.size === 0 || this.quietMs <= 0) return;
    const address = socket.remoteAddress;
    if (address === undefined) return;
    const clientKey = clientKeyFor(address);
    const entry = this.refused.get(clientKey);
    if (entry === undefined) return;
    const at = this.now();
    if (at >= entry.blockedUntilMs) {
      this.refused.delete(clientKey);
      return;
    }
    if (at - entry.answeredAtMs < this.quietMs) socket.destroy();
  }

  /** Starts `handle` for this request now, or when the connection has room; drops it if the connection is closing. */
  admit(req: IncomingMessage, res: ServerResponse, handle: RequestHandler): void {
    const socket = req.socket as GuardedSocket;
    let state = socket[STATE];
    if (state === undefined) {
      state = { inFlight: 0, waiting: [], closing: false, paused: false, handle };
      socket[STATE] = state;
    }
    if (state.closing) return;
    if (state.inFlight < this.maxInFlight) {
      this.start(state, req, res, handle);
      return;
    }
    if (state.waiting.length >= this.maxQueued * 2) {
      socket.destroy();
      return;
    }
    state.waiting.push(req, res);
    if (!state.paused) {
      state.paused = true;
      socket.pause();
    }
  }

  /**
   * Called when a request is refused (401 or 429) before its answer is written: on a direct connection the
   * answer closes it, and, for a 429 (`retryAfterSeconds` given), the address is remembered for
   * {@link accept}.
   */
  refuse(req: IncomingMessage, res: ServerResponse, retryAfterSeconds?: number): void {
    const address = req.socket.remoteAddress;
    if (address === undefined) return;
    const state = (req.socket as GuardedSocket)[STATE];
    // Behind a reverse proxy every refusal comes over its connections: the peer is judged once for each.
    const trusted = state?.trustedPeer ?? this.isTrustedPeer(address);
    if (state !== undefined) state.trustedPeer = trusted;
    if (trusted) return;
    if (state !== undefined) {
      state.closing = true;
      state.waiting.length = 0;
    }
    if (!res.headersSent) res.setHeader('connection', 'close');
    if (retryAfterSeconds !== undefined) this.remember(address, retryAfterSeconds);
  }

  /**
   * Forgets a refused address (an operator's unblock): its reconnects are accepted at once rather than
   * closed for the rest of the quiet interval. On this replica only; the others forget within `quietMs`.
   */
  forget(clientKey: string): void {
    this.refused.delete(clientKey);
  }

  private start(state: ConnectionState, req: IncomingMessage, res: ServerResponse, handle: RequestHandler) {
    state.inFlight++;
    const socket = req.socket as GuardedSocket;
    // `on`, not `once`: a response emits 'close' once, and a wrapper removed on the way costs more.
    res.on('close', () => this.release(socket, state));
    handle(req, res);
  }

  private release(socket: GuardedSocket, state: ConnectionState): void {
    state.inFlight--;
    while (!state.closing && state.inFlight < this.maxInFlight && state.waiting.length > 0) {
      const req = state.waiting.shift() as IncomingMessage;
      const res = state.waiting.shift() as ServerResponse;
      this.start(state, req, res, state.handle);
    }
    if (state.paused && state.waiting.length === 0) {
      state.paused = false;
      if (!socket.destroyed) socket.resume();
    }
  }

  private remember(address: string, retryAfterSeconds: number): void {
    const clientKey = clientKeyFor(address);
    const at = this.now();
    this.refused.delete(clientKey);
    if (this.refused.size >= this.maxRemembered) {
      const oldest = this.refused.keys().next().value;
      if (oldest !== undefined) this.refused.delete(oldest);
    }
    this.refused.set(clientKey, { blockedUntilMs: at + retryAfterSeconds * 1000, answeredAtMs: at });
  }
}
