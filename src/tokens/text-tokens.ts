/**
 * Token counts of text, by the `cl100k_base` vocabulary of `gpt-tokenizer` (shipped in the package: no
 * network, ever). Why this library and vocabulary, with the measurements, is in docs/token-counting.md.
 *
 * Exact up to EXACT_CHARS; past that the count is extrapolated from SAMPLES evenly spaced windows of the
 * text, cut at spaces, so that a 100k-token request costs about as much as a 4 KB one (BPE runs at a few
 * MB/s: counting 400 KB exactly would take ~100 ms). The windows' tokens are scaled by the text's `pieces`
 * over theirs rather than by length (docs/token-counting.md). The vocabulary (~40 MB once loaded) is loaded on the
 * first count, not at startup: a proxy that never counts never pays for it.
 */

/** Up to this many characters, the count is exact. */
export const EXACT_CHARS = 4096;
/** Past it, this many windows of EXACT_CHARS / SAMPLES characters are counted and scaled up. */
const SAMPLES = 16;
const WINDOW = EXACT_CHARS / SAMPLES;
/** How far a window's edges move to meet a space, at most. */
const SNAP = 32;

/** Counts the tokens of one text. */
export type TextCounter = (text: string) => number;

/** Special-token markers in a prompt are text like any other, never a reason to throw. */
const AS_TEXT = { disallowedSpecial: new Set<string>() };

let loading: Promise<TextCounter> | undefined;

/** The counter, its vocabulary loaded once (concurrent first callers share one load). */
export function textCounter(): Promise<TextCounter> {
  loading ??= import('gpt-tokenizer/encoding/cl100k_base').then(({ countTokens }) =>
    sampledCounter((text) => countTokens(text, AS_TEXT)),
  );
  return loading;
}

/**
 * A cheap stand-in for a text's token count, in one pass over its characters: a run of letters is one piece
 * (and one more per six letters), a run of digits one per three (BPE vocabularies split numbers so), a line
 * break one per run, a space none (it joins the word after it), any other character one. Tokens per piece
 * vary far less between prose, tables and code than tokens per character do.
 */
export function pieces(text: string, start = 0, end = text.length): number {
  let count = 0;
  let letters = 0;
  let digits = 0;
  let newline = false;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if ((c | 32) >= 97 && (c | 32) <= 122) {
      if (digits !== 0) count += Math.ceil(digits / 3);
      digits = 0;
      letters++;
      newline = false;
      continue;
    }
    if (c >= 48 && c <= 57) {
      if (letters !== 0) count += 1 + Math.floor(letters / 6);
      letters = 0;
      digits++;
      newline = false;
      continue;
    }
    if (letters !== 0) count += 1 + Math.floor(letters / 6);
    if (digits !== 0) count += Math.ceil(digits / 3);
    letters = 0;
    digits = 0;
    if (c === 32) {
      newline = false;
    } else if (c === 10) {
      if (!newline) count++;
      newline = true;
    } else {
      count++;
      newline = false;
    }
  }
  if (letters !== 0) count += 1 + Math.floor(letters / 6);
  if (digits !== 0) count += Math.ceil(digits / 3);
  return count;
}

/**
 * `exact` for short texts; for long ones, SAMPLES windows counted exactly and scaled to the whole text by
 * `pieces` (a ratio estimate: a window that falls on a table of numbers has more tokens per character than
 * prose, and more pieces too). Measured on this repository's docs and code (docs/token-counting.md): the
 * worst text's error 20 % scaled by length, 5.5 % by pieces.
 */
export function sampledCounter(exact: TextCounter): TextCounter {
  return (text) => {
    if (text.length <= EXACT_CHARS) return exact(text);
    const step = text.length / SAMPLES;
    let sampledChars = 0;
    let sampledPieces = 0;
    let sampledTokens = 0;
    for (let i = 0; i < SAMPLES; i++) {
      let start = Math.floor(i * step);
      const space = text.indexOf(' ', start);
      if (space >= 0 && space - start < SNAP) start = space;
      let end = Math.min(text.length, start + WINDOW);
      const lastSpace = text.lastIndexOf(' ', end);
      if (lastSpace > start + WINDOW / 2) end = lastSpace;
      sampledChars += end - start;
      sampledPieces += pieces(text, start, end);
      sampledTokens += exact(text.slice(start, end));
    }
    // Windows of spaces alone have no pieces: then by length.
    const scale = sampledPieces > 0 ? pieces(text) / sampledPieces : text.length / sampledChars;
    return Math.round(sampledTokens * scale);
  };
}
