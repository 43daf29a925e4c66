/**
 * The deepest nesting of arrays and objects a request body may have (docs/reliability.md, "Timeouts that
 * protect the proxy"). JSON.parse copes with any depth, but the proxy walks bodies recursively (prompt redaction,
 * translation, re-serialising), and a body thousands of levels deep would overflow the stack there. No real
 * chat request comes near this: tool schemas, the deepest part of one, are a few dozen levels at most.
 */
export const MAX_JSON_DEPTH = 128;

/**
 * Whether a parsed JSON body (`text`, parsed into `value`) nests arrays and objects deeper than `max`.
 * Text cannot be deeper than the number of `{` and `[` in it, and a chat body has few (about one object per
 * message): counting them with `indexOf` (a native character search) settles almost every body in a
 * microsecond or two per 32 KB. Only a body with more (code in a prompt, a large tool schema) has its parsed
 * value walked, to at most `max + 1` levels: strings are leaves there, so code in a prompt costs nothing.
 */
export function nestedTooDeeply(text: string, value: unknown, max = MAX_JSON_DEPTH): boolean {
  if (text.length <= max) return false;
  const objects = countUpTo(text, '{', max);
  if (objects <= max && objects + countUpTo(text, '[', max - objects) <= max) return false;
  return deeperThan(value, max);
}

/** Occurrences of `char` in `text`, counted up to `limit + 1` (enough to know there are more). */
function countUpTo(text: string, char: string, limit: number): number {
  let count = 0;
  for (let i = text.indexOf(char); i >= 0 && count <= limit; i = text.indexOf(char, i + 1)) count++;
  return count;
}

/** `levels`: how many more levels of containers may follow. Recursion is bounded by it. */
function deeperThan(value: unknown, levels: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (levels === 0) return true;
  if (Array.isArray(value)) {
    for (const item of value as unknown[]) if (deeperThan(item, levels - 1)) return true;
    return false;
  }
  for (const key in value) if (deeperThan((value as Record<string, unknown>)[key], levels - 1)) return true;
  return false;
}
