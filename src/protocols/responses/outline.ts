import { StringDecoder } from 'node:string_decoder';
import type { StreamEvent, Usage } from '../canonical.js';
import type { StreamEncoder } from '../codec.js';
import type { ErrorInfo } from '../error-envelopes.js';
import { encodeUsage } from './codec.js';
import { CUT_TOOL_CALL, stoppedInsideCall } from '../shared.js';

/**
 * A Responses stream passed to the client as the backend wrote it, read as it goes (README, Routes and
 * failover): the response its `response.created` opened, the output items so far, the last sequence number.
 * It tells how the stream ends when the backend's breaks — the `error` event, then `response.failed` with
 * the response as far as it went, as a translated stream ends — and, with `continue_streams`, how another
 * element's answer goes on as the rest of the same response (`continuation`).
 */

type Json = Record<string, unknown>;

const record = (value: unknown): Json | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;

/** The content parts of output item `item` (a message's), made an array if it had none. */
function partsOf(item: Json | undefined): Json[] | undefined {
  if (item === undefined) return undefined;
  if (!Array.isArray(item.content)) item.content = [];
  return item.content as Json[];
}

export class ResponsesOutline {
  /** The response as `response.created` (or `response.in_progress`) told it; null before. */
  response: Json | null = null;
  /** The output items, by output index, as their events built them. */
  readonly output: Json[] = [];
  /** The last `sequence_number` seen (-1: none). */
  lastSequence = -1;
  /** The stream wrote its end (`response.completed`, `.incomplete`, `.failed`, or `error`). */
  finished = false;
  /** Only one message's text so far (no tool call, reasoning or refusal): what a prefill can continue. */
  textOnly = true;
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  /**
   * `whole`: every event is read (a stream that may be continued). Otherwise only up to the response's
   * opening, which is all a failure needs: nothing is read per chunk after it (docs/performance.md).
   */
  constructor(private readonly whole = true) {}

  /** One chunk of the stream's bytes, as the client gets them. */
  see(chunk: Uint8Array | string): void {
    if (!this.whole && this.response !== null) return;
    const text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk as Buffer);
    // Most chunks hold whole events: nothing pending to join them to.
    this.pending = this.pending === '' ? text : this.pending + text;
    let start = 0;
    for (let end = this.pending.indexOf('\n\n'); end >= 0; end = this.pending.indexOf('\n\n', start)) {
      this.event(this.pending.slice(start, end));
      start = end + 2;
      if (!this.whole && this.response !== null) {
        this.pending = '';
        return;
      }
    }
    if (start > 0) this.pending = this.pending.slice(start);
  }

  private event(text: string): void {
    // One `data:` line per event (a Responses event's JSON holds no newline); `\r` tolerated.
    const at = text.startsWith('data:') ? 0 : text.indexOf('\ndata:') + 1;
    if (at === 0 && !text.startsWith('data:')) return;
    const lineEnd = text.indexOf('\n', at);
    // The value starts after `data:` and the one space that may follow it.
    const from = text.charCodeAt(at + 5) === 0x20 ? at + 6 : at + 5;
    let data = text.slice(from, lineEnd < 0 ? undefined : lineEnd);
    if (data.endsWith('\r')) data = data.slice(0, -1);
    // The stream's most frequent events, read without parsing: a text delta, a repeated snapshot.
    if (data.startsWith(DELTA) && this.delta(data)) return;
    if (data.startsWith(IN_PROGRESS) && this.response !== null) {
      this.sequenceOf(data);
      return;
    }
    let parsed: Json | undefined;
    try {
      parsed = record(JSON.parse(data));
    } catch {
      return; // Not JSON: the event check passes none on.
    }
    if (parsed !== undefined) this.read(parsed);
  }

  /** The sequence number of an event's data (the member's first occurrence: a key, never inside a string). */
  private sequenceOf(data: string): void {
    const sequence = intMember(data, '"sequence_number":', 0);
    if (sequence > this.lastSequence) this.lastSequence = sequence;
  }

  /**
   * A text delta's data, read by its members' places: its JSON is written by the backend in one known shape,
   * the keys unescaped (a quote inside a string value is always escaped, so `"delta":"` is the key). False
   * when the shape is not the one expected: the event is then parsed.
   */
  private delta(data: string): boolean {
    const outputIndex = intMember(data, '"output_index":', DELTA.length);
    const contentIndex = intMember(data, '"content_index":', DELTA.length);
    const at = data.indexOf('"delta":"', DELTA.length);
    if (outputIndex < 0 || contentIndex < 0 || at < 0) return false;
    const start = at + 8;
    let end = data.indexOf('"', start + 1);
    while (end > 0 && escaped(data, end)) end = data.indexOf('"', end + 1);
    if (end < 0) return false;
    const literal = data.slice(start, end + 1);
    let delta: string;
    try {
      delta = literal.includes('\\') ? (JSON.parse(literal) as string) : literal.slice(1, -1);
    } catch {
      return false;
    }
    this.sequenceOf(data);
    const part = partsOf(this.output[outputIndex])?.[contentIndex];
    if (part !== undefined) part.text = String(part.text ?? '') + delta;
    return true;
  }

  /** One event's data. */
  read(data: Json): void {
    if (typeof data.sequence_number === 'number' && data.sequence_number > this.lastSequence)
      this.lastSequence = data.sequence_number;
    const index = typeof data.output_index === 'number' ? data.output_index : -1;
    const item = this.output[index];
    switch (data.type) {
      case 'response.created':
      case 'response.in_progress':
        this.response = record(data.response) ?? this.response;
        return;
      case 'response.output_item.added': {
        const added = record(data.item);
        if (added === undefined || index < 0) return;
        this.output[index] = { ...added };
        if (added.type !== 'message' || index !== 0) this.textOnly = false;
        return;
      }
      case 'response.content_part.added': {
        const part = record(data.part);
        const parts = partsOf(item);
        if (part === undefined || parts === undefined) return;
        parts[Number(data.content_index ?? parts.length)] = { ...part };
        if (part.type !== 'output_text' || data.content_index !== 0) this.textOnly = false;
        return;
      }
      case 'response.output_text.delta': {
        const part = partsOf(item)?.[Number(data.content_index ?? 0)];
        if (part !== undefined && typeof data.delta === 'string')
          part.text = String(part.text ?? '') + data.delta;
        return;
      }
      case 'response.output_text.done':
      case 'response.content_part.done': {
        const parts = partsOf(item);
        const ci = Number(data.content_index ?? 0);
        if (parts === undefined) return;
        if (data.type === 'response.content_part.done') parts[ci] = record(data.part) ?? parts[ci] ?? {};
        else if (parts[ci] !== undefined && typeof data.text === 'string') parts[ci].text = data.text;
        // A part closed: the message may still grow another, which a prefill could not say.
        this.textOnly = false;
        return;
      }
      case 'response.output_item.done': {
        const done = record(data.item);
        if (done !== undefined && index >= 0) this.output[index] = done;
        this.textOnly = false;
        return;
      }
      case 'response.function_call_arguments.delta':
        if (item !== undefined && typeof data.delta === 'string')
          item.arguments = String(item.arguments ?? '') + data.delta;
        this.textOnly = false;
        return;
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
      case 'error':
        this.finished = true;
        return;
      default:
        // Any other event (reasoning, refusal, hosted tools) is not text a prefill can continue.
        if (typeof data.type === 'string' && !data.type.startsWith('response.output_text.'))
          this.textOnly = false;
    }
  }

  /** The sequence number the next event written takes. */
  get nextSequence(): number {
    return this.lastSequence + 1;
  }

  /** The one message's text, when the stream was cut while writing it and nothing else: else null. */
  get continuableText(): string | null {
    if (!this.whole || this.finished || !this.textOnly || this.response === null || this.output.length !== 1)
      return null;
    const parts = this.output[0]?.content;
    const text = Array.isArray(parts) && parts.length === 1 ? record(parts[0])?.text : undefined;
    return typeof text === 'string' && text !== '' ? text : null;
  }

  /**
   * `error`, then `response.failed` (as a translated stream ends): the response the client was told of,
   * failed, its output not repeated (the client has its events). `sequence`: the next event's number when
   * the outline did not read the whole stream. The outline is left as it was: the stream may yet be
   * continued instead.
   */
  failed(info: ErrorInfo, sequence = this.nextSequence): string {
    const error = event('error', sequence, {
      code: info.code,
      message: info.message,
      param: info.param ?? null,
    });
    if (this.response === null) return error;
    const response = {
      ...this.response,
      status: 'failed',
      error: { code: info.code, message: info.message },
      incomplete_details: null,
      output: [],
      usage: null,
    };
    return error + event('response.failed', sequence + 1, { response });
  }

  /**
   * The encoder that writes another element's answer (canonical events) on as the rest of this response:
   * its text into the message the client has open, sequence numbers going on; at its end the message, then
   * `response.completed` whose output holds the whole text and whose usage is the continuation's (the cut
   * element reported none). A tool call of the continuation is an output item of its own.
   */
  continuation(): StreamEncoder {
    return new ResponsesContinuation(this);
  }
}

const DELTA = '{"type":"response.output_text.delta",';
const IN_PROGRESS = '{"type":"response.in_progress",';

/** The non-negative integer after `key` in `data` (its first occurrence from `from`), or -1. */
function intMember(data: string, key: string, from: number): number {
  const at = data.indexOf(key, from);
  if (at < 0) return -1;
  let value = 0;
  let i = at + key.length;
  const first = i;
  for (let c = data.charCodeAt(i); c >= 48 && c <= 57; c = data.charCodeAt(++i)) value = value * 10 + c - 48;
  return i === first ? -1 : value;
}

/** Whether the quote at `at` is escaped (an odd number of backslashes before it). */
function escaped(text: string, at: number): boolean {
  let n = 0;
  for (let i = at - 1; i >= 0 && text.charCodeAt(i) === 92; i--) n++;
  return n % 2 === 1;
}

/** One numbered event, `type` and `sequence_number` first. */
function event(type: string, sequence: number, payload: Json): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence, ...payload })}\n\n`;
}

interface Call {
  readonly outputIndex: number;
  readonly item: Json;
}

/** The arguments of a continuation's calls. */
function* callArguments(calls: Iterable<Call>): Iterable<string> {
  for (const call of calls) yield String(call.item.arguments);
}

class ResponsesContinuation implements StreamEncoder {
  done = false;
  failed = false;
  private inputTokens: number | undefined;
  private readonly message: Json;
  private readonly part: Json;
  private readonly calls = new Map<number, Call>();

  constructor(private readonly outline: ResponsesOutline) {
    this.message = outline.output[0] as Json;
    this.part = (this.message.content as Json[])[0] as Json;
  }

  private next(type: string, payload: Json): string {
    this.outline.lastSequence += 1;
    return event(type, this.outline.lastSequence, payload);
  }

  encode(ev: StreamEvent): string {
    if (this.done) return '';
    const id = String(this.message.id ?? '');
    switch (ev.type) {
      case 'start':
        if (ev.inputTokens !== undefined) this.inputTokens = ev.inputTokens;
        return '';
      case 'text':
        if (ev.text === '') return '';
        if (this.calls.size > 0) return ''; // Text after a tool call has no message of its own here.
        this.part.text = String(this.part.text ?? '') + ev.text;
        return this.next('response.output_text.delta', {
          item_id: id,
          output_index: 0,
          content_index: 0,
          delta: ev.text,
          logprobs: [],
        });
      case 'tool_call_start': {
        const outputIndex = this.outline.output.length;
        const item = {
          id: `fc_${id}_${outputIndex}`,
          type: 'function_call',
          status: 'in_progress',
          call_id: ev.id,
          name: ev.name,
          arguments: '',
        };
        this.outline.output.push(item);
        this.calls.set(ev.index, { outputIndex, item });
        return this.next('response.output_item.added', { output_index: outputIndex, item: { ...item } });
      }
      case 'tool_call_delta': {
        const call = this.calls.get(ev.index);
        if (call === undefined || ev.arguments === '') return '';
        call.item.arguments = String(call.item.arguments) + ev.arguments;
        return this.next('response.function_call_arguments.delta', {
          item_id: call.item.id,
          output_index: call.outputIndex,
          delta: ev.arguments,
        });
      }
      case 'reasoning':
      case 'reasoning_signature':
        // The continuation's own reasoning is not part of the answer the client is reading.
        return '';
      case 'finish':
        // As every encoder does (`stoppedInsideCall`): a call the output limit cut is never closed as whole.
        if (stoppedInsideCall(ev.stopReason, callArguments(this.calls.values())))
          return this.encode({ type: 'error', error: CUT_TOOL_CALL });
        return this.finish(ev.usage, ev.stopReason);
      case 'error':
        this.done = true;
        this.failed = true;
        return this.outline.failed(ev.error);
    }
  }

  private finish(usage: Usage | undefined, stopReason: string): string {
    this.done = true;
    const id = String(this.message.id ?? '');
    const at = { item_id: id, output_index: 0, content_index: 0 };
    const text = String(this.part.text ?? '');
    const part = { ...this.part, type: 'output_text', text, annotations: this.part.annotations ?? [] };
    const message = { ...this.message, status: 'completed', content: [part] };
    this.outline.output[0] = message;
    let out =
      this.next('response.output_text.done', { ...at, text, logprobs: [] }) +
      this.next('response.content_part.done', { ...at, part }) +
      this.next('response.output_item.done', { output_index: 0, item: message });
    for (const { outputIndex, item } of this.calls.values()) {
      item.status = 'completed';
      out +=
        this.next('response.function_call_arguments.done', {
          item_id: item.id,
          output_index: outputIndex,
          arguments: item.arguments,
        }) + this.next('response.output_item.done', { output_index: outputIndex, item: { ...item } });
    }
    const incomplete =
      stopReason === 'max_tokens'
        ? 'max_output_tokens'
        : stopReason === 'content_filter'
          ? 'content_filter'
          : null;
    const response = {
      ...this.outline.response,
      status: incomplete === null ? 'completed' : 'incomplete',
      error: null,
      incomplete_details: incomplete === null ? null : { reason: incomplete },
      output: this.outline.output,
      usage: encodeUsage(usage ?? { inputTokens: this.inputTokens ?? 0, outputTokens: 0 }),
    };
    this.outline.finished = true;
    const type = incomplete === null ? 'response.completed' : 'response.incomplete';
    return out + this.next(type, { response });
  }
}
