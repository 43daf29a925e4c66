import { isAscii } from 'node:buffer';
import type { Redactor } from '../redaction/redactor.js';
import { StreamRedactor } from '../redaction/stream.js';
import {
  encodedText,
  type CaptureDirection,
  type EncodedPiece,
  type EventPiece,
  type StreamHead,
  type StreamLeg,
} from './events.js';
import type { CaptureStamps } from './stamps.js';

/**
 * How recorded events cross to the capture worker: frames in a byte buffer, so that the request path only
 * copies bytes. A `TEXT` frame is JSON text as UTF-8; `JSON` and `STRING` frames are an event's encoded
 * pieces (EncodedPiece), `STREAMED` a StringPiece (a stream's text, redacted already), made JSON text by the
 * worker; `END` closes one event's line. These frames are `tag, u32 little-endian length, bytes`. A `STAMP`
 * frame (`tag, f64 milliseconds, u32 sequence numbers skipped`) opens an event whose stamps the worker
 * writes; a `STREAM` frame (see {@link writeStreamFrame}) stands alone: a stream's text as received, which
 * the worker redacts as one stream and records as zero or more lines; so do `STREAM_START` and `STREAM_END`
 * frames (see {@link writeStreamStartFrame}), a stream's first and last events, which the worker makes.
 */
const TEXT = 1;
const JSON_TEXT = 2;
const STRING = 3;
const END = 4;
const STREAMED = 6;
const STAMP = 7;
const STREAM = 8;
const STREAM_START_TAG = 9;
const STREAM_END_TAG = 10;
const HEADER = 5;
/** The bytes of a `STAMP` frame. */
export const STAMP_BYTES = 13;

/**
 * An upper bound of the bytes {@link writeEventFrames} takes for one event: three per UTF-16 unit of text
 * (UTF-8's most), the encoded pieces' own length, and the frame headers.
 */
export function eventFramesBound(opening: string, members: readonly EventPiece[]): number {
  let bytes = HEADER + opening.length * 3 + 1 + HEADER + 2 + 1;
  for (const piece of members) {
    bytes +=
      HEADER +
      (typeof piece === 'string'
        ? piece.length * 3
        : 'text' in piece
          ? piece.text.length * 3
          : piece.utf8.byteLength);
  }
  return bytes;
}

/** The length of one event's text in UTF-16 units (encoded pieces by their bytes): what queue bounds count. */
export function eventChars(opening: string, members: readonly EventPiece[]): number {
  let chars = opening.length + 3;
  for (const piece of members) {
    chars +=
      typeof piece === 'string' ? piece.length : 'text' in piece ? piece.text.length : piece.utf8.byteLength;
  }
  return chars;
}

/**
 * The bytes {@link writeEventFrames} takes for one event whose text is all one-byte UTF-8 (ASCII, as most
 * capture text is), given its {@link eventChars}: what a buffer is filled up to before it is sent, so that
 * a stream's text does not count three times over (the buffer would go to the worker a third full).
 */
export function eventFramesAscii(chars: number, members: readonly EventPiece[]): number {
  // A frame header per piece and two more, the end tag, and the room `tight` keeps after the last string.
  return chars + HEADER * (members.length + 3) + 4;
}

/**
 * Writes one event — `{` stamps `,` members `}` and a newline — as frames at `at`; returns where they end.
 * Room for {@link eventFramesBound} bytes is the caller's job, unless `tight`: then the frames are written
 * only as far as the buffer goes and -1 is returned when they may not all fit (text beyond ASCII takes
 * more than {@link eventFramesAscii}); the caller writes the event again where there is room for the bound.
 */
export function writeEventFrames(
  buffer: Buffer,
  at: number,
  opening: string,
  members: readonly EventPiece[],
  tight = false,
): number {
  // Past this, a string's bytes may have been cut short (buffer.write writes what fits, silently), or the
  // frames that follow may not fit: the bytes of the last tag, length and closing.
  const room = tight ? buffer.length - HEADER - 3 : Infinity;
  // Text pieces next to each other are joined and written as one TEXT frame: one write (a call into C++)
  // per run of text rather than per piece.
  let text = members.length > 0 ? `${opening},` : opening;
  for (const piece of members) {
    if (typeof piece === 'string') {
      text += piece;
      continue;
    }
    if (text !== '') {
      at = writeText(buffer, at, text);
      if (at > room) return -1;
      text = '';
    }
    if ('text' in piece) {
      buffer[at] = STREAMED;
      const start = at + HEADER;
      at = start + buffer.write(piece.text, start);
      if (at > room) return -1;
      buffer.writeUInt32LE(at - start, start - 4);
      continue;
    }
    if (at + HEADER + piece.utf8.byteLength > room) return -1;
    buffer[at] = piece.as === 'json' ? JSON_TEXT : STRING;
    buffer.writeUInt32LE(piece.utf8.byteLength, at + 1);
    buffer.set(piece.utf8, at + HEADER);
    at += HEADER + piece.utf8.byteLength;
  }
  at = writeText(buffer, at, `${text}}\n`);
  if (at > room) return -1;
  buffer[at++] = END;
  return at;
}

/** Writes one TEXT frame of `text` at `at`; returns where it ends. */
function writeText(buffer: Buffer, at: number, text: string): number {
  buffer[at] = TEXT;
  const start = at + HEADER;
  const end = start + buffer.write(text, start);
  buffer.writeUInt32LE(end - start, start - 4);
  return end;
}

/**
 * Writes the frame that opens an event whose stamps the worker writes (see {@link FrameContext}): when it
 * was recorded (`ms`, since the epoch) and how many sequence numbers dropped events took since the last
 * frame. The event's own frames follow, written by {@link writeEventFrames} with an empty opening.
 */
export function writeStamp(buffer: Buffer, at: number, ms: number, skipped: number): number {
  buffer[at] = STAMP;
  buffer.writeDoubleLE(ms, at + 1);
  buffer.writeUInt32LE(skipped, at + 9);
  return at + STAMP_BYTES;
}

/** Flags of a `STREAM` frame. */
export const STREAM_OPEN = 1;
/** The stream's last text: what its redaction held back is released with it, and the stream forgotten. */
export const STREAM_LAST = 2;
/**
 * Text of the stream was dropped before this frame (the writer's bound): the worker records none of the
 * stream's text from here on, so that no part of a secret cut by the gap is written (with STREAM_LAST, the
 * frame only tells the worker to forget the stream).
 */
export const STREAM_GAP = 4;
/** Bit of each leg in a `STREAM` frame's legs. */
const LEG_BITS: Readonly<Record<StreamLeg, number>> = { inbound: 1, outbound: 2 };

/** The bit set of `legs` that a `STREAM_OPEN` frame carries. */
export function legBits(legs: readonly StreamLeg[]): number {
  let bits = 0;
  for (const leg of legs) bits |= LEG_BITS[leg];
  return bits;
}

/** The fixed bytes of a `STREAM` frame (with the part that opens a stream). */
const STREAM_FIXED = 1 + 4 + 8 + 4 + 4 + 1 + 1 + 4 + 4;

/** The most characters of `,"direction":"…"` (the longest direction's). */
const DIRECTION_CHARS = ',"direction":"outbound_response"'.length;

/** `,"direction":"…"` of each direction a frame's head is written with. */
const DIRECTION_MEMBERS: Readonly<Record<CaptureDirection, string>> = {
  inbound_request: ',"direction":"inbound_request"',
  outbound_request: ',"direction":"outbound_request"',
  inbound_response: ',"direction":"inbound_response"',
  outbound_response: ',"direction":"outbound_response"',
  stream_start: ',"direction":"stream_start"',
  stream_chunk: ',"direction":"stream_chunk"',
  stream_end: ',"direction":"stream_end"',
};

/** The characters of a head with its direction, at most. */
function headChars(head: StreamHead | undefined): number {
  return head === undefined ? 0 : head.id.length + DIRECTION_CHARS + head.rest.length;
}

/**
 * An upper bound of the bytes {@link writeStreamFrame} takes: three per UTF-16 unit (UTF-8's most); or, with
 * `ascii`, what it takes when the text is all one-byte UTF-8 (what a buffer is filled up to, see
 * eventFramesAscii).
 */
export function streamFrameBound(head: StreamHead | undefined, text: string, ascii = false): number {
  // With `ascii`, one byte more: a text that fills the buffer to its very end may have been cut.
  return ascii
    ? STREAM_FIXED + 1 + headChars(head) + text.length
    : STREAM_FIXED + (headChars(head) + text.length) * 3;
}

/**
 * Writes `head` with `direction` between its members at `at`, as UTF-8 after its u32 length: the pieces
 * one after the other, never joined into one string here. Room for three bytes a character is the caller's.
 */
function writeHead(buffer: Buffer, at: number, head: StreamHead, direction: CaptureDirection): number {
  const start = at + 4;
  let end = start + buffer.write(head.id, start);
  end += buffer.write(DIRECTION_MEMBERS[direction], end);
  end += buffer.write(head.rest, end);
  buffer.writeUInt32LE(end - start, at);
  return end;
}

/**
 * Writes one `STREAM` frame: `tag, u32 stream, f64 ms, u32 skipped, u32 chunk, u8 flags`, then, when it
 * opens the stream, `u8 legs, u32 length, head` (the chunk events' members before their payload), then
 * `u32 length, text`. `chunk`: the wire chunks that had arrived when this text was pushed; `ms` and
 * `skipped` as for {@link writeStamp}. Room for {@link streamFrameBound} is the caller's job, unless `tight`
 * (see writeEventFrames): -1 when the frame may not fit.
 */
export function writeStreamFrame(
  buffer: Buffer,
  at: number,
  stream: number,
  ms: number,
  skipped: number,
  chunk: number,
  flags: number,
  legs: number,
  head: StreamHead | undefined,
  text: string,
  tight = false,
): number {
  const room = tight ? buffer.length : Infinity;
  buffer[at] = STREAM;
  buffer.writeUInt32LE(stream, at + 1);
  buffer.writeDoubleLE(ms, at + 5);
  buffer.writeUInt32LE(skipped, at + 13);
  buffer.writeUInt32LE(chunk, at + 17);
  buffer[at + 21] = flags;
  at += 22;
  if ((flags & STREAM_OPEN) !== 0) {
    buffer[at] = legs;
    at = head === undefined ? at + 5 : writeHead(buffer, at + 1, head, 'stream_chunk');
    // Four bytes left for the text's length, which buffer.write's silent cut (of any of the head's pieces:
    // the ones after it write nothing) would not leave.
    if (at + 4 > room - 1) return -1;
  }
  const start = at + 4;
  at = start + buffer.write(text, start);
  if (at > room - 1) return -1;
  buffer.writeUInt32LE(at - start, start - 4);
  return at;
}

/** An upper bound of the bytes {@link writeStreamStartFrame} or {@link writeStreamEndFrame} takes. */
export function streamEdgeFrameBound(head: StreamHead, metadata: string): number {
  return 1 + 8 + 4 + 1 + 4 + 8 + 4 + 4 + (headChars(head) + metadata.length) * 3;
}

/**
 * Writes one `STREAM_START` frame: `tag, f64 ms, u32 skipped, u8 legs, u32 length, head, u32 length,
 * metadata` — the worker records `stream_start` for each leg in `legs` (bits, see legBits), in order, its
 * metadata `metadata`'s members and the leg. `metadata`: JSON text of an object without `leg`. Room for
 * {@link streamEdgeFrameBound} is the caller's job.
 */
export function writeStreamStartFrame(
  buffer: Buffer,
  at: number,
  ms: number,
  skipped: number,
  legs: number,
  head: StreamHead,
  metadata: string,
): number {
  at = writeEdgeOpening(buffer, at, STREAM_START_TAG, ms, skipped, legs);
  return writeString(buffer, writeHead(buffer, at, head, 'stream_start'), metadata);
}

/**
 * Writes one `STREAM_END` frame: `tag, f64 ms, u32 skipped, u8 leg, u32 chunks, f64 bytes, u32 length,
 * head, u32 length, metadata` — the worker records the leg's `stream_end`, its metadata `metadata`'s members
 * (JSON text of an object without `leg`, `chunks` or `bytes`; '' for none), then the leg, `chunks` and
 * `bytes`. Room for {@link streamEdgeFrameBound} is the caller's job.
 */
export function writeStreamEndFrame(
  buffer: Buffer,
  at: number,
  ms: number,
  skipped: number,
  leg: StreamLeg,
  chunks: number,
  bytes: number,
  head: StreamHead,
  metadata: string,
): number {
  at = writeEdgeOpening(buffer, at, STREAM_END_TAG, ms, skipped, LEG_BITS[leg]);
  buffer.writeUInt32LE(chunks, at);
  buffer.writeDoubleLE(bytes, at + 4);
  return writeString(buffer, writeHead(buffer, at + 12, head, 'stream_end'), metadata);
}

/** A STREAM_START or STREAM_END frame's first fields, `tag, f64 ms, u32 skipped, u8 legs`; returns their end. */
function writeEdgeOpening(
  buffer: Buffer,
  at: number,
  tag: number,
  ms: number,
  skipped: number,
  legs: number,
): number {
  buffer[at] = tag;
  buffer.writeDoubleLE(ms, at + 1);
  buffer.writeUInt32LE(skipped, at + 9);
  buffer[at + 13] = legs;
  return at + 14;
}

/** `text` as UTF-8 after its u32 length; returns where it ends. */
function writeString(buffer: Buffer, at: number, text: string): number {
  const start = at + 4;
  const end = start + buffer.write(text, start);
  buffer.writeUInt32LE(end - start, at);
  return end;
}

/** `object`'s members, then `members`, as one JSON object's text (`object`: an object's JSON text, or ''). */
function withMembers(object: string, members: string): string {
  return object === '' || object === '{}' ? `{${members}}` : `${object.slice(0, -1)},${members}}`;
}

/**
 * A line read from the frames around a stream's text (a StringPiece), which its stream redacted already:
 * the line is `before`, the text as JSON (`json`), `after`.
 */
export interface StreamedLine {
  readonly before: string;
  readonly json: string;
  /** The control characters the text holds: bit `c` set for U+000c … U+001F's `c`. */
  readonly controls: number;
  readonly after: string;
  /** The redactor of the stream the text belongs to, when not the one of the batch (a STREAM frame's). */
  readonly redactor?: Redactor;
}

/** What the worker keeps across batches to read frames: the stamps, the redactor in force, the streams. */
export interface FrameContext {
  readonly stamps: CaptureStamps;
  readonly redactor: Redactor;
  readonly streams: CaptureStreams;
}

/** What a stream's chunk lines are made of (see {@link CaptureStreams}). */
interface StreamLines {
  readonly redactor: Redactor;
  /** `,"payload":`'s prefix: the chunk events' members before it. */
  readonly head: string;
  readonly legs: readonly StreamLeg[];
}

/** One stream whose text the worker redacts, open across frames. */
interface OpenStream extends StreamLines {
  readonly text: StreamRedactor;
}

/** The legs of each bit set a `STREAM_OPEN` frame can carry (see legBits). */
const LEGS_OF_BITS: readonly (readonly StreamLeg[])[] = [0, 1, 2, 3].map((bits) =>
  (['inbound', 'outbound'] as const).filter((leg) => (bits & LEG_BITS[leg]) !== 0),
);

/**
 * The streams whose text the worker redacts, by the number the proxy gave them: each redacted as one text
 * (a secret split across chunks is caught) with the redactor in force when it opened, as the proxy would
 * have in its own thread (RequestRecorder.openStream). A stream is forgotten with its last text, or when
 * the proxy says it is gone (a gap, a stream dropped unended).
 */
export class CaptureStreams {
  private readonly open = new Map<number, OpenStream>();

  /** Streams open (for tests and the bound's sake). */
  get size(): number {
    return this.open.size;
  }

  /**
   * Takes one STREAM frame's text; returns the stream and the text now released (redacted), or undefined
   * when there is nothing to record (a gap: the stream is forgotten; a stream not known).
   */
  push(
    id: number,
    flags: number,
    legs: number,
    head: string | undefined,
    text: string,
    redactor: Redactor,
  ): { stream: StreamLines; released: string } | undefined {
    let stream = this.open.get(id);
    const last = (flags & STREAM_LAST) !== 0;
    if ((flags & STREAM_OPEN) !== 0 && stream === undefined && head !== undefined) {
      const lines = { redactor, head, legs: LEGS_OF_BITS[legs & 3]! };
      // A whole stream in one frame (its chunks came close together: see LegTap) is redacted as one text —
      // what a StreamRedactor's pushes and flush add up to (StreamRedactor) — and never held open.
      if (last && (flags & STREAM_GAP) === 0) {
        try {
          return { stream: lines, released: text === '' ? '' : redactor.redact(text) };
        } catch {
          return undefined; // As below.
        }
      }
      stream = { ...lines, text: new StreamRedactor(redactor) };
      this.open.set(id, stream);
    }
    if (stream === undefined) return undefined;
    if ((flags & STREAM_GAP) !== 0) {
      this.open.delete(id);
      return undefined;
    }
    if (last) this.open.delete(id);
    try {
      const released = text === '' ? '' : stream.text.push(text);
      return { stream, released: last ? released + stream.text.flush() : released };
    } catch {
      // Never expected; the stream's text is not recorded from here on (as after a gap).
      this.open.delete(id);
      return undefined;
    }
  }
}

/** One event's line as read from the frames: whole, or around a stream's text. Neither is redacted yet. */
export type FramedLine = string | StreamedLine;

/** The line's text, joined. */
export function lineText(line: FramedLine): string {
  return typeof line === 'string' ? line : line.before + line.json + line.after;
}

/**
 * The line redacted: all of it, or, around a stream's text, the rest — the text again only where
 * JSON-encoding it could form a secret (Redactor.jsonEncodingMayForm). A line around a stream's text comes
 * in its three parts, for the writer to write one after the other (LineQueue.push): joined, the text would
 * be copied once more.
 */
export function redactLine(line: FramedLine, batchRedactor: Redactor): string | readonly string[] {
  if (typeof line === 'string') return batchRedactor.redact(line);
  const redactor = line.redactor ?? batchRedactor;
  if (redactor.jsonEscapesMayForm(line.controls)) return redactor.redact(lineText(line));
  return [redactor.redact(line.before), line.json, redactor.redact(line.after)];
}

/**
 * The lines of the events framed in `buffer` up to `length`, in order. Each line is joined from its pieces
 * at once, into flat strings: appending piece by piece would make a rope that every later step (the
 * redaction's scan, the file's batch) would have to flatten again. A line with a stream's text is read
 * around the first such piece (see StreamedLine).
 */
export function readEventFrames(
  buffer: Buffer,
  length: number,
  pieces = new PieceCache(),
  context?: FrameContext,
): FramedLine[] {
  const lines: FramedLine[] = [];
  let parts: string[] = [];
  let streamed: { before: string; json: string; controls: number } | undefined;
  let at = 0;
  while (at < length) {
    const tag = buffer[at];
    if (tag === STAMP) {
      if (context === undefined) throw new Error('capture frame of unknown type 7');
      context.stamps.skip(buffer.readUInt32LE(at + 9));
      parts.push(context.stamps.openingAt(buffer.readDoubleLE(at + 1)));
      at += STAMP_BYTES;
      continue;
    }
    if (tag === STREAM) {
      if (context === undefined) throw new Error('capture frame of unknown type 8');
      at = readStreamFrame(buffer, at, pieces, context, lines);
      continue;
    }
    if (tag === STREAM_START_TAG || tag === STREAM_END_TAG) {
      if (context === undefined) throw new Error(`capture frame of unknown type ${tag}`);
      at = readStreamEdgeFrame(buffer, at, context, lines);
      continue;
    }
    if (tag === END) {
      const rest = parts.length === 1 ? parts[0]! : parts.join('');
      lines.push(streamed === undefined ? rest : { ...streamed, after: rest });
      parts = [];
      streamed = undefined;
      at++;
      continue;
    }
    const start = at + HEADER;
    const end = start + buffer.readUInt32LE(at + 1);
    if (tag === TEXT) parts.push(buffer.toString('utf8', start, end));
    else if (tag === JSON_TEXT || tag === STRING) {
      parts.push(pieces.text(buffer.subarray(start, end), tag === STRING ? 'string' : 'json'));
    } else if (tag === STREAMED) {
      const piece = pieces.streamed(buffer.subarray(start, end));
      if (streamed === undefined) {
        streamed = { before: parts.join(''), ...piece };
        parts = [];
      } else parts.push(piece.json);
    } else throw new Error(`capture frame of unknown type ${tag}`);
    at = end;
  }
  return lines;
}

/** Reads the STREAM frame at `at` into the lines it releases (none, or one per leg); returns where it ends. */
function readStreamFrame(
  buffer: Buffer,
  at: number,
  pieces: PieceCache,
  context: FrameContext,
  lines: FramedLine[],
): number {
  const id = buffer.readUInt32LE(at + 1);
  const ms = buffer.readDoubleLE(at + 5);
  const chunk = buffer.readUInt32LE(at + 17);
  const flags = buffer[at + 21]!;
  context.stamps.skip(buffer.readUInt32LE(at + 13));
  at += 22;
  let legs = 0;
  let head: string | undefined;
  if ((flags & STREAM_OPEN) !== 0) {
    legs = buffer[at]!;
    const start = at + 5;
    at = start + buffer.readUInt32LE(at + 1);
    head = buffer.toString('utf8', start, at);
  }
  const start = at + 4;
  const end = start + buffer.readUInt32LE(at);
  const text = textOfBytes(buffer, start, end, isAscii(buffer.subarray(start, end)));
  const pushed = context.streams.push(id, flags, legs, head, text, context.redactor);
  if (pushed === undefined || pushed.released === '') return end;
  const { stream, released } = pushed;
  // Most often the text comes out as it went in (no secret, nothing held back): its bytes are at hand.
  const piece = pieces.streamed(released === text ? buffer.subarray(start, end) : utf8Of(released));
  for (const leg of stream.legs) {
    lines.push({
      before: `${context.stamps.openingAt(ms)},${stream.head},"payload":`,
      ...piece,
      after: `,"metadata":{"leg":"${leg}","chunk":${chunk}}}\n`,
      redactor: stream.redactor,
    });
  }
  return end;
}

/**
 * Reads the STREAM_START or STREAM_END frame at `at` into its lines (one per leg; one), not yet redacted;
 * returns where it ends.
 */
function readStreamEdgeFrame(buffer: Buffer, at: number, context: FrameContext, lines: FramedLine[]): number {
  const start = buffer[at] === STREAM_START_TAG;
  const ms = buffer.readDoubleLE(at + 1);
  context.stamps.skip(buffer.readUInt32LE(at + 9));
  const legs = buffer[at + 13]!;
  let counts = '';
  if (start) at += 14;
  else {
    counts = `,"chunks":${buffer.readUInt32LE(at + 14)},"bytes":${buffer.readDoubleLE(at + 18)}`;
    at += 26;
  }
  const headEnd = at + 4 + buffer.readUInt32LE(at);
  const head = buffer.toString('utf8', at + 4, headEnd);
  const end = headEnd + 4 + buffer.readUInt32LE(headEnd);
  const metadata = buffer.toString('utf8', headEnd + 4, end);
  for (const leg of LEGS_OF_BITS[legs & 3]!) {
    const own = withMembers(metadata, `"leg":"${leg}"${counts}`);
    lines.push(`${context.stamps.openingAt(ms)},${head},"metadata":${own}}\n`);
  }
  return end;
}

/** Where utf8Of writes: grown for a longer text, up to ESCAPED_KEPT_BYTES. */
let encoded = Buffer.allocUnsafeSlow(16 * 1024);

/** The UTF-8 of `text`, in a scratch buffer valid until the next call (lone surrogates as buffer.write has them). */
function utf8Of(text: string): Buffer {
  const bound = text.length * 3;
  if (encoded.length < bound && bound <= ESCAPED_KEPT_BYTES) encoded = Buffer.allocUnsafeSlow(bound);
  const out = encoded.length >= bound ? encoded : Buffer.allocUnsafe(bound);
  return out.subarray(0, out.write(text));
}

/** Pieces longer than this are not kept by PieceCache. */
const CACHED_PIECE_BYTES = 64 * 1024;
const CACHED_PIECES = 4;

/**
 * The JSON text of the last few encoded pieces read: a body passed on unchanged comes twice (as received
 * and as sent), and is decoded and encoded once. Pieces are compared by their bytes.
 */
export class PieceCache {
  private readonly entries: { bytes: Buffer; as: PieceKind; text: string; controls: number }[] = [];

  /** An encoded piece's JSON text. */
  text(bytes: Buffer, as: EncodedPiece['as']): string {
    return this.entry(bytes, as).text;
  }

  /** A stream's text (a StringPiece's bytes) as JSON, and the control characters it holds. */
  streamed(bytes: Buffer): { json: string; controls: number } {
    const entry = this.entry(bytes, 'streamed');
    return { json: entry.text, controls: entry.controls };
  }

  private entry(bytes: Buffer, as: PieceKind): { text: string; controls: number } {
    for (const entry of this.entries) {
      if (entry.as === as && entry.bytes.equals(bytes)) return entry;
    }
    let controls = 0;
    let text: string;
    if (as === 'streamed') ({ json: text, controls } = jsonStringOfUtf8(bytes));
    else text = encodedText({ utf8: bytes, as });
    const entry = { bytes, as, text, controls };
    if (bytes.length <= CACHED_PIECE_BYTES) {
      // A copy: `bytes` is a view of a buffer that is filled again.
      this.entries.unshift({ ...entry, bytes: Buffer.from(bytes) });
      if (this.entries.length > CACHED_PIECES) this.entries.pop();
    }
    return entry;
  }
}

type PieceKind = EncodedPiece['as'] | 'streamed';

/**
 * Per byte: 0 when JSON writes it as it is, else the letter of its two-character escape (`\"`, `\\`, `\b`,
 * `\f`, `\n`, `\r`, `\t`), or 1 for `\u00XX` (the other control characters).
 */
const ESCAPES = new Uint8Array(256);
for (let code = 0; code < 0x20; code++) ESCAPES[code] = 1;
for (const [code, letter] of [
  [0x22, '"'],
  [0x5c, '\\'],
  [0x08, 'b'],
  [0x0c, 'f'],
  [0x0a, 'n'],
  [0x0d, 'r'],
  [0x09, 't'],
] as const) {
  ESCAPES[code] = letter.charCodeAt(0);
}
const HEX = Buffer.from('0123456789abcdef');
/**
 * The text `buffer` holds from `start` to `end` as UTF-8; `ascii`: its bytes are all ASCII (node's
 * `isAscii`, a vector scan), which are then read as Latin-1 — the same characters, copied without UTF-8's
 * decoding (a stream's text, the worker's most: docs/performance.md, "The capture instance on two cores").
 */
function textOfBytes(buffer: Buffer, start: number, end: number, ascii: boolean): string {
  return buffer.toString(ascii ? 'latin1' : 'utf8', start, end);
}

/** Where jsonStringOfUtf8 writes: grown for a longer text, up to ESCAPED_KEPT_BYTES. */
let escaped = Buffer.allocUnsafeSlow(64 * 1024);
const ESCAPED_KEPT_BYTES = 1024 * 1024;

/**
 * The JSON string of the text that `utf8` encodes — what `JSON.stringify` writes for it, bytes beyond ASCII
 * copied as they are — and the control characters it holds (bit `c` for U+000c … U+001F's `c`). Escaped byte
 * by byte: a stream's text is mostly quotes and plain characters, which `JSON.stringify` takes longer over.
 * The bytes are valid UTF-8 (written from a string by the proxy), so they hold no lone surrogate to escape.
 */
export function jsonStringOfUtf8(utf8: Uint8Array): { json: string; controls: number } {
  const bound = utf8.length * 6 + 2;
  if (escaped.length < bound && bound <= ESCAPED_KEPT_BYTES) escaped = Buffer.allocUnsafeSlow(bound);
  const out = escaped.length >= bound ? escaped : Buffer.allocUnsafe(bound);
  let at = 0;
  let controls = 0;
  out[at++] = 0x22;
  for (let i = 0; i < utf8.length; i++) {
    const byte = utf8[i]!;
    const escape = ESCAPES[byte]!;
    if (escape === 0) {
      out[at++] = byte;
      continue;
    }
    if (byte < 0x20) controls |= 1 << byte;
    out[at++] = 0x5c;
    if (escape !== 1) {
      out[at++] = escape;
      continue;
    }
    out[at++] = 0x75; // u00XX
    out[at++] = 0x30;
    out[at++] = 0x30;
    out[at++] = HEX[byte >> 4]!;
    out[at++] = HEX[byte & 15]!;
  }
  out[at++] = 0x22;
  return { json: textOfBytes(out, 0, at, isAscii(utf8)), controls };
}
