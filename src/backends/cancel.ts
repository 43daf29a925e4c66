import { EventEmitter } from 'node:events';

/**
 * What a backend call listens to for "the client went away". undici accepts any EventEmitter with an
 * `aborted` flag and an `abort` event, and this one costs far less per request than an AbortController
 * (an EventTarget), on a path that runs for every request.
 */
export interface EmitterSignal {
  readonly aborted: boolean;
  once(event: 'abort', listener: () => void): unknown;
  removeListener(event: 'abort', listener: () => void): unknown;
}

/** An AbortSignal works too (tests, callers outside the request path). */
export type CancelSignal = AbortSignal | EmitterSignal;

export class Cancellation extends EventEmitter implements EmitterSignal {
  aborted = false;

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit('abort');
  }
}

/** Calls `listener` once when `signal` aborts; returns the function that stops listening. */
export function onCancel(signal: CancelSignal, listener: () => void): () => void {
  if ('addEventListener' in signal) {
    signal.addEventListener('abort', listener, { once: true });
    return () => signal.removeEventListener('abort', listener);
  }
  signal.once('abort', listener);
  return () => signal.removeListener('abort', listener);
}
