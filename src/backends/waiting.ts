import { onCancel, type CancelSignal } from './cancel.js';

/** A call waiting in a queue for its turn (a connection, a stream's start). */
export interface Waiter {
  readonly admit: () => void;
  readonly refuse: (err: Error) => void;
}

/** Optional bound on the wait: past `ms`, the call is refused with `error()`. */
export interface WaitLimit {
  readonly ms: number;
  readonly error: () => Error;
}

/**
 * Queues a call in `queue` (insertion-ordered: first come, first served) until the queue's owner admits it;
 * rejects with `gone()` when the client leaves first, or with the limit's error when it runs out. However it
 * ends, the waiter leaves the queue and stops listening. `fields` are the owner's own about the call.
 */
export function waitInQueue<W extends Waiter>(
  queue: Set<W>,
  fields: Omit<W, keyof Waiter>,
  signal: CancelSignal,
  gone: () => Error,
  limit?: WaitLimit,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const end = () => {
      if (timer !== undefined) clearTimeout(timer);
      stopListening();
      queue.delete(waiter);
    };
    const waiter = {
      ...fields,
      admit: () => {
        end();
        resolve();
      },
      refuse: (err: Error) => {
        end();
        reject(err);
      },
    } as W;
    const timer = limit === undefined ? undefined : setTimeout(() => waiter.refuse(limit.error()), limit.ms);
    const stopListening = onCancel(signal, () => waiter.refuse(gone()));
    if (signal.aborted) return waiter.refuse(gone());
    queue.add(waiter);
  });
}
