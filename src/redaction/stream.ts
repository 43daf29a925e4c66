import type { Redactor } from './redactor.js';

/** Longest match a stream holds back whole before releasing it early (a "token" this long is no key). */
const DEFAULT_MAX_HOLD = 64 * 1024;
/**
 * A match ending this close to the end of the buffered text may still grow (a greedy run, or an escape
 * sequence `\"` cut after its backslash).
 */
const TOUCHING_SLACK = 2;

/**
 * Redacts text that arrives in chunks so that a secret split across chunks is still redacted: the
 * concatenated output equals `redactor.redact(wholeText)`.
 *
 * Each `push` releases the part of the text that can no longer change: it holds back the last
 * `redactor.holdback` characters (enough to decide any match that could start there) and any match that
 * reaches the end of the buffer (a greedy run that the next chunk may extend), up to `maxHold` characters;
 * a longer match is released as its mask, and the rest of its run is dropped as it arrives.
 * `flush()` releases the remainder at the end of the stream.
 */
export class StreamRedactor {
  private carry = '';
  /** The last character already released, for the rules' "not preceded by a word character" checks. */
  private context = '';
  /** After a match was released early: the characters that continue it, dropped until the run ends. */
  private swallow: RegExp | undefined;

  constructor(
    private readonly redactor: Redactor,
    private readonly maxHold = DEFAULT_MAX_HOLD,
  ) {}

  /** Returns the redacted text that is now safe to release (possibly empty). */
  push(chunk: string): string {
    let text = chunk;
    if (this.swallow !== undefined) {
      const run = this.swallow;
      run.lastIndex = 0;
      run.test(text);
      const consumed = run.lastIndex;
      if (consumed > 0) this.context = text.charAt(consumed - 1);
      if (consumed === text.length) return '';
      this.swallow = undefined;
      text = text.slice(consumed);
    }
    return this.release(this.context + this.carry + text, false);
  }

  /** Releases everything held back; the redactor can then be reused for a new stream. */
  flush(): string {
    const out = this.carry === '' ? '' : this.release(this.context + this.carry, true);
    this.carry = '';
    this.context = '';
    this.swallow = undefined;
    return out;
  }

  private release(buffer: string, final: boolean): string {
    const start = this.context.length;
    const length = buffer.length;
    const undecidedFrom = length - this.redactor.holdback;
    let out = '';
    let pos = start;
    let cut = -1;
    for (const match of this.redactor.scan(buffer, start)) {
      if (!final) {
        if (match.start >= undecidedFrom) break;
        if (match.end + TOUCHING_SLACK > length) {
          if (length - match.start <= this.maxHold) {
            cut = match.start;
            break;
          }
          // Released early as its mask; if it runs to the very end, what follows may continue it.
          if (match.end === length) this.swallow = match.continuation;
        }
      }
      out += buffer.slice(pos, match.start) + match.mask;
      pos = match.end;
    }
    if (final) cut = length;
    else if (cut === -1) cut = Math.max(pos, undecidedFrom);
    out += buffer.slice(pos, cut);
    if (cut > start) this.context = buffer.charAt(cut - 1);
    this.carry = buffer.slice(cut);
    return out;
  }
}
