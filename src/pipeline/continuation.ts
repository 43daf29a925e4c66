import type { ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { Protocol } from '../protocols/types.js';
import { inputItems } from './responses.js';

/**
 * Continuing a cut stream (README, Routes and failover: `continue_streams`): what the client was told so far,
 * the request again with that text as the assistant's prefill, and the next element's answer written on as
 * the rest of the same stream. A stream passed through is read here, for the three chat protocols whose
 * events stand alone; a Responses stream passed through, whose closing events repeat the whole answer, by
 * its outline (src/protocols/responses/outline.ts, used by attempts.ts); a translated one — the Responses
 * API's included — is continued by the translator (src/protocols/translate.ts).
 */

type Reader = (data: Record<string, unknown>, said: StreamText) => void;

const record = (value: unknown): Record<string, unknown> | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;

/** Per protocol: what one event of the client's stream adds to what was said. */
const READERS: Partial<Record<Protocol, Reader>> = {
  openai: (data, said) => {
    for (const choice of Array.isArray(data.choices) ? data.choices : []) {
      const c = record(choice);
      const delta = record(c?.delta);
      if (typeof delta?.content === 'string') said.text += delta.content;
      if (delta?.tool_calls !== undefined || delta?.function_call !== undefined) said.textOnly = false;
      if (c?.finish_reason) said.finished = true;
    }
  },
  anthropic: (data, said) => {
    if (data.type === 'content_block_start') {
      if (record(data.content_block)?.type !== 'text' || data.index !== 0) said.textOnly = false;
    } else if (data.type === 'content_block_delta') {
      const delta = record(data.delta);
      if (delta?.type === 'text_delta' && typeof delta.text === 'string') said.text += delta.text;
      else said.textOnly = false;
    } else if (data.type === 'message_delta' || data.type === 'message_stop') said.finished = true;
  },
  gemini: (data, said) => {
    const candidate = record(Array.isArray(data.candidates) ? data.candidates[0] : undefined);
    const parts = record(candidate?.content)?.parts;
    for (const part of Array.isArray(parts) ? parts : []) {
      const p = record(part);
      if (p?.thought === true || p?.functionCall !== undefined) said.textOnly = false;
      else if (typeof p?.text === 'string') said.text += p.text;
    }
    if (candidate?.finishReason) said.finished = true;
  },
};

/** Whether a stream in this protocol can be continued. */
export function continuable(protocol: Protocol): boolean {
  return READERS[protocol] !== undefined;
}

/**
 * What a stream passed to the client said, read from its events as they go (`Relay.watch`): its text,
 * whether it was text only (a tool call or a reasoning block cannot be continued by prefill), and whether
 * it had finished. Parses each event: it runs only for a request whose route continues streams.
 */
export class StreamText {
  text = '';
  textOnly = true;
  finished = false;
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';
  private readonly reader: Reader | undefined;

  constructor(protocol: Protocol) {
    this.reader = READERS[protocol];
    if (this.reader === undefined) this.textOnly = false;
  }

  see(chunk: Uint8Array | string): void {
    if (this.reader === undefined) return;
    this.pending += typeof chunk === 'string' ? chunk : this.decoder.write(chunk as Buffer);
    const { events, rest } = splitEvents(this.pending);
    this.pending = rest;
    for (const event of events) {
      const data = dataOf(event);
      if (data === null) continue;
      try {
        const parsed = record(JSON.parse(data));
        if (parsed !== undefined) this.reader(parsed, this);
      } catch {
        // Not JSON (the event check passes none on); nothing said.
      }
    }
  }
}

/** The client's body with `text` as the assistant's turn after the last one: the prefill. */
export function prefilledBody(
  protocol: Protocol,
  body: Record<string, unknown>,
  text: string,
): Record<string, unknown> {
  if (protocol === 'gemini') {
    const contents = Array.isArray(body.contents) ? body.contents : [];
    return { ...body, contents: [...contents, { role: 'model', parts: [{ text }] }] };
  }
  if (protocol === 'responses') {
    const input = [...inputItems(body.input), { type: 'message', role: 'assistant', content: text }];
    return { ...body, input };
  }
  const messages = Array.isArray(body.messages) ? body.messages : [];
  return { ...body, messages: [...messages, { role: 'assistant', content: text }] };
}

/**
 * Events of the continuing answer the client must not see again: the opening of a message it already has.
 * Anthropic's `message_start` (and `ping`) and the start of the text block already open (index 0); OpenAI's
 * and Gemini's chunks stand on their own.
 */
const OPENING: Partial<Record<Protocol, (event: string) => boolean>> = {
  anthropic: (event) =>
    /^event: (?:message_start|ping)\r?$/m.test(event) ||
    (/^event: content_block_start\r?$/m.test(event) && /"index"\s*:\s*0\b/.test(event)),
};

/**
 * Writes the continuing answer (already in the client's protocol) to the response, its opening events left
 * out, with the response's backpressure; ends the response.
 */
export async function writeContinuation(
  res: ServerResponse,
  protocol: Protocol,
  out: AsyncIterable<Uint8Array | string>,
): Promise<void> {
  const opening = OPENING[protocol];
  const decoder = new StringDecoder('utf8');
  let pending = '';
  const write = async (text: string) => {
    if (text === '' || res.destroyed) return;
    if (!res.write(text))
      await new Promise<void>((resolve) => res.once('drain', resolve).once('close', resolve));
  };
  for await (const chunk of out) {
    if (res.destroyed) return;
    pending += typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer);
    const { events, rest } = splitEvents(pending);
    pending = rest;
    for (const event of events) if (opening === undefined || !opening(event)) await write(event);
  }
  await write(pending + decoder.end());
  if (!res.destroyed) res.end();
}

/** The whole events (each with its blank line) of `text`, and what follows the last. */
function splitEvents(text: string): { events: string[]; rest: string } {
  const events: string[] = [];
  const re = /\r?\n\r?\n/g;
  let start = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const end = m.index + m[0].length;
    events.push(text.slice(start, end));
    start = end;
  }
  return { events, rest: text.slice(start) };
}

/** The data of one event, its lines joined; null when it has none. */
function dataOf(event: string): string | null {
  let data: string | null = null;
  for (const line of event.split(/\r?\n/)) {
    if (!line.startsWith('data:')) continue;
    const value = line.charCodeAt(5) === 0x20 ? line.slice(6) : line.slice(5);
    data = data === null ? value : `${data}\n${value}`;
  }
  return data;
}
