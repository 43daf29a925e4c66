/**
 * Token counts of text, by the `cl100k_base` vocabulary of `gpt-tokenizer` (shipped in the package: no
 * network, ever). Why this library and vocabulary, with the measurements, is in docs/token-counting.md.
 *
 * Exact up to EXACT_CHARS; past that the count is extrapolated from SAMPLES evenly spaced windows of the
 * text, cut at spaces, so that a 100k-token request costs about as much as a 4 KB one (BPE runs at a few
 * MB/s: counting 400 KB exactly would take ~100 ms). The vocabulary (~40 MB once loaded) is loaded on the
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

/** `exact` for short texts; for long ones, SAMPLES windows counted exactly and scaled by length. */
export function sampledCounter(exact: TextCounter): TextCounter {
  return (text) => {
    if (text.length <= EXACT_CHARS) return exact(text);
    const step = text.length / SAMPLES;
    let sampledChars = 0;
    let sampledTokens = 0;
    for (let i = 0; i < SAMPLES; i++) {
      let start = Math.floor(i * step);
      const space = text.indexOf(' ', start);
      if (space >= 0 && space - start < SNAP) start = space;
      let end = Math.min(text.length, start + WINDOW);
      const lastSpace = text.lastIndexOf(' ', end);
      if (lastSpace > start + WINDOW / 2) end = lastSpace;
      sampledChars += end - start;
      sampledTokens += exact(text.slice(start, end));
    }
    return Math.round(sampledTokens * (text.length / sampledChars));
  };
}
