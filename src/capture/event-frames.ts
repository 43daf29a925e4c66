import type { Redactor } from '../redaction/redactor.js';
import { encodedText, type EncodedPiece, type EventPiece } from './events.js';

/**
 * How recorded events cross to the capture worker: frames in a byte buffer, so that the request path only
 * copies bytes. A `TEXT` frame is JSON text as UTF-8; `JSON` and `STRING` frames are an event's encoded
 * pieces (EncodedPiece), `STREAMED` a StringPiece (a stream's text, redacted already), made JSON text by the
 * worker; `END` closes one event's line. The other frames are `tag, u32 little-endian length, bytes`.
 */
const TEXT = 1;
const JSON_TEXT = 2;
const STRING = 3;
const END = 4;
const STREAMED = 6;
const HEADER = 5;
const COMMA = 0x2c;
const CLOSING = 0x7d; // }
const NEWLINE = 0x0a;

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
 * Writes one event — `{` stamps `,` members `}` and a newline — as frames at `at` (room for
 * {@link eventFramesBound} bytes is the caller's job); returns where they end.
 */
export function writeEventFrames(
  buffer: Buffer,
  at: number,
  opening: string,
  members: readonly EventPiece[],
): number {
  // `text`: where the open TEXT frame's length goes, or -1 when none is open.
  buffer[at] = TEXT;
  let text = at + 1;
  at += HEADER;
  at += buffer.write(opening, at);
  if (members.length > 0) buffer[at++] = COMMA;
  for (const piece of members) {
    if (typeof piece === 'string') {
      if (text < 0) {
        buffer[at] = TEXT;
        text = at + 1;
        at += HEADER;
      }
      at += buffer.write(piece, at);
      continue;
    }
    if (text >= 0) buffer.writeUInt32LE(at - text - 4, text);
    text = -1;
    if ('text' in piece) {
      buffer[at] = STREAMED;
      const start = at + HEADER;
      at = start + buffer.write(piece.text, start);
      buffer.writeUInt32LE(at - start, start - 4);
      continue;
    }
    buffer[at] = piece.as === 'json' ? JSON_TEXT : STRING;
    buffer.writeUInt32LE(piece.utf8.byteLength, at + 1);
    buffer.set(piece.utf8, at + HEADER);
    at += HEADER + piece.utf8.byteLength;
  }
  if (text < 0) {
    buffer[at] = TEXT;
    text = at + 1;
    at += HEADER;
  }
  buffer[at++] = CLOSING;
  buffer[at++] = NEWLINE;
  buffer.writeUInt32LE(at - text - 4, text);
  buffer[at++] = END;
  return at;
}

/**
 * A line read from the frames around a stream's text (a StringPiece), which its stream redacted already:
 * the line is `before`, the text as JSON (`json`), `after`.
 */
export interface StreamedLine {
  readonly before: string;
  /** The stream's text, decoded. */
  readonly text: string;
  readonly json: string;
  readonly after: string;
}

/** One event's line as read from the frames: whole, or around a stream's text. Neither is redacted yet. */
export type FramedLine = string | StreamedLine;

/** The line's text, joined. */
export function lineText(line: FramedLine): string {
  return typeof line === 'string' ? line : line.before + line.json + line.after;
}

/**
 * The line redacted: all of it, or, around a stream's text, the rest — the text again only where
 * JSON-encoding it could form a secret (Redactor.jsonEncodingMayForm).
 */
export function redactLine(line: FramedLine, redactor: Redactor): string {
  if (typeof line === 'string') return redactor.redact(line);
  if (redactor.jsonEncodingMayForm(line.text)) return redactor.redact(lineText(line));
  return redactor.redact(line.before) + line.json + redactor.redact(line.after);
}

/**
 * The lines of the events framed in `buffer` up to `length`, in order. Each line is joined from its pieces
 * at once, into flat strings: appending piece by piece would make a rope that every later step (the
 * redaction's scan, the file's batch) would have to flatten again. A line with a stream's text is read
 * around the first such piece (see StreamedLine).
 */
export function readEventFrames(buffer: Buffer, length: number, pieces = new PieceCache()): FramedLine[] {
  const lines: FramedLine[] = [];
  let parts: string[] = [];
  let streamed: { before: string; text: string; json: string } | undefined;
  let at = 0;
  while (at < length) {
    const tag = buffer[at];
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

/** Pieces longer than this are not kept by PieceCache. */
const CACHED_PIECE_BYTES = 64 * 1024;
const CACHED_PIECES = 4;

/**
 * The JSON text of the last few encoded pieces read: a body passed on unchanged comes twice (as received
 * and as sent), and is decoded and encoded once. Pieces are compared by their bytes.
 */
export class PieceCache {
  private readonly entries: { bytes: Buffer; as: PieceKind; text: string; raw: string }[] = [];

  /** An encoded piece's JSON text. */
  text(bytes: Buffer, as: EncodedPiece['as']): string {
    return this.entry(bytes, as).text;
  }

  /** A stream's text (a StringPiece's bytes): decoded, and as JSON. */
  streamed(bytes: Buffer): { text: string; json: string } {
    const entry = this.entry(bytes, 'streamed');
    return { text: entry.raw, json: entry.text };
  }

  private entry(bytes: Buffer, as: PieceKind): { text: string; raw: string } {
    for (const entry of this.entries) {
      if (entry.as === as && entry.bytes.equals(bytes)) return entry;
    }
    let raw = '';
    let text: string;
    if (as === 'streamed') {
      raw = bytes.toString('utf8');
      text = JSON.stringify(raw);
    } else text = encodedText({ utf8: bytes, as });
    const entry = { bytes, as, text, raw };
    if (bytes.length <= CACHED_PIECE_BYTES) {
      // A copy: `bytes` is a view of a buffer that is filled again.
      this.entries.unshift({ ...entry, bytes: Buffer.from(bytes) });
      if (this.entries.length > CACHED_PIECES) this.entries.pop();
    }
    return entry;
  }
}

type PieceKind = EncodedPiece['as'] | 'streamed';
