import { describe, expect, it } from 'vitest';
import type { StreamControl, StreamSink } from '../backends/types.js';
import { ManualClock } from '../routing/clock.js';
import { PrimedStream, type TakeableResponse } from './primed-stream.js';

/** A backend's stream as a direct call gives it: one sink, told to pause when it answers false. */
function backendStream() {
  let sink: StreamSink | null = null;
  const queue: Buffer[] = [];
  let paused = false;
  let disposed = 0;
  const flush = () => {
    while (!paused && queue.length > 0) if (!sink!.write(queue.shift()!)) paused = true;
  };
  const response: TakeableResponse = {
    status: 200,
    headers: { 'content-type': 'text/event-stream' },
    contentType: 'text/event-stream',
    body: { [Symbol.asyncIterator]: async function* () {} },
    dispose: () => {
      disposed += 1;
      sink?.fail(new Error('client gone'));
    },
    take(s: StreamSink): StreamControl {
      sink = s;
      return {
        resume: () => {
          paused = false;
          flush();
        },
      };
    },
  };
  return {
    response,
    send: (text: string) => {
      queue.push(Buffer.from(text));
      flush();
    },
    end: () => sink!.end(),
    get disposed() {
      return disposed;
    },
    get paused() {
      return paused;
    },
  };
}

/** The relay's side: what it was written, and whether it takes more. */
function relaySink(startFull = false) {
  const got: string[] = [];
  let full = startFull;
  let ended = false;
  let failed: Error | null = null;
  const sink: StreamSink = {
    write: (chunk) => {
      got.push(chunk.toString());
      return !full;
    },
    end: () => void (ended = true),
    fail: (err) => void (failed = err),
  };
  return {
    sink,
    got,
    drain: () => void (full = false),
    get ended() {
      return ended;
    },
    get failed() {
      return failed;
    },
  };
}

const stalled = () => new Error('went silent');

describe('PrimedStream', () => {
  it('commits with the first bytes, holds what comes until taken, then passes everything on', async () => {
    const backend = backendStream();
    const primed = new PrimedStream(backend.response, new ManualClock(), 1000, stalled);
    backend.send('');
    backend.send('a');
    backend.send('b');
    expect(await primed.started).toEqual({ kind: 'first' });
    // A little is held without pausing the backend (pausing and resuming it costs more).
    expect(backend.paused).toBe(false);
    const relay = relaySink();
    primed.take(relay.sink);
    backend.send('c');
    backend.end();
    expect(relay.got).toEqual(['a', 'b', 'c']);
    expect(relay.ended).toBe(true);
  });

  it('pauses the backend once 64 KiB are held before the relay takes the stream', async () => {
    const backend = backendStream();
    const primed = new PrimedStream(backend.response, new ManualClock(), 1000, stalled);
    const piece = 'x'.repeat(16 * 1024);
    for (let i = 0; i < 3; i++) backend.send(piece);
    expect(backend.paused).toBe(false);
    backend.send(piece);
    expect(backend.paused).toBe(true);
    backend.send('rest');
    expect(await primed.started).toEqual({ kind: 'first' });
    const relay = relaySink();
    primed.take(relay.sink);
    backend.end();
    expect(relay.got.join('')).toBe(piece.repeat(4) + 'rest');
    expect(relay.ended).toBe(true);
  });

  it('tells a stream that ended or failed before its first bytes', async () => {
    const empty = backendStream();
    const a = new PrimedStream(empty.response, new ManualClock(), 1000, stalled);
    empty.end();
    expect(await a.started).toEqual({ kind: 'ended' });
    const broken = backendStream();
    const b = new PrimedStream(broken.response, new ManualClock(), 1000, stalled);
    broken.response.dispose();
    expect(await b.started).toMatchObject({ kind: 'failed', err: new Error('client gone') });
  });

  it('ends a stream silent for the stall timeout with the stall error, not while the client is slow', async () => {
    const clock = new ManualClock();
    const backend = backendStream();
    const primed = new PrimedStream(backend.response, clock, 1000, stalled);
    backend.send('a');
    await primed.started;
    const relay = relaySink(true);
    const control = primed.take(relay.sink);
    // The client is full: the backend is held, and that silence is not the backend's.
    clock.advance(3000);
    expect(relay.failed).toBeNull();
    relay.drain();
    control.resume();
    backend.send('b');
    clock.advance(999);
    expect(relay.failed).toBeNull();
    clock.advance(1001);
    expect(relay.failed).toEqual(new Error('went silent'));
    expect(backend.disposed).toBe(1);
  });

  it('catches the silence within a quarter more than the stall timeout, not up to twice it', async () => {
    const clock = new ManualClock();
    const backend = backendStream();
    const primed = new PrimedStream(backend.response, clock, 1000, stalled);
    backend.send('a');
    await primed.started;
    const relay = relaySink();
    primed.take(relay.sink);
    backend.send('b');
    clock.advance(1249);
    expect(relay.failed).toBeNull();
    clock.advance(1);
    expect(relay.failed).toEqual(new Error('went silent'));
  });
});
