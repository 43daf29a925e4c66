import { describe, expect, it, vi } from 'vitest';
import { CaptureRecorder, eventText, type CaptureSink } from '../capture/events.js';
import { Redactor } from '../redaction/redactor.js';
import { RequestCapture } from './record.js';

const PROVIDER_KEY = 'sk-proj-CanaryProvider0123456789abcdefXYZ';

interface Event {
  direction: string;
  payload?: unknown;
  metadata?: Record<string, unknown>;
}

/** A sink as the contract asks: every event redacted with the redactor it comes with, then kept. */
function memorySink(): CaptureSink & { events: Event[] } {
  const events: Event[] = [];
  return {
    events,
    writeEvent: (pieces, redactor) => {
      events.push(JSON.parse(`{${redactor.redact(eventText(pieces))}}`) as Event);
    },
  };
}

function capture(sink: CaptureSink): RequestCapture {
  const recorder = new CaptureRecorder(() => new Redactor([PROVIDER_KEY]), sink);
  return new RequestCapture(
    recorder,
    { id: 'req-1', headers: {}, ip: '127.0.0.1', authKeyName: null },
    'openai',
    'm',
    null,
  );
}

const chunksOf = (events: Event[]) => events.filter((e) => e.direction === 'stream_chunk');

describe('RequestCapture.openLeg', () => {
  it('records chunks that arrive close together as one event, in order, with the wire counts', () => {
    vi.useFakeTimers();
    try {
      const sink = memorySink();
      const leg = capture(sink).openLeg('outbound', { status: 200 });
      const pieces = [1, 2, 3, 4].map((n) => `data: {"text":"piece ${n} ${'ö'.repeat(200)}"}\n\n`);
      leg.chunk(pieces[0]!);
      leg.chunk(Buffer.from(pieces[1]!));
      leg.chunk(pieces[2]!);
      expect(chunksOf(sink.events)).toEqual([]);
      vi.advanceTimersByTime(5);
      // One event for the three (the redactor may hold a secret's length back from its end).
      expect(chunksOf(sink.events)).toHaveLength(1);
      const first = chunksOf(sink.events)[0]!;
      expect(first.metadata).toEqual({ leg: 'outbound', chunk: 3 });
      expect(
        pieces
          .slice(0, 3)
          .join('')
          .startsWith(first.payload as string),
      ).toBe(true);
      expect((first.payload as string).length).toBeGreaterThan(pieces[0]!.length * 2);
      leg.chunk(pieces[3]!);
      leg.end();
      // The fourth chunk and what the redactor held back, as one event.
      expect(sink.events.map((e) => e.direction)).toEqual([
        'stream_start',
        'stream_chunk',
        'stream_chunk',
        'stream_end',
      ]);
      expect(chunksOf(sink.events)[1]!.metadata).toEqual({ leg: 'outbound', chunk: 4 });
      const whole = pieces.join('');
      expect(
        chunksOf(sink.events)
          .map((e) => e.payload)
          .join(''),
      ).toBe(whole);
      expect(sink.events.at(-1)!.metadata).toEqual({
        leg: 'outbound',
        chunks: 4,
        bytes: Buffer.byteLength(whole),
      });
      // The timer that comes after the end records nothing more.
      vi.advanceTimersByTime(5);
      expect(sink.events).toHaveLength(4);
    } finally {
      vi.useRealTimers();
    }
  });

  it('records the last chunk and the failure at the end, and a key split across chunks redacted', () => {
    vi.useFakeTimers();
    const sink = memorySink();
    const leg = capture(sink).openLeg('inbound', { status: 200 });
    const text = `data: {"error":"bad key ${PROVIDER_KEY}"}\n\n`;
    const bytes = Buffer.from(text);
    // A UTF-8 boundary and the key itself cut between chunks.
    leg.chunk(bytes.subarray(0, 30));
    leg.chunk(bytes.subarray(30));
    leg.end(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    const recorded = chunksOf(sink.events)
      .map((e) => e.payload as string)
      .join('');
    expect(recorded).not.toContain(PROVIDER_KEY);
    expect(recorded).not.toContain(PROVIDER_KEY.slice(12));
    expect(recorded.startsWith('data: {"error":"bad key ')).toBe(true);
    expect(recorded.endsWith('"}\n\n')).toBe(true);
    expect(sink.events.at(-1)).toMatchObject({
      direction: 'stream_end',
      metadata: { leg: 'inbound', error: 'ECONNRESET', chunks: 2, bytes: bytes.length },
    });
    // The batch timer the chunks started finds nothing left to record.
    vi.advanceTimersByTime(5);
    expect(sink.events.at(-1)!.direction).toBe('stream_end');
    vi.useRealTimers();
  });
});

describe('RequestCapture.passThrough', () => {
  it('records the chunks of a few milliseconds once per leg, and all of them by the end', () => {
    vi.useFakeTimers();
    try {
      const sink = memorySink();
      const tap = capture(sink).passThrough({ status: 200 });
      const pieces = [1, 2, 3].map((n) => Buffer.from(`data: {"n":${n},"t":"${'x'.repeat(300)}"}\n\n`));
      tap.chunk(pieces[0]!);
      tap.chunk(pieces[1]!);
      vi.advanceTimersByTime(5);
      expect(chunksOf(sink.events).map((e) => e.metadata)).toEqual([
        { leg: 'inbound', chunk: 2 },
        { leg: 'outbound', chunk: 2 },
      ]);
      tap.chunk(pieces[2]!);
      tap.end('data: [DONE]\n\n');
      // The third chunk with what the redactor held back, once per leg; then the proxy's own end.
      expect(chunksOf(sink.events).map((e) => e.metadata)).toEqual([
        { leg: 'inbound', chunk: 2 },
        { leg: 'outbound', chunk: 2 },
        { leg: 'inbound', chunk: 3 },
        { leg: 'outbound', chunk: 3 },
        { leg: 'outbound', chunk: 4 },
      ]);
      const whole = Buffer.concat(pieces).toString();
      const legText = (leg: string) =>
        chunksOf(sink.events)
          .filter((e) => e.metadata?.leg === leg)
          .map((e) => e.payload)
          .join('');
      expect(legText('inbound')).toBe(whole);
      expect(legText('outbound')).toBe(`${whole}data: [DONE]\n\n`);
      expect(sink.events.filter((e) => e.direction === 'stream_end').map((e) => e.metadata)).toEqual([
        { leg: 'inbound', chunks: 3, bytes: whole.length },
        { leg: 'outbound', chunks: 4, bytes: whole.length + 14 },
      ]);
    } finally {
      vi.useRealTimers();
    }
  });
});
