/**
 * JSON text written without `JSON.stringify`'s walk over each character of a string: Node 20's serialiser
 * looks at a string one character at a time, which under callgrind was the largest single difference
 * between a translated whole answer and a passed-through one (docs/performance.md, "The Gemini client's
 * whole answers, and 200 KB bodies"). A string none of whose characters JSON escapes is tested by one regular expression (a
 * native scan) and written between quotes; anything else goes to `JSON.stringify`. The text written is
 * always exactly what `JSON.stringify` writes (`json-text.test.ts` holds that, fuzzed).
 */

/**
 * Characters `JSON.stringify` writes as they are: not a control character, a quote, a backslash, nor a
 * surrogate (a lone one is written as a `\u` escape; a pair is left to the serialiser too).
 */
const VERBATIM = /^[\x20\x21\x23-\x5b\x5d-\ud7ff\ue000-\uffff]*$/;

/** `JSON.stringify(text)`. */
export function quotedJson(text: string): string {
  return VERBATIM.test(text) ? `"${text}"` : JSON.stringify(text);
}

/**
 * `JSON.stringify(text)` for a stream's short text deltas: the text in quotes as it is when no character of
 * it needs escaping (a quote, a backslash, a control character or a surrogate, which `JSON.stringify`
 * writes as `\u` escapes when alone), looked at one character at a time, without the call; longer text
 * goes to the serialiser, faster there than this loop.
 */
export function deltaJson(text: string): string {
  return isShortVerbatim(text) ? `"${text}"` : JSON.stringify(text);
}

/** Whether `deltaJson` writes `text` as it is, between quotes (see there). */
export function isShortVerbatim(text: string): boolean {
  if (text.length > 64) return false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x22 || code === 0x5c || (code >= 0xd800 && code <= 0xdfff)) return false;
  }
  return true;
}

/** `JSON.stringify(value)` of a finite number or not: `null` for NaN and the infinities. */
export function numberJson(value: number): string {
  return Number.isFinite(value) ? String(value) : 'null';
}

const OBJECT_PROTOTYPE = Object.prototype;

/**
 * `JSON.stringify(value)` for data: plain objects, arrays, strings, numbers, booleans and null (what
 * `JSON.parse` and the codecs build). Members whose value is undefined, a function or a symbol are left
 * out, and in an array written as `null`, as the serialiser does; anything else (an object with another
 * prototype or a `toJSON`, a bigint) makes the whole value go to `JSON.stringify`.
 */
export function jsonText(value: unknown): string {
  const text = dataText(value);
  return text === null ? (JSON.stringify(value) as string) : text;
}

/** The text of `value`, or null when it is not plain data (see `jsonText`). */
function dataText(value: unknown): string | null {
  switch (typeof value) {
    case 'string':
      return quotedJson(value);
    case 'number':
      return numberJson(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        if (Object.getPrototypeOf(value) !== Array.prototype) return null;
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          const text = isSkipped(item) ? 'null' : dataText(item);
          if (text === null) return null;
          out += i === 0 ? text : `,${text}`;
        }
        return `${out}]`;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== OBJECT_PROTOTYPE && proto !== null) return null;
      const record = value as Record<string, unknown>;
      if (typeof record.toJSON === 'function') return null;
      let out = '{';
      let first = true;
      for (const key of Object.keys(record)) {
        const item = record[key];
        if (isSkipped(item)) continue;
        const text = dataText(item);
        if (text === null) return null;
        out += `${first ? '' : ','}${quotedJson(key)}:${text}`;
        first = false;
      }
      return `${out}}`;
    }
    default:
      return null;
  }
}

/** What the serialiser leaves out of an object (and writes as null in an array). */
function isSkipped(value: unknown): boolean {
  return value === undefined || typeof value === 'function' || typeof value === 'symbol';
}
