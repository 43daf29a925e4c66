import { describe, expect, it, vi } from 'vitest';
import { Redactor } from '../redaction/redactor.js';
import {
  CaptureStreams,
  eventChars,
  eventFramesAscii,
  eventFramesBound,
  jsonStringOfUtf8,
  legBits,
  lineText,
  PieceCache,
  readEventFrames,
  redactLine,
  streamEdgeFrameBound,
  writeEventFrames,
  writeStreamEndFrame,
  writeStreamStartFrame,
  type FramedLine,
  type StreamedLine,
} from './event-frames.js';
import { eventText, type EventPiece } from './events.js';
import { CaptureStamps } from './stamps.js';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('event frames', () => {
  const events: [string, EventPiece[]][] = [
    ['{"sequence":1', []],
    ['{"sequence":2', ['"a":1', ',"b":"Grüße 😀"']],
    ['{"sequence":3', ['"p":', { utf8: utf8('{"x":"ü","y":[1,2]}'), as: 'json' }, ',"m":2']],
    ['{"sequence":4', ['"p":', { utf8: utf8('{\n  "x": 1\r\n}'), as: 'json' }]],
    ['{"sequence":5', ['"p":', { utf8: utf8('not json\n"quoted" 😀'), as: 'json' }]],
    [
      '{"sequence":6',
      ['"p":', { utf8: utf8('answer "text"\n€'), as: 'string' }, ',"q":', { utf8: utf8(''), as: 'string' }],
    ],
    ['{"sequence":7', ['"p":', { text: 'data: {"q":"ü 😀"}\n\n' }, ',"m":1']],
  ];

  it('carries events, text and encoded pieces alike, to the lines the sink would write', () => {
    const buffer = Buffer.alloc(events.reduce((n, [o, m]) => n + eventFramesBound(o, m), 0));
    let at = 0;
    for (const [opening, members] of events) {
      const end = writeEventFrames(buffer, at, opening, members);
      expect(end - at).toBeLessThanOrEqual(eventFramesBound(opening, members));
      at = end;
    }
    const lines = readEventFrames(buffer, at).map(lineText);
    expect(lines).toEqual(
      events.map(
        ([opening, members]) => `${opening}${members.length > 0 ? ',' : ''}${eventText(members)}}\n`,
      ),
    );
    expect(lines.map((line) => JSON.parse(line) as unknown)).toEqual([
      { sequence: 1 },
      { sequence: 2, a: 1, b: 'Grüße 😀' },
      { sequence: 3, p: { x: 'ü', y: [1, 2] }, m: 2 },
      { sequence: 4, p: { x: 1 } },
      { sequence: 5, p: 'not json\n"quoted" 😀' },
      { sequence: 6, p: 'answer "text"\n€', q: '' },
      { sequence: 7, p: 'data: {"q":"ü 😀"}\n\n', m: 1 },
    ]);
    for (const line of lines) expect(line.indexOf('\n')).toBe(line.length - 1);
  });

  it("reads a line with a stream's text around it, the first such piece", () => {
    const members: EventPiece[] = ['"p":', { text: 'a"b' }, ',"q":', { text: 'c' }, ',"m":1'];
    const buffer = Buffer.alloc(eventFramesBound('{"s":1', members));
    const [line] = readEventFrames(buffer, writeEventFrames(buffer, 0, '{"s":1', members));
    expect(line).toEqual({
      before: '{"s":1,"p":',
      json: '"a\\"b"',
      controls: 0,
      after: ',"q":"c","m":1}\n',
    });
  });

  describe('redactLine', () => {
    const redactor = new Redactor(['bench-secret-0123456789']);
    const streamed = (text: string): FramedLine => ({
      before: '{"h":"Bearer abcdefgh12345678","payload":',
      ...jsonStringOfUtf8(Buffer.from(text)),
      after: ',"m":"bench-secret-0123456789"}\n',
    });

    it("redacts around a stream's text, and the text as JSON only where JSON-encoding could form a secret", () => {
      const redact = vi.spyOn(redactor, 'redact');
      const line = streamed('data: {"x":"sk-test"}\n\n\t');
      // In its three parts, the text's JSON as it came.
      expect(redactLine(line, redactor)).toEqual([
        '{"h":"Bearer ****","payload":',
        '"data: {\\"x\\":\\"sk-test\\"}\\n\\n\\t"',
        ',"m":"****"}\n',
      ]);
      expect(redact.mock.calls).toEqual([[(line as StreamedLine).before], [(line as StreamedLine).after]]);
      redact.mockRestore();
      // A text the stream left as it is (the redactor finds nothing in it), whose escape forms a secret.
      const formed = `x\u001bench-secret-0123456789`;
      expect(redactor.redact(formed)).toBe(formed);
      expect(redactLine(streamed(formed), redactor)).toBe(
        '{"h":"Bearer ****","payload":"x\\u001****","m":"****"}\n',
      );
      expect(redactLine('{"a":"bench-secret-0123456789"}\n', redactor)).toBe('{"a":"****"}\n');
    });
  });

  it('writes a UTF-8 text as JSON.stringify does, and tells the control characters it holds', () => {
    const controls = Array.from({ length: 0x20 }, (_, code) => String.fromCharCode(code)).join('');
    for (const text of [
      '',
      'plain',
      'data: {"a":"b\\n"}\n\n',
      `all ${controls} of them`,
      'Grüße 😀 \u2028\u2029 \u007f \\ " /',
    ]) {
      expect(jsonStringOfUtf8(Buffer.from(text)).json).toBe(JSON.stringify(text));
    }
    expect(jsonStringOfUtf8(Buffer.from('a\nb\tc')).controls).toBe((1 << 0x0a) | (1 << 0x09));
    expect(jsonStringOfUtf8(Buffer.from(controls)).controls).toBe(-1);
    const long = 'x"'.repeat(400_000);
    expect(jsonStringOfUtf8(Buffer.from(long)).json).toBe(JSON.stringify(long));
  });

  it('counts text in UTF-16 units and encoded pieces in bytes', () => {
    expect(eventChars('{"s":1', ['"a":"ü"', { utf8: utf8('"€"'), as: 'json' }])).toBe(6 + 3 + 7 + 5);
  });

  it('turns a piece that comes again into JSON text once, and tells pieces apart by bytes and kind', () => {
    const cache = new PieceCache();
    const scratch = Buffer.from('{"a":"x"}');
    const first = cache.text(scratch, 'string');
    scratch.write('{"a":"y"}'); // the buffer is filled again: the cache kept its own copy
    expect(cache.text(Buffer.from('{"a":"x"}'), 'string')).toBe(first);
    expect(first).toBe(JSON.stringify('{"a":"x"}'));
    expect(cache.text(Buffer.from('{"a":"x"}'), 'json')).toBe('{"a":"x"}');
    expect(cache.text(scratch, 'string')).toBe(JSON.stringify('{"a":"y"}'));
    const big = Buffer.from(JSON.stringify({ pad: 'z'.repeat(70_000) }));
    expect(cache.text(big, 'json')).toBe(big.toString());
    expect(cache.text(big, 'json')).toBe(big.toString());
  });

  it('fills a buffer as far as ASCII text goes and says when text beyond it may not fit (tight)', () => {
    const opening = '{"sequence":8';
    const ascii: EventPiece[] = ['"p":', { text: 'data: {"q":"plain"}\n\n' }, ',"m":1'];
    const exact = eventFramesAscii(eventChars(opening, ascii), ascii);
    const buffer = Buffer.alloc(exact);
    const end = writeEventFrames(buffer, 0, opening, ascii, true);
    expect(end).toBeGreaterThan(0);
    expect(end).toBeLessThanOrEqual(exact);
    expect(readEventFrames(buffer, end).map(lineText)).toEqual([`${opening},${eventText(ascii)}}\n`]);
    // The same length of text beyond ASCII takes more bytes than that: refused, whichever piece holds it.
    for (const members of [
      ['"p":', { text: `data: {"q":"${'ï'.repeat(40)}"}\n\n` }, ',"m":1'],
      ['"p":', { text: 'data: {"q":"plain"}\n\n' }, `,"m":"${'ü'.repeat(40)}"`],
      [`"${'ü'.repeat(40)}":`, { text: 'data: {"q":"plain"}\n\n' }],
    ] as EventPiece[][]) {
      const room = Buffer.alloc(eventFramesAscii(eventChars(opening, members), members));
      expect(writeEventFrames(room, 0, opening, members, true)).toBe(-1);
      const bound = Buffer.alloc(eventFramesBound(opening, members));
      const written = writeEventFrames(bound, 0, opening, members, true);
      expect(readEventFrames(bound, written).map(lineText)).toEqual([`${opening},${eventText(members)}}\n`]);
    }
  });

  it("reads a stream's text that comes again in the next event (both legs of a stream passed through)", () => {
    const events: [string, EventPiece[]][] = [
      ['{"s":1', ['"p":', { text: 'same "text"' }, ',"leg":"in"']],
      ['{"s":2', ['"p":', { text: 'same "text"' }, ',"leg":"out"']],
      ['{"s":3', ['"p":', { text: 'other' }]],
    ];
    const buffer = Buffer.alloc(events.reduce((n, [o, m]) => n + eventFramesBound(o, m), 0));
    let at = 0;
    for (const [opening, members] of events) at = writeEventFrames(buffer, at, opening, members);
    expect(readEventFrames(buffer, at).map(lineText)).toEqual(
      events.map(([opening, members]) => `${opening},${eventText(members)}}\n`),
    );
  });

  it("makes a stream's start and end lines from their frames, as the recorder would write them", () => {
    const head = { id: '"request_id":"r-ü"', rest: ',"backend":"openai","model":"gpt 😀"' };
    const frames = [
      { start: true, legs: ['inbound', 'outbound'] as const, metadata: '{"status":200}', skipped: 0 },
      { start: true, legs: ['outbound'] as const, metadata: '{}', skipped: 1 },
      {
        start: false,
        legs: ['inbound'] as const,
        metadata: '{"error":"stream_error"}',
        skipped: 2,
        chunks: 3,
        bytes: 70,
      },
      { start: false, legs: ['outbound'] as const, metadata: '', skipped: 0, chunks: 0, bytes: 0 },
    ];
    const buffer = Buffer.alloc(frames.length * streamEdgeFrameBound(head, '{"error":"stream_error"}'));
    let at = 0;
    frames.forEach((frame, i) => {
      at = frame.start
        ? writeStreamStartFrame(
            buffer,
            at,
            1_000 + i,
            frame.skipped,
            legBits(frame.legs),
            head,
            frame.metadata,
          )
        : writeStreamEndFrame(
            buffer,
            at,
            1_000 + i,
            frame.skipped,
            frame.legs[0],
            frame.chunks!,
            frame.bytes!,
            head,
            frame.metadata,
          );
    });
    const context = { stamps: new CaptureStamps(), redactor: new Redactor(), streams: new CaptureStreams() };
    const stamp = (ms: number, sequence: number) =>
      `{"timestamp":"${new Date(ms).toISOString()}","sequence":${sequence},"request_id":"r-ü"`;
    expect(readEventFrames(buffer, at, new PieceCache(), context)).toEqual([
      `${stamp(1000, 1)},"direction":"stream_start"${head.rest},"metadata":{"status":200,"leg":"inbound"}}\n`,
      `${stamp(1000, 2)},"direction":"stream_start"${head.rest},"metadata":{"status":200,"leg":"outbound"}}\n`,
      // Sequence numbers skipped (events dropped) before a frame: one before the second, two before the third.
      `${stamp(1001, 4)},"direction":"stream_start"${head.rest},"metadata":{"leg":"outbound"}}\n`,
      `${stamp(1002, 7)},"direction":"stream_end"${head.rest},` +
        '"metadata":{"error":"stream_error","leg":"inbound","chunks":3,"bytes":70}}\n',
      `${stamp(1003, 8)},"direction":"stream_end"${head.rest},"metadata":{"leg":"outbound","chunks":0,"bytes":0}}\n`,
    ]);
  });

  it('refuses a buffer that does not hold frames', () => {
    expect(() => readEventFrames(Buffer.from([11, 0, 0, 0, 0]), 5)).toThrow(/unknown type 11/);
  });
});
