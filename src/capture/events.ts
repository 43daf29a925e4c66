import type { HeaderValue, RedactedHeaders, Redactor } from '../redaction/redactor.js';
import { StreamRedactor } from '../redaction/stream.js';

/** Where an event sits on the wire (SPEC §4). */
export type CaptureDirection =
  | 'inbound_request' // client → proxy
  | 'outbound_request' // proxy → backend
  | 'inbound_response' // backend → proxy
  | 'outbound_response' // proxy → client
  | 'stream_start'
  | 'stream_chunk'
  | 'stream_end';

/** The two legs of a streamed answer: backend → proxy (`inbound`) and proxy → client (`outbound`). */
export type StreamLeg = 'inbound' | 'outbound';

/** One line of the capture file. `timestamp` and `sequence` are added by the writer. */
export interface CaptureEvent {
  readonly timestamp: string;
  readonly sequence: number;
  readonly request_id: string;
  readonly direction: CaptureDirection;
  readonly client?: { readonly address?: string; readonly user_agent?: string };
  readonly backend?: string;
  readonly model?: string;
  /** Names only, never the keys. */
  readonly key_name?: { readonly proxy?: string; readonly provider?: string };
  readonly headers?: RedactedHeaders;
  readonly payload?: unknown;
  readonly metadata?: Record<string, unknown>;
}

/** The fields every event of one request shares (SPEC §4), serialised and redacted once per request. */
export type SharedFields = Pick<CaptureEvent, 'request_id' | 'client' | 'backend' | 'model' | 'key_name'>;

/** What a caller supplies for one event: headers not yet redacted, the payload as a value. */
export interface EventFields {
  readonly headers?: Readonly<Record<string, HeaderValue>>;
  readonly payload?: unknown;
  /**
   * The payload's own JSON text, when the caller has it (a client's body as received): spliced in as it is
   * rather than serialised again. Used only when it is one line.
   */
  readonly payloadJson?: string | undefined;
  readonly metadata?: Record<string, unknown>;
}

/**
 * Where recorded events go. `writeMembers` takes one event's members as JSON text without the braces,
 * already redacted (`"request_id":…,"direction":…`); the sink adds its own stamps in front. CaptureWriter is
 * one; tests collect them.
 */
export interface CaptureSink {
  writeMembers(members: string): void;
}

/** One streamed leg being captured: chunks redacted as a whole, so a secret split across chunks is caught. */
export interface CaptureStream {
  /** Records the text released so far (redacted); some of `text` may be held back until the next call. */
  chunk(text: string): void;
  /** Records what was held back, then `stream_end` (with `metadata`, e.g. an error or the chunk count). */
  end(metadata?: Record<string, unknown>): void;
}

/**
 * Records capture events with every header and payload redacted before they reach the sink. Never throws:
 * capture must not break traffic.
 *
 * Events are built as JSON text: the members a request's events share are serialised and redacted once
 * (`forRequest`), each event adds its own and redacts only those. Redacting the serialised text catches
 * whatever a field holds — the masks are plain characters, so the text stays valid JSON — and costs far
 * less than walking and copying every payload.
 */
export class CaptureRecorder {
  /**
   * `,"client":…,"key_name":…` redacted, by the values it is made of: requests from one client to one
   * model share it. Emptied when the redactor changes (keys rotated) or it grows large.
   */
  private readonly restCache = new Map<string, string>();
  private cachedFor: Redactor | undefined;

  constructor(
    private readonly getRedactor: () => Redactor,
    private readonly sink: CaptureSink,
  ) {}

  forRequest(shared: SharedFields): RequestRecorder {
    const redactor = this.getRedactor();
    if (redactor !== this.cachedFor || this.restCache.size >= REST_CACHE_SIZE) {
      this.restCache.clear();
      this.cachedFor = redactor;
    }
    const key = sharedKey(shared);
    let rest = this.restCache.get(key);
    if (rest === undefined) {
      const members = sharedMembers(shared);
      rest = redactor.redact(members);
      // Only text with nothing to redact is kept: the cache never holds a secret.
      if (rest === members) this.restCache.set(key, rest);
    }
    const id = redactor.redact(`"request_id":${JSON.stringify(shared.request_id)}`);
    return new RequestRecorder(this.getRedactor, this.sink, id, rest);
  }
}

const REST_CACHE_SIZE = 1024;

/** The shared fields' values, length-prefixed (so unambiguous): cheaper to build than their JSON. */
function sharedKey(shared: SharedFields): string {
  const client = shared.client;
  const keys = shared.key_name;
  return (
    (client === undefined ? '-' : `+${field(client.address)}${field(client.user_agent)}`) +
    field(shared.backend) +
    field(shared.model) +
    (keys === undefined ? '-' : `+${field(keys.proxy)}${field(keys.provider)}`)
  );
}

function field(value: string | undefined): string {
  return value === undefined ? '~' : `${value.length}:${value}`;
}

/** `,"client":…,"backend":…,"model":…,"key_name":…` as JSON text, not yet redacted. */
function sharedMembers(shared: SharedFields): string {
  let rest = '';
  if (shared.client !== undefined) rest += `,"client":${JSON.stringify(shared.client)}`;
  if (shared.backend !== undefined) rest += `,"backend":${JSON.stringify(shared.backend)}`;
  if (shared.model !== undefined) rest += `,"model":${JSON.stringify(shared.model)}`;
  if (shared.key_name !== undefined) rest += `,"key_name":${JSON.stringify(shared.key_name)}`;
  return rest;
}

/** The capture of one request. */
export class RequestRecorder {
  private lastPayload: { source: unknown; redactor: Redactor; json: string } | undefined;

  /**
   * `id`: `"request_id":…`, redacted — only the direction comes between it and `rest`
   * (`,"client":…,"backend":…,"model":…,"key_name":…`, redacted), as SPEC §4 orders them.
   */
  constructor(
    private readonly getRedactor: () => Redactor,
    private readonly sink: CaptureSink,
    private readonly id: string,
    private readonly rest: string,
  ) {}

  /** Records one event; for streamed text use {@link openStream}, which catches secrets split across chunks. */
  record(direction: CaptureDirection, fields: EventFields): void {
    try {
      const redactor = this.getRedactor();
      const [headers, metadata] = redactApart(redactor, [
        fields.headers === undefined
          ? ''
          : `,"headers":${JSON.stringify(redactor.headersForTextRedaction(fields.headers))}`,
        fields.metadata === undefined ? '' : `,"metadata":${JSON.stringify(fields.metadata)}`,
      ]) as [string, string];
      const payload = this.redactedPayload(redactor, fields);
      const line =
        this.head(direction) + headers + (payload === undefined ? '' : `,"payload":${payload}`) + metadata;
      this.sink.writeMembers(line);
    } catch {
      // Dropped: the writer counts its own drops; a redaction failure is not worth failing a request.
    }
  }

  /**
   * Records `stream_start` (with `metadata` and the leg) now and returns the leg's recorder. Chunk payloads
   * are the redacted text released so far: concatenating a leg's `stream_chunk` payloads gives the whole
   * redacted stream, though the split points may differ from the wire's by up to a small held-back tail
   * (`stream_end` carries the wire counts: `metadata.chunks`, `metadata.bytes`).
   */
  openStream(leg: StreamLeg, metadata: Record<string, unknown> = {}): CaptureStream {
    const redactor = this.getRedactor();
    const stream = new StreamRedactor(redactor);
    const chunkHead = this.head('stream_chunk');
    const legJson = JSON.stringify(leg);
    // The released text is already redacted; JSON-encoding it cannot form a secret when every secret is
    // made of characters JSON leaves alone, so the event needs no second pass then.
    const encodedIsClean = redactor.secretsVerbatimInJson;
    let chunks = 0;
    let bytes = 0;
    this.record('stream_start', { metadata: { ...metadata, leg } });
    const recordText = (text: string): void => {
      if (text === '') return;
      // `chunk`: how many wire chunks had arrived when this text was released.
      const own = `,"payload":${JSON.stringify(text)},"metadata":{"leg":${legJson},"chunk":${chunks}}`;
      this.sink.writeMembers(chunkHead + (encodedIsClean ? own : redactor.redact(own)));
    };
    return {
      chunk: (text) => {
        try {
          chunks++;
          bytes += Buffer.byteLength(text);
          recordText(stream.push(text));
        } catch {
          // See record().
        }
      },
      end: (endMetadata) => {
        try {
          recordText(stream.flush());
          this.record('stream_end', { metadata: { ...endMetadata, leg, chunks, bytes } });
        } catch {
          // See record().
        }
      },
    };
  }

  /**
   * The payload as redacted JSON text. A request's payload often goes out as it came in (the client's body
   * to a same-protocol backend, the backend's answer to the client): the last one is kept and not redacted
   * twice. Redacting it apart from the rest of the event finds the same matches: a JSON value is
   * self-contained (no rule's match runs past a closing quote, and outside strings JSON has nothing to match).
   */
  private redactedPayload(redactor: Redactor, fields: EventFields): string | undefined {
    const source = fields.payloadJson ?? fields.payload;
    if (source === undefined) return undefined;
    const last = this.lastPayload;
    if (last !== undefined && last.source === source && last.redactor === redactor) return last.json;
    const text = payloadJson(fields);
    if (text === undefined) return undefined;
    const json = redactor.redact(text);
    this.lastPayload = { source, redactor, json };
    return json;
  }

  private head(direction: CaptureDirection): string {
    return `${this.id},"direction":"${direction}"${this.rest}`;
  }
}

/**
 * Redacts several pieces of JSON text in one pass (each pass has a fixed cost that dominates for short
 * pieces) and returns them apart. They are joined with NUL, which JSON text never holds raw (JSON.stringify
 * escapes it) and no rule matches across: every piece is complete JSON, so no match can run past it.
 */
function redactApart(redactor: Redactor, pieces: readonly string[]): string[] {
  // One piece with text (an event without headers, say): redacted alone, with no joining and splitting.
  let only = -1;
  for (let i = 0; i < pieces.length; i++) {
    if (pieces[i] === '') continue;
    if (only >= 0) return redactor.redact(pieces.join('\u0000')).split('\u0000');
    only = i;
  }
  if (only < 0) return [...pieces];
  const out = [...pieces];
  out[only] = redactor.redact(pieces[only]!);
  return out;
}

/** The payload as JSON text: the caller's own text when it has one that fits on the line, else serialised. */
function payloadJson(fields: EventFields): string | undefined {
  const raw = fields.payloadJson;
  if (raw !== undefined && !raw.includes('\n') && !raw.includes('\r')) return raw;
  return fields.payload === undefined ? undefined : JSON.stringify(fields.payload);
}
