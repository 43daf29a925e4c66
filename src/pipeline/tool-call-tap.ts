import { ByteNeedle, eventsHoldAny, holdsAny } from '../protocols/byte-needle.js';
import type { SseMessage } from '../protocols/codec.js';
import { MAX_SSE_LINE_BYTES, sseLineTooLong } from '../protocols/sse.js';
import {
  sseText,
  TOOL_CALL_GUARDS,
  type ToolCallStreamFilter,
  type ToolJudge,
} from '../protocols/tool-call-guard.js';
import type { Protocol } from '../protocols/types.js';

/**
 * Bytes of which every event that starts, continues or ends a tool call holds one, per protocol (README,
 * "Agent guardrails"): an event without any, while no call is held, is passed on as its bytes, unparsed.
 */
export const CALL_MARKERS: Readonly<Record<Protocol, readonly ByteNeedle[]>> = {
  openai: ['"tool_calls"'].map((m) => new ByteNeedle(m)),
  anthropic: ['"tool_use"'].map((m) => new ByteNeedle(m)),
  gemini: ['"functionCall"'].map((m) => new ByteNeedle(m)),
  responses: ['"function_call"', '"custom_tool_call"', '"local_shell_call"', '"shell_call"'].map(
    (m) => new ByteNeedle(m),
  ),
};

/** Whether an answer's bytes may hold a tool call at all: without a marker, there is nothing to judge. */
export function mayHoldToolCall(protocol: Protocol, bytes: Uint8Array): boolean {
  return holdsAny(CALL_MARKERS[protocol], bytes);
}

const LF = 0x0a;

/** Whether `bytes` ends with a blank line ("\n\n", or "\n\r\n"). */
function endsEvent(bytes: Uint8Array): boolean {
  const n = bytes.length;
  return bytes[n - 1] === LF && (bytes[n - 2] === LF || (bytes[n - 2] === 0x0d && bytes[n - 3] === LF));
}

/** `endsEvent` for text. */
function textEndsEvent(text: string): boolean {
  return text.endsWith('\n\n') || text.endsWith('\n\r\n');
}

/** The end of the last complete SSE event in `bytes` (after its blank line), or 0. */
function lastEventEnd(bytes: Buffer): number {
  for (let at = bytes.lastIndexOf(LF); at > 0; at = bytes.lastIndexOf(LF, at - 1)) {
    // A blank line: "\n\n", or "\n\r\n" (events ended by CRLF pairs, as Gemini's).
    if (bytes[at - 1] === LF) return at + 1;
    if (bytes[at - 1] === 0x0d && bytes[at - 2] === LF) return at + 1;
  }
  return 0;
}

/** One raw SSE event (its lines) as a message; undefined for one without data (a comment, say). */
function messageOf(raw: string): SseMessage | undefined {
  let event: string | undefined;
  const data: string[] = [];
  for (const line of raw.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
  }
  if (data.length === 0) return undefined;
  return event === undefined ? { data: data.join('\n') } : { event, data: data.join('\n') };
}

/**
 * The dangerous-command guard on a same-protocol stream taken straight from the backend (relay.ts): chunks
 * are cut at event ends (a partial event waits for its end, at most MAX_SSE_LINE_BYTES); a run of events
 * that holds no tool-call marker while no call is held goes on as its bytes; the others go through the
 * protocol's filter (src/protocols/tool-call-guard.ts) one by one.
 */
export class ToolCallTap {
  readonly #createFilter: () => ToolCallStreamFilter;
  /** Made at the first event with a marker: most answers have none. */
  #filter: ToolCallStreamFilter | null = null;
  readonly #markers: readonly ByteNeedle[];
  #carry: Buffer | null = null;

  constructor(protocol: Protocol, judge: ToolJudge) {
    const guard = TOOL_CALL_GUARDS[protocol];
    if (guard === undefined) throw new Error(`no tool-call guard for ${protocol}`);
    this.#createFilter = () => guard.createStreamFilter(judge);
    this.#markers = CALL_MARKERS[protocol];
  }

  /** Whether the filter holds a call's events. */
  #busy(): boolean {
    return this.#filter !== null && this.#filter.busy();
  }

  /**
   * What to write for `chunk` now (possibly nothing); throws `sseLineTooLong` past the event bound.
   * `toolFree`: the caller knows the chunk's events hold no tool call's marker (the relay's event check,
   * which read every byte of them: `EventCheck.toolFree`), so they are not searched again.
   */
  see(chunk: Uint8Array | string, toolFree = false): Uint8Array | string {
    if (chunk.length === 0) return chunk;
    // The common case, first: whole events (the relay's event check cuts them so), no call held, no
    // marker — the chunk goes on as it came, one search of its bytes (none when the event check has read
    // them; no copy, no view); text (a translated stream's, decoded once before translation) is searched
    // as text.
    if (this.#carry === null && !this.#busy()) {
      if (typeof chunk !== 'string') {
        if (endsEvent(chunk) && (toolFree || !eventsHoldAny(this.#markers, chunk))) return chunk;
      } else if (textEndsEvent(chunk) && !this.#markers.some((m) => chunk.includes(m.text))) {
        return chunk;
      }
    }
    const bytes =
      typeof chunk === 'string'
        ? Buffer.from(chunk)
        : Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const all = this.#carry === null ? bytes : Buffer.concat([this.#carry, bytes]);
    // The common case: the chunk is whole events (the relay's event check cuts them so).
    const end = endsEvent(all) ? all.length : lastEventEnd(all);
    if (end < all.length) {
      if (all.length - end > MAX_SSE_LINE_BYTES) throw sseLineTooLong();
      this.#carry = all.subarray(end);
    } else {
      this.#carry = null;
    }
    return end === 0 ? '' : this.#events(all.subarray(0, end));
  }

  /** The stream ended: what the filter still holds (a cut event is dropped, as a cut call is). */
  end(): string {
    this.#carry = null;
    return this.#filter === null ? '' : this.#filter.end().map(sseText).join('');
  }

  #events(complete: Buffer): Uint8Array | string {
    if (!this.#busy() && !eventsHoldAny(this.#markers, complete)) return complete;
    let out = '';
    for (const raw of complete.toString('utf8').split(/\r?\n\r?\n/)) {
      if (raw === '') continue;
      const message = messageOf(raw);
      // A comment (a keep-alive) goes on as it came, even past a held call.
      if (
        message === undefined ||
        (!this.#busy() && !this.#markers.some((m) => message.data.includes(m.text)))
      ) {
        out += `${raw}\n\n`;
        continue;
      }
      this.#filter ??= this.#createFilter();
      out += this.#filter.push(message).map(sseText).join('');
    }
    return out;
  }
}
