import { Fallback } from './fallback.js';
import {
  MemoryStoredResponses,
  type StoredEntry,
  type StoredResponses,
  type StoredResponsesLimits,
} from './responses.js';
import { RedisStoredResponses } from './responses-redis.js';
import type { StateStore } from './store.js';

/** The stored-responses feature's name in key prefixes, health and the degraded gauge. */
export const RESPONSES_FEATURE = 'responses';

export interface FallbackStoredResponsesOptions {
  primary: RedisStoredResponses;
  limits: StoredResponsesLimits;
  log: ConstructorParameters<typeof Fallback>[0]['log'];
  onDegradedChange?: ((degraded: boolean) => void) | undefined;
  probeIntervalMs?: number | undefined;
}

/**
 * Stored responses in Redis that never fail their caller: while Redis is down, this replica keeps entries in
 * its memory store (bounded the same way) and reads from it. When Redis returns, new entries go to Redis
 * again, and what was written during the outage stays readable from memory, on this replica, until its TTL
 * or the bound drops it; a delete removes an id from both.
 */
export class FallbackStoredResponses implements StoredResponses {
  readonly fallback: Fallback<StoredResponses>;
  private memoryUsed = false;

  constructor(options: FallbackStoredResponsesOptions) {
    const { primary } = options;
    this.fallback = new Fallback<StoredResponses>({
      primary,
      ping: () => primary.ping(),
      createMemory: () => new MemoryStoredResponses(options.limits),
      description: primary.description,
      name: 'Stored-responses store',
      degradedNote: 'responses stored meanwhile are kept on this replica only',
      recoveredNote: 'stored responses are shared across replicas again',
      freshMemoryOnRecover: false,
      log: options.log,
      onDegradedChange: (degraded) => {
        if (degraded) this.memoryUsed = true;
        options.onDegradedChange?.(degraded);
      },
      probeIntervalMs: options.probeIntervalMs,
    });
  }

  get degraded(): boolean {
    return this.fallback.degraded;
  }

  start(): Promise<void> {
    return this.fallback.start();
  }

  put(id: string, owner: string, value: string | null, backend?: string): Promise<void> {
    return this.fallback.run(async (store) => store.put(id, owner, value, backend));
  }

  async get(id: string, owner: string): Promise<StoredEntry | undefined> {
    const found = await this.fallback.run((store) => store.get(id, owner));
    if (found !== undefined || !this.memoryUsed || this.fallback.degraded) return found;
    return this.fallback.memory.get(id, owner);
  }

  async delete(id: string, owner: string): Promise<boolean> {
    const removed = await this.fallback.run((store) => store.delete(id, owner));
    if (!this.memoryUsed || this.fallback.degraded) return removed;
    return (await this.fallback.memory.delete(id, owner)) || removed;
  }

  /** See `Fallback.probe`. */
  probe(): Promise<boolean> {
    return this.fallback.probe();
  }

  close(): void {
    this.fallback.close();
  }
}

export interface CreateStoredResponsesOptions {
  /** The state store (`openStateStore`, store.ts). */
  store: StateStore;
  /** `--responses-max-stored` and `--responses-ttl`. */
  limits: StoredResponsesLimits;
  /** `PROXY_STATE_SECRET`; defaults to the state store's (required with Redis, checked at startup). */
  secret?: string | undefined;
}

/**
 * The stored responses for this proxy: one instance's memory store with the memory state store; with Redis,
 * entries shared by replicas and sealed, falling back to memory while Redis is down (logged, and the state
 * store's degraded gauge set for `responses`). Closed with the state store.
 */
export function createStoredResponses(options: CreateStoredResponsesOptions): StoredResponses {
  const { store, limits } = options;
  const target = store.redisTarget(RESPONSES_FEATURE);
  if (target === null) return new MemoryStoredResponses(limits);
  const secret = options.secret ?? store.secret;
  if (secret === undefined)
    throw new Error('createStoredResponses: a Redis state store needs the state secret');
  const responses = new FallbackStoredResponses({
    primary: new RedisStoredResponses({ ...target, limits, secret }),
    limits,
    log: store.log,
    onDegradedChange: (degraded) => store.reportDegraded(RESPONSES_FEATURE, degraded),
  });
  store.onClose(() => responses.close());
  return responses;
}
