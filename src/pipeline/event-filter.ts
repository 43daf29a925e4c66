import { MAX_SSE_LINE_BYTES } from '../protocols/sse.js';
import {
  isJsonValue,
  jsonLineEnd,
  lineMayHoldErrorMark,
  lineMayHoldToolMark,
} from '../protocols/json-scan.js';

const LF = 0x0a;
const CR = 0x0d;
const LFLF = Buffer.from('\n\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');
const DONE = Buffer.from('[DONE]');
const NEWLINE = Buffer.from('\n');

/** Told how many events of a request's stream were dropped (the metric, and one log line per request). */
export type DroppedEvents = (requestId: string, backendName: string, count: number) => void;

/** Counts dropped events into `counter` (the metric) and logs each stream's count, once per request. */
export function droppedEventsLog(
  counter: { invalidEventsDropped: number },
  log: { warn?(obj: object, msg: string): void; error(obj: object, msg: string): void },
): DroppedEvents {
  return (requestId, backendName, count) => {
    counter.invalidEventsDropped += count;
    const warn = log.warn ?? log.error;
    warn.call(
      log,
      { request_id: requestId, backend: backendName, dropped: count },
      'backend stream events that are not JSON were dropped',
    );
  };
}

/**
 * Drops a backend's stream events whose data is not JSON (README, Routes and failover): such an event would
 * break the client's SDK mid-answer. Checked on the bytes as they pass through in the client's protocol —
 * nothing decoded, nothing parsed into objects (`isJsonValue`), so a stream of good events costs a scan of
 * its data and no copy: a chunk of whole events that are all JSON is passed on as the same buffer. An event
 * cut by a chunk's end is held until its blank line arrives; `[DONE]`, comments and events without data
 * pass as they are. An event that grows past the line bound (`MAX_SSE_LINE_BYTES`) sets `oversized`: the
 * caller ends the stream, as a translated stream ends at that bound.
 */
export class EventCheck {
  /** Events left out so far. */
  dropped = 0;
  /** An event grew past the bound without ending. */
  oversized = false;
  /**
   * The events the last `push` returned are known not to hold the bytes `"error"`, but as a member
   * `"error": null`: each was one data line of JSON whose scan found no string that can make them
   * (`lineMayHoldErrorMark`), after an `event:` line without a quote. The error-event guard, which passes
   * `"error": null` too, then has no search to make (`ErrorEventGuard.see`).
   */
  markFree = false;
  /**
   * The events the last `push` returned are known not to hold a tool call's marker (any protocol's:
   * `lineMayHoldToolMark`), by the same one-pass reading as `markFree`: the dangerous-command guard's tap
   * then has no search to make (`ToolCallTap.see`).
   */
  toolFree = false;
  /** The start of an event whose blank line has not arrived, as it came (joined once it is complete). */
  private held: Buffer[] = [];
  private heldLength = 0;

  /** The complete events of what has arrived so far, bad ones left out; null when none is complete. */
  push(chunk: Buffer): Buffer | null {
    this.markFree = false;
    this.toolFree = false;
    let cut = lastEventEnd(chunk);
    if (this.heldLength > 0 && cut < 0) cut = this.endAcross(chunk);
    if (cut < 0) {
      // Kept as it came: an event arriving in many chunks costs one copy, when it ends.
      if (this.heldLength + chunk.length > MAX_SSE_LINE_BYTES) {
        this.oversized = true;
        this.held = [];
        this.heldLength = 0;
        return null;
      }
      this.held.push(Buffer.from(chunk));
      this.heldLength += chunk.length;
      return null;
    }
    let events = cut === chunk.length ? chunk : chunk.subarray(0, cut);
    if (this.heldLength > 0) {
      events = Buffer.concat([...this.held, events]);
      this.held = [];
      this.heldLength = 0;
    }
    if (cut < chunk.length) {
      // Copied: the part held must not pin (or depend on) the buffer it came in.
      this.held.push(Buffer.from(chunk.subarray(cut)));
      this.heldLength = chunk.length - cut;
    }
    return this.keep(events);
  }

  /** What is left when the stream ends: a last event without its blank line is checked the same way. */
  end(): Buffer | null {
    this.markFree = false;
    this.toolFree = false;
    if (this.heldLength === 0) return null;
    const rest = Buffer.concat(this.held);
    this.held = [];
    this.heldLength = 0;
    return this.keep(rest);
  }

  /** Where in `chunk` an event ends whose blank line began in what is held (-1: none). */
  private endAcross(chunk: Buffer): number {
    const tail: number[] = [];
    for (let i = this.held.length - 1; i >= 0 && tail.length < 3; i--) {
      const part = this.held[i]!;
      for (let k = part.length - 1; k >= 0 && tail.length < 3; k--) tail.unshift(part[k]!);
    }
    const joint = Buffer.from([...tail, ...chunk.subarray(0, 3)]);
    const end = lastEventEnd(joint);
    return end > tail.length ? end - tail.length : -1;
  }

  /** `events` as they are when every one passes; else a copy without the ones that do not. */
  private keep(events: Buffer): Buffer | null {
    let kept: Buffer[] | null = null;
    let start = 0;
    let from = 0;
    let markFree = true;
    let toolFree = true;
    const n = events.length;
    while (start < n) {
      // An event that is one line of JSON data, as nearly every one is: checked in the one pass that finds
      // its end. Any other is looked at line by line.
      const single = singleDataEventEnd(events, start);
      if (single > 0) {
        if (eventMayHoldMark) markFree = false;
        if (eventMayHoldToolMark) toolFree = false;
        start = single;
        continue;
      }
      markFree = false;
      toolFree = false;
      const end = eventEnd(events, start);
      if (!validEvent(events, start, end)) {
        this.dropped += 1;
        kept ??= [];
        if (start > from) kept.push(events.subarray(from, start));
        from = end;
      }
      start = end;
    }
    this.markFree = markFree;
    this.toolFree = toolFree;
    if (kept === null) return events;
    if (n > from) kept.push(events.subarray(from, n));
    return kept.length === 0 ? null : Buffer.concat(kept);
  }
}

/** Where the last complete event of `bytes` ends (after its blank line); -1 when none is complete. */
function lastEventEnd(bytes: Buffer): number {
  const n = bytes.length;
  // The common case: a chunk of whole events.
  if (n >= 2 && bytes[n - 1] === LF && (bytes[n - 2] === LF || (bytes[n - 2] === CR && bytes[n - 3] === LF)))
    return n;
  const lf = bytes.lastIndexOf(LFLF);
  const crlf = bytes.lastIndexOf(CRLFCRLF);
  // Each end only where it was found: a blank line in a chunk's first bytes must not lose to a CRLF one
  // that is not there (-1 + 4).
  return Math.max(lf < 0 ? -1 : lf + 2, crlf < 0 ? -1 : crlf + 4);
}

/** The end of the event starting at `start` (after its blank line), or the end of `bytes`. */
function eventEnd(bytes: Buffer, start: number): number {
  let i = start;
  for (;;) {
    const lf = bytes.indexOf(LF, i);
    if (lf < 0) return bytes.length;
    const next = bytes[lf + 1];
    if (next === LF) return lf + 2;
    if (next === CR && bytes[lf + 2] === LF) return lf + 3;
    i = lf + 1;
  }
}

/**
 * The end of the event at `start` (after its blank line) when it is one `data:` line whose data is JSON or
 * `[DONE]`, after an `event:` line or not, as `validEvent` would pass it; -1 for any other event (then
 * `eventEnd` and `validEvent` decide). The data's scan stops at the line's end (`jsonLineEnd`): no search
 * for the line's or the event's end before it.
 */
function singleDataEventEnd(bytes: Buffer, start: number): number {
  let line = start;
  eventMayHoldMark = false;
  eventMayHoldToolMark = false;
  if (isEventField(bytes, line)) {
    // The event's name: a short line, read to its end here.
    const limit = Math.min(bytes.length, line + EVENT_LINE_BYTES);
    let i = line + 6;
    for (; i < limit; i++) {
      const c = bytes[i];
      if (c === LF) break;
      if (c === QUOTE) {
        eventMayHoldMark = true;
        eventMayHoldToolMark = true;
      }
    }
    if (i === limit) return -1;
    line = i + 1;
  }
  if (!isDataField(bytes, line)) return -1;
  const at = bytes[line + 5] === 0x20 ? line + 6 : line + 5;
  let lf: number;
  if (isDone(bytes, at)) lf = at + DONE.length;
  else {
    lf = jsonLineEnd(bytes, at);
    if (lineMayHoldErrorMark()) eventMayHoldMark = true;
    if (lineMayHoldToolMark()) eventMayHoldToolMark = true;
  }
  if (lf < 0) return -1;
  if (bytes[lf] === CR) lf++;
  if (bytes[lf] !== LF) return -1;
  const next = bytes[lf + 1];
  if (next === LF) return lf + 2;
  if (next === CR && bytes[lf + 2] === LF) return lf + 3;
  return -1;
}

/** Set by `singleDataEventEnd`: the event it passed may hold the bytes `"error"` (`EventCheck.markFree`). */
let eventMayHoldMark = false;
/** Set by `singleDataEventEnd`: the event it passed may hold a tool call's marker (`EventCheck.toolFree`). */
let eventMayHoldToolMark = false;
const QUOTE = 0x22;

/** The longest `event:` line `singleDataEventEnd` reads to its end (a longer one is read by `eventEnd`). */
const EVENT_LINE_BYTES = 128;

/** `event:` at `i`. */
function isEventField(b: Buffer, i: number): boolean {
  return (
    b[i] === 0x65 &&
    b[i + 1] === 0x76 &&
    b[i + 2] === 0x65 &&
    b[i + 3] === 0x6e &&
    b[i + 4] === 0x74 &&
    b[i + 5] === 0x3a
  );
}

/** `[DONE]` at `i`. */
function isDone(b: Buffer, i: number): boolean {
  for (let k = 0; k < DONE.length; k++) if (b[i + k] !== DONE[k]) return false;
  return true;
}

/** `data:` at `i`. */
function isDataField(b: Buffer, i: number): boolean {
  return b[i] === 0x64 && b[i + 1] === 0x61 && b[i + 2] === 0x74 && b[i + 3] === 0x61 && b[i + 4] === 0x3a;
}

/** Whether the event in [start, end) has no data, or data that is JSON or `[DONE]`. */
function validEvent(bytes: Buffer, start: number, end: number): boolean {
  // The data's range in `bytes` (one data line, the common case), or its lines joined (several).
  let from = -1;
  let to = -1;
  let parts: Buffer[] | null = null;
  let i = start;
  while (i < end) {
    let lineEnd = bytes.indexOf(LF, i);
    if (lineEnd < 0 || lineEnd > end) lineEnd = end;
    const next = lineEnd + 1;
    if (lineEnd > i && bytes[lineEnd - 1] === CR) lineEnd--;
    if (lineEnd - i >= 5 && isDataField(bytes, i)) {
      let at = i + 5;
      if (bytes[at] === 0x20) at++;
      if (from < 0) {
        from = at;
        to = lineEnd;
      } else (parts ??= [bytes.subarray(from, to)]).push(NEWLINE, bytes.subarray(at, lineEnd));
    }
    i = next;
  }
  if (from < 0) return true;
  if (parts !== null) {
    const joined = Buffer.concat(parts);
    return joined.equals(DONE) || isJsonValue(joined);
  }
  if (to - from === DONE.length && bytes.compare(DONE, 0, DONE.length, from, to) === 0) return true;
  return isJsonValue(bytes, from, to);
}
