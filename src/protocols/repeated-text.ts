import type { StreamEvent } from './canonical.js';
import type { SseMessage } from './codec.js';

/** Whether `text` holds a character a JSON string literal cannot hold as it is (quote, backslash, control). */
function needsEscaping(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x22 || code === 0x5c) return true;
  }
  return false;
}

/**
 * A backend streams its answer's text as one event repeated with only the text changed (OpenAI's
 * `{"id":…,"choices":[{"index":0,"delta":{"content":"…"},…}]}`, Anthropic's `content_block_delta`,
 * Gemini's candidate with one text part): after an event the decoder read as text alone, the next one made
 * of the same characters around a different string is that string as text, read without `JSON.parse` or
 * the decoder (docs/performance.md, "Translated text deltas").
 *
 * Exact, not a guess: an event is learned only when it has no backslash (so every string in it is written
 * as it reads) and its text, quoted, occurs in it once (so that occurrence is the member the decoder read
 * it from); an event then matches when it is those characters around a string that needs no escaping —
 * the same JSON with that one member's value changed, which `JSON.parse` and the decoder would read as
 * that value as text. For decoders whose text events are one member's value as it stands, that leave
 * their state as they found it after an event of text alone (`StreamDecoder.textRepeats`). Any other
 * event goes through the decoder, and what it learns replaces the last (nothing, unless text alone): the
 * events matched are always those that follow the one learned, the decoder's state the same.
 */
export class RepeatedText {
  private prefix = '';
  private suffix = '';
  private event: string | undefined;
  private armed = false;

  /** The text `message` carries when it is the event learned with only its text changed; else undefined. */
  match(message: SseMessage): string | undefined {
    if (!this.armed || message.event !== this.event) return undefined;
    const { data } = message;
    const start = this.prefix.length;
    const end = data.length - this.suffix.length;
    // Compared as slices: `startsWith` and `endsWith` cost several times more on the parser's sliced strings.
    if (end <= start || data.slice(0, start) !== this.prefix || data.slice(end) !== this.suffix)
      return undefined;
    if (needsEscaping(data, start, end)) return undefined;
    return data.slice(start, end);
  }

  /** After the decoder read `message` as `events`: the shape to match next (or none). */
  learn(message: SseMessage, events: readonly StreamEvent[]): void {
    this.armed = false;
    const only = events.length === 1 ? events[0]! : undefined;
    if (only?.type !== 'text' || only.text === '') return;
    const { data } = message;
    const { text } = only;
    if (data.indexOf('\\') !== -1 || needsEscaping(text, 0, text.length)) return;
    const literal = `"${text}"`;
    const at = data.indexOf(literal);
    if (at === -1 || data.indexOf(literal, at + 1) !== -1) return;
    this.prefix = data.slice(0, at + 1);
    this.suffix = data.slice(at + literal.length - 1);
    this.event = message.event;
    this.armed = true;
  }
}
