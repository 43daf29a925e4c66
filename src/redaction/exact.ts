import { escapeRegExp } from './patterns.js';

/** Longest prefix of a needle the finder's regular expression holds (shorter when every needle is shorter). */
const MAX_PREFIX = 16;

/** One occurrence found by {@link ExactMatcher.find}. */
export interface ExactHit {
  readonly start: number;
  /** The needle found (the longest one starting at `start`). */
  readonly needle: string;
}

/**
 * Finds exact strings in text — leftmost first, and of those starting there the longest — without a regular
 * expression of the strings themselves (V8 refuses a literal of some 32 K characters, so one regex of every
 * secret broke on a single long key, with the secret in its error message).
 *
 * Every needle is indexed by its first `k` characters (k = the shortest needle's length, at most 16): one
 * small regular expression, an alternation of those distinct prefixes, finds the candidate positions at
 * V8's regex speed, and a map from prefix to needles (longest first) confirms each with `startsWith`. The
 * regex grows with the number of needles, never with their length.
 */
export class ExactMatcher {
  private readonly k: number;
  private readonly finder: RegExp;
  private readonly byPrefix: ReadonlyMap<string, readonly string[]>;

  /** `needles`: non-empty strings (empty ones are ignored); an empty list matches nothing. */
  private constructor(needles: readonly string[]) {
    const unique = [...new Set(needles)].filter((n) => n.length > 0).sort((a, b) => b.length - a.length);
    this.k = Math.min(MAX_PREFIX, unique.at(-1)?.length ?? MAX_PREFIX);
    const byPrefix = new Map<string, string[]>();
    for (const needle of unique) {
      const prefix = needle.slice(0, this.k);
      const list = byPrefix.get(prefix);
      if (list) list.push(needle);
      else byPrefix.set(prefix, [needle]);
    }
    this.byPrefix = byPrefix;
    this.finder = new RegExp([...byPrefix.keys()].map(escapeRegExp).join('|'), 'g');
  }

  /** A matcher of `needles`, or undefined when there is none to match. */
  static of(needles: readonly string[]): ExactMatcher | undefined {
    return needles.some((n) => n.length > 0) ? new ExactMatcher(needles) : undefined;
  }

  /** The leftmost occurrence at or after `from` (the longest needle there), or null. */
  find(text: string, from: number): ExactHit | null {
    const finder = this.finder;
    finder.lastIndex = from;
    let candidate: RegExpExecArray | null;
    while ((candidate = finder.exec(text)) !== null) {
      const start = candidate.index;
      for (const needle of this.byPrefix.get(candidate[0])!) {
        if (text.startsWith(needle, start)) return { start, needle };
      }
      // Prefixes are all k long: the next candidate can start one character further.
      finder.lastIndex = start + 1;
    }
    return null;
  }

  /** The longest needle that starts exactly at `at`, or undefined. */
  longestAt(text: string, at: number): string | undefined {
    const candidates = this.byPrefix.get(text.slice(at, at + this.k));
    if (candidates === undefined) return undefined;
    for (const needle of candidates) if (text.startsWith(needle, at)) return needle;
    return undefined;
  }

  /** Whether any needle occurs in `text`. */
  test(text: string): boolean {
    return this.find(text, 0) !== null;
  }

  /** `text` with every occurrence (leftmost-longest, not overlapping) replaced by `replacement`. */
  replaceAll(text: string, replacement: string): string {
    let hit = this.find(text, 0);
    if (hit === null) return text;
    let out = '';
    let pos = 0;
    while (hit !== null) {
      out += text.slice(pos, hit.start) + replacement;
      pos = hit.start + hit.needle.length;
      hit = this.find(text, pos);
    }
    return out + text.slice(pos);
  }
}
