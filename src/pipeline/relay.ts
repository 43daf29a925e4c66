import type { OutgoingHttpHeaders } from 'node:http';
import type { CancelSignal } from '../backends/cancel.js';
import type { UpstreamResponse } from '../backends/types.js';
import { ProxyError } from '../proxy-error.js';
import type { ProtocolCodec } from '../protocols/codec.js';
import { errorEnvelope } from '../protocols/error-envelopes.js';
import { codecs } from '../protocols/registry.js';
import {
  StreamTranslation,
  translateStream,
  type StreamResume,
  type TranslationMeta,
} from '../protocols/translate.js';
import { sealResponseSignatures, type SignatureSealer } from '../protocols/signatures.js';
import { processSignatureSealer } from './signatures.js';
import { RefusedToolCall, TOOL_CALL_GUARDS, sseText, type ToolJudge } from '../protocols/tool-call-guard.js';
import { parseSse, sseLineTooLong, StreamText } from '../protocols/sse.js';
import type { Protocol } from '../protocols/types.js';
import type { Redactor } from '../redaction/redactor.js';
import {
  ErrorEventGuard,
  guardErrorEvents,
  guardTranslatedEvents,
  redactErrorText,
} from '../redaction/upstream-errors.js';
import { responseHead, writeJson, writeStream } from './respond.js';
import type { Dispatched } from './dispatch.js';
import { EventCheck, type DroppedEvents } from './event-filter.js';
import type { ChatExchange } from './exchange.js';
import type { RequestCapture, StreamTap } from './record.js';
import type { ChatRoute } from './route.js';
import {
  endStream,
  FinishWatch,
  midStreamError,
  passThroughIterable,
  type StreamUsageSink,
} from './stream-end.js';
import { mayHoldToolCall, ToolCallTap } from './tool-call-tap.js';
import type { AnswerOutcome, Answerer, UsageMeter } from './spend.js';
import { clientAsksStreamUsage, UsageChunkStripper } from './usage-strip.js';
import { usageOfAnswer } from '../protocols/usage.js';
import { usageInBytes } from '../protocols/usage-bytes.js';
import { ResponsesOutline } from '../protocols/responses/outline.js';
import { answerCutInCall, CUT_TOOL_CALL } from '../protocols/shared.js';

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  'x-accel-buffering': 'no',
} as const;

/**
 * Headers from an upstream error that a client can act on. The `x-ratelimit-*` ones go as the provider's
 * set: the proxy's own (its key's rpm, set when the request was let in) are taken off an upstream error
 * first, so a client never reads the proxy's limit with the provider's reset (README, Teams).
 */
const RATE_LIMIT_HEADERS = ['limit', 'remaining', 'reset'].flatMap((what) =>
  ['requests', 'tokens'].map((of) => `x-ratelimit-${what}-${of}`),
);
const PASSED_ERROR_HEADERS = ['retry-after', 'retry-after-ms', ...RATE_LIMIT_HEADERS];

/** Upper bound for an error body read from a backend: enough for any real error, not a memory hazard. */
const ERROR_BODY_LIMIT = 1024 * 1024;

/**
 * The hottest streaming case — same protocol: the backend's chunks are written to the response as undici
 * reads them (no body stream, no pipe), the response's backpressure passed back to the socket, and shown to
 * the capture's `tap` when there is one. A backend's error event is redacted on its way (the guard passes
 * every other chunk as it is). Mid-stream failures and unfinished streams still end in the protocol's
 * error event.
 */
function streamToClient(
  ex: ChatExchange,
  upstream: UpstreamResponse & Pick<Required<UpstreamResponse>, 'take'>,
  protocol: Protocol,
  backendName: string,
  signal: CancelSignal,
  tap: StreamTap | undefined,
  guard: ErrorEventGuard,
  watch: ((chunk: Uint8Array | string) => void) | undefined,
  tools: ToolCallTap | undefined,
  dropped: DroppedEvents | undefined,
  cut: Relay['cut'],
  usage: StreamUsage,
  /** A Responses stream, read as it goes: how it ends when the backend's breaks (and a continuation). */
  outline: ResponsesOutline | undefined,
): void {
  const res = ex.res;
  res.writeHead(upstream.status, sseHead(ex));
  const finish = new FinishWatch(protocol);
  // Events that are not JSON never reach the client (README, Routes and failover).
  const check = new EventCheck();
  /** Why the proxy itself cut the stream (an event past the line bound). */
  let cutFor: Error | null = null;
  const { stripper } = usage;
  /** Set when the proxy ended the stream itself (the guard refused a tool call): nothing more is written. */
  let stopped = false;
  const judged = (chunk: Uint8Array | string, toolFree = false) =>
    tools === undefined ? chunk : tools.see(chunk, toolFree);
  const stop = (err: unknown): void => {
    stopped = true;
    upstream.dispose();
    usage.done(stripper?.usage ?? finish.usage(), stoppedOutcome(err));
    const event = midStreamError(protocol, backendName, err, finish.nextSequence(), outline);
    tap?.fail(err as Error, event);
    endStream(res, protocol, true, event);
  };
  const pass = (received: Uint8Array | string): boolean => {
    const chunk = stripper === null ? received : stripper.see(received);
    if (chunk.length === 0) return true;
    tap?.chunk(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    // A client that left is not written to; the abort that follows stops the backend.
    if (res.destroyed) return true;
    finish.see(chunk);
    outline?.see(chunk);
    if (watch !== undefined) watch(chunk);
    return res.write(chunk);
  };
  const counted = () => {
    if (check.dropped > 0) dropped?.(ex.id, backendName, check.dropped);
  };
  const control = upstream.take({
    write(chunk) {
      if (stopped) return true;
      const kept = check.push(chunk);
      if (kept === null) {
        if (check.oversized && cutFor === null) {
          cutFor = sseLineTooLong();
          upstream.dispose();
        }
        return true;
      }
      if (tools === undefined) return pass(guard.see(kept, check.markFree));
      try {
        const guarded = guard.see(kept, check.markFree);
        // The events as the check read them (the error guard passed them on untouched): its word holds.
        return pass(judged(guarded, guarded === kept && check.toolFree));
      } catch (err) {
        stop(err);
        return true;
      }
    },
    end() {
      if (stopped) return;
      const last = check.end();
      try {
        if (last !== null) pass(judged(guard.see(last)));
        pass(judged(guard.end()));
        if (tools !== undefined) pass(tools.end());
      } catch (err) {
        stop(err);
        return;
      }
      if (stripper !== null) pass(stripper.end());
      counted();
      // The usage first: the tail it decodes, if any, is the one `missingEnd` then looks at.
      const used = stripper?.usage ?? finish.usage();
      const owed = finish.missingEnd(backendName, outline);
      tap?.end(owed);
      const failed = finish.endedFailing();
      const { storing } = ex.state;
      if (storing === undefined) endStream(res, protocol, failed, owed ?? undefined);
      else void storing.then(() => endStream(res, protocol, failed, owed ?? undefined));
      usage.done(used, finish.endOutcome());
    },
    fail(failure) {
      if (stopped) return;
      const err = cutFor ?? failure;
      pass(guard.end());
      if (stripper !== null) pass(stripper.end());
      counted();
      const gone = res.destroyed || (signal.aborted && cutFor === null);
      // The client gone, the answer was cut; else the backend's stream broke: a failed attempt.
      usage.done(stripper?.usage ?? finish.usage(), gone ? 'cut' : 'failed');
      if (gone) {
        tap?.fail(err, null);
        res.destroy();
      } else {
        const event = midStreamError(protocol, backendName, err, finish.nextSequence(), outline);
        if (cut === undefined || cutFor !== null) {
          tap?.fail(err, event);
          endStream(res, protocol, true, event);
          return;
        }
        void cut(event).then(
          (continued) => {
            tap?.fail(err, continued ? null : event);
            if (!continued && !res.destroyed) endStream(res, protocol, true, event);
          },
          () => {
            tap?.fail(err, event);
            if (!res.destroyed) endStream(res, protocol, true, event);
          },
        );
      }
    },
  });
  res.on('drain', () => control.resume());
}

/**
 * The client's side of a translated stream. An OpenAI chat client gets the usage chunk only when it asked
 * (`stream_options.include_usage`), as from OpenAI itself: one that did not may read `choices[0]` of every
 * chunk, and the usage chunk has none.
 */
function translationMeta({ ex, route, from }: Pick<Relay, 'ex' | 'route' | 'from'>): TranslationMeta {
  return {
    model: route.model,
    requestId: ex.id,
    includeUsage: clientAsksStreamUsage(from, route.clientBody),
  };
}

/**
 * A translated stream, synchronously from undici to the client (the way `streamToClient` relays a
 * same-protocol one): each chunk of the backend's bytes is checked for an error event (redacted), watched
 * for the usage, recorded, translated — every event it completes, one string — and written, the response's
 * backpressure passed back to the socket. No async iterator, generator or promise per chunk. A broken or
 * unfinished stream ends in the client protocol's error event.
 */
function translateToClient(
  relay: Relay,
  upstream: UpstreamResponse & Pick<Required<UpstreamResponse>, 'take'>,
  judge: ToolJudge | undefined,
): void {
  const { ex, route, from, redactor, capture } = relay;
  const { backend } = route;
  const res = ex.res;
  res.writeHead(upstream.status, sseHead(ex));
  const usage = streamUsage(relay);
  // The backend's bytes are read for the usage before translation; its error events redacted first.
  const watch = new FinishWatch(backend.protocol);
  const backendGuard = new ErrorEventGuard(redactor);
  // The translator decodes an error event whatever its escaping and writes its message plainly.
  const clientGuard = new ErrorEventGuard(redactor);
  const translation = new StreamTranslation(
    backend.protocol,
    from,
    translationMeta(relay),
    relay.codecs,
    relay.sealer ?? processSignatureSealer(),
  );
  // The dangerous-command guard, on the backend's events before translation (as `judgedToolCalls`).
  const tools = judge === undefined ? undefined : new ToolCallTap(backend.protocol, judge);
  const metadata = { status: upstream.status };
  const inbound = capture?.openLeg('inbound', metadata);
  const outbound = capture?.openLeg('outbound', metadata);
  let over = false;
  // The backend's bytes are decoded once, here: the guard, the usage watch, the capture and the parser all
  // read that text (each decoding or searching the bytes on its own cost more than the translation).
  const decoder = new StreamText();
  const send = (text: string): boolean => {
    if (text === '') return true;
    const safe = clientGuard.see(text) as string;
    if (safe === '') return true;
    outbound?.chunk(safe);
    // A client that left is not written to; the abort that follows stops the backend.
    return res.destroyed ? true : res.write(safe);
  };
  /** Backend bytes in: the client's text for them out (false: the client is full). */
  const pass = (chunk: string): boolean => {
    const guarded = backendGuard.see(chunk) as string;
    if (guarded.length === 0) return true;
    watch.see(guarded);
    inbound?.chunk(guarded);
    return send(translation.push(tools === undefined ? guarded : textOf(tools.see(guarded))));
  };
  /** The last words (`tail`), then the end: `failure` when the backend's stream broke. */
  const close = (tail: string, failure: unknown, outcome: AnswerOutcome): void => {
    over = true;
    inbound?.end(failure);
    send(tail);
    send(clientGuard.end());
    outbound?.end();
    usage.done(watch.usage(), outcome);
    if (res.destroyed) return;
    const failed = translation.failed;
    const { storing } = ex.state;
    if (storing === undefined) endStream(res, from, failed);
    else void storing.then(() => endStream(res, from, failed));
  };
  const control = upstream.take({
    write(chunk) {
      if (over) return true;
      try {
        return pass(decoder.write(chunk));
      } catch (err) {
        // Closed first: the abort that disposing causes is then no failure of the backend's.
        close(translation.fail(err), err, stoppedOutcome(err));
        upstream.dispose();
        return true;
      }
    },
    end() {
      if (over) return;
      let tail: string;
      let failure: unknown;
      try {
        const decoded = decoder.end();
        if (decoded !== '') pass(decoded);
        const rest = backendGuard.end();
        if (rest !== '') pass(rest);
        if (tools !== undefined) send(translation.push(tools.end()));
        tail = translation.end();
      } catch (err) {
        failure = err;
        tail = translation.fail(err);
      }
      close(tail, failure, failure === undefined ? watch.endOutcome() : stoppedOutcome(failure));
    },
    fail(err) {
      if (over) return;
      // The client gone, the answer was cut; else the backend's stream broke: a failed attempt.
      if (res.destroyed) close('', err, 'cut');
      else close(translation.fail(err), err, 'failed');
    },
  });
  res.on('drain', () => control.resume());
}

/** The tool-call tap's output as text (it passes whole events on, so no character is cut). */
function textOf(chunk: Uint8Array | string): string {
  return typeof chunk === 'string'
    ? chunk
    : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
}

/**
 * A stream's usage on its way (README, Teams: usage): the stripper of the usage chunk the proxy asked for
 * (an OpenAI stream whose client did not ask), and where the usage goes when the stream ends: answered (it
 * reached its end), failed (the backend failed it: counted as no usage, whatever it reported before — an
 * Anthropic stream's `message_start` holds the prompt's tokens), cut (the client left, or the proxy's
 * guard stopped it: the backend did its part).
 */
type StreamUsage = StreamUsageSink & { readonly stripper: UsageChunkStripper | null };

function streamUsage(relay: Relay): StreamUsage {
  const { meter, route } = relay;
  return {
    stripper: relay.stripUsage === true ? new UsageChunkStripper() : null,
    done: (usage, outcome) => meter?.done(route, usage, outcome),
  };
}

/** How a stream the proxy stopped itself counts: the guard refused a tool call (cut), else a failure. */
function stoppedOutcome(err: unknown): AnswerOutcome {
  return err instanceof RefusedToolCall ? 'cut' : 'failed';
}

/**
 * A stream's backend bytes watched for their usage on their way (translated streams: the backend's
 * protocol is read before translation); `done` once, when the stream ends, fails or is dropped (returned
 * early: the client left, or the translation stopped at the backend's error event).
 */
async function* usageTapped(
  source: AsyncIterable<Uint8Array>,
  protocol: Protocol,
  usage: StreamUsageSink,
): AsyncGenerator<Uint8Array> {
  const watch = new FinishWatch(protocol);
  let outcome: AnswerOutcome | undefined;
  try {
    for await (const chunk of source) {
      watch.see(chunk);
      yield chunk;
    }
    outcome = watch.endOutcome();
  } catch (err) {
    outcome = 'failed';
    throw err;
  } finally {
    usage.done(watch.usage(), outcome ?? (watch.endsInError() ? 'failed' : 'cut'));
  }
}

/**
 * A continuation's backend bytes (attempts.ts, a translated stream's `resume`), watched for their usage as
 * the first answer's were: `meter` settles both answers when this one ends.
 */
export function meteredContinuation(
  source: AsyncIterable<Uint8Array>,
  protocol: Protocol,
  meter: UsageMeter | undefined,
  answerer: Answerer,
): AsyncIterable<Uint8Array> {
  if (meter === undefined) return source;
  return usageTapped(source, protocol, {
    stripper: null,
    done: (usage, outcome) => meter.done(answerer, usage, outcome),
  });
}

function isTakeable(
  upstream: UpstreamResponse,
): upstream is UpstreamResponse & Pick<Required<UpstreamResponse>, 'take'> {
  return upstream.take !== undefined;
}

function sseHead(ex: ChatExchange): OutgoingHttpHeaders {
  return responseHead(ex, SSE_HEADERS);
}

/** A backend's error, in the client's protocol, with the backend's status kept. */
function upstreamErrorBody(
  text: string,
  status: number,
  from: Protocol,
  backendProtocol: Protocol,
): string | object {
  if (from === backendProtocol) {
    try {
      JSON.parse(text);
      return text;
    } catch {
      // Not an error body the client's SDK could read: wrap it below.
    }
  }
  // The codec reads the backend's envelope, or falls back to a short excerpt of a body that is not one.
  const info = codecs[backendProtocol].decodeError(status, text);
  return errorEnvelope(from, { ...info, status });
}

const invalidAnswer = (backendName: string) =>
  new ProxyError(502, `Backend '${backendName}' answered with invalid JSON`, { code: 'upstream_invalid' });

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * Whether a whole answer passed on as is can be a JSON object: it starts with `{` and ends with `}`, give
 * or take whitespace. What goes wrong in practice — an HTML or plain-text page from a wrong base URL, a
 * proxy's error page, an empty or cut-off body — fails it, so a client's SDK is not handed a 200 it
 * cannot read. A full parse would also catch a backend writing broken JSON inside the braces, at the price
 * of parsing every answer (and building its object tree) only to throw it away (docs/performance.md).
 */
export function isJsonObject(bytes: Uint8Array): boolean {
  let first = 0;
  let last = bytes.length - 1;
  while (first <= last && WHITESPACE.has(bytes[first]!)) first++;
  while (last > first && WHITESPACE.has(bytes[last]!)) last--;
  return last > first && bytes[first] === 0x7b && bytes[last] === 0x7d;
}

/** One answer on its way back: the request, where it went, the call, and what records and redacts it. */
export interface Relay {
  readonly ex: ChatExchange;
  readonly route: ChatRoute;
  readonly dispatched: Dispatched;
  /** The client's protocol. */
  readonly from: Protocol;
  readonly redactor: Redactor;
  readonly capture: RequestCapture | null;
  /** Judges the answer's tool calls (the dangerous-command guard), when the request offered a shell tool. */
  readonly judge?: ToolJudge | undefined;
  /** The client's codecs when they differ from the shared ones (a Responses request's own context). */
  readonly codecs?: Record<Protocol, ProtocolCodec> | undefined;
  /** Wraps a translated answer's signatures of another family (README, "Reasoning between families"). */
  readonly sealer?: SignatureSealer | undefined;
  /** Shown a passed-through answer's bytes as they go (the Responses API learns its id there). */
  readonly watch?: ((chunk: Uint8Array | string) => void) | undefined;
  /** Told when a stream passed through had events that are not JSON (dropped). */
  readonly dropped?: DroppedEvents | undefined;
  /**
   * A stream taken `direct` that fails mid-way may be continued (`continue_streams`): given the error event
   * the client would get, resolves true once it wrote the rest of the answer and ended the response, false
   * when it did not (the error event is then written).
   */
  readonly cut?: ((errorEvent: string) => Promise<boolean>) | undefined;
  /**
   * A Responses stream passed through is read as it goes (`ResponsesOutline`); failover hands its own in
   * when it may continue the stream.
   */
  readonly outline?: ResponsesOutline | undefined;
  /** The metadata of the stream's capture records (default: its status). */
  readonly captureMetadata?: Record<string, unknown> | undefined;
  /** A translated stream that fails mid-way may be continued the same way (translate.ts, `resume`). */
  readonly resume?: StreamResume | undefined;
  /** Told the answer's usage when it ends (src/pipeline/spend.ts). */
  readonly meter?: UsageMeter | undefined;
  /** The usage chunk of an OpenAI stream is the proxy's own ask: taken out (prepare.ts, `stripUsage`). */
  readonly stripUsage?: boolean | undefined;
}

/** A backend's error answer, redacted after decoding (README, Key hygiene), in the client's protocol. */
async function relayError({ ex, route, dispatched, from, redactor, capture, meter }: Relay): Promise<void> {
  const { upstream } = dispatched;
  meter?.done(route, null, 'failed');
  const text = redactErrorText(redactor, (await dispatched.readWhole(ERROR_BODY_LIMIT)).toString('utf8'));
  capture?.record('inbound_response', {
    headers: upstream.headers,
    payload: text,
    metadata: { status: upstream.status },
  });
  const passed: Record<string, string> = {};
  ex.state.limitHeaders = undefined;
  for (const name of PASSED_ERROR_HEADERS) {
    const value = upstream.headers[name];
    if (typeof value === 'string') passed[name] = value;
  }
  // OpenAI's `retry-after-ms` alone: its `Retry-After` too, in whole seconds, which every client reads.
  if (passed['retry-after'] === undefined && passed['retry-after-ms'] !== undefined) {
    const ms = Number(passed['retry-after-ms']);
    if (Number.isFinite(ms) && ms >= 0) passed['retry-after'] = String(Math.ceil(ms / 1000));
  }
  const answer = upstreamErrorBody(text, upstream.status, from, route.backend.protocol);
  capture?.record('outbound_response', { payload: answer, metadata: { status: upstream.status } });
  writeJson(ex, upstream.status, answer, passed);
}

/**
 * A streamed answer: same protocol and takeable, straight from undici to the client; otherwise through
 * async iterables (an embedded backend's stream, or translation), the backend's error events redacted
 * before anything reads them (capture, translator, client).
 */
function relayStream(relay: Relay): void {
  const { ex, route, dispatched, from, redactor, capture, watch, judge } = relay;
  const { upstream, signal } = dispatched;
  const { backend } = route;
  // `on`: a response emits 'close' once (no wrapper to make and remove).
  ex.res.on('close', () => upstream.dispose());
  // A stream that may be continued (`resume`) goes through the iterables.
  if (isTakeable(upstream) && backend.protocol !== from && relay.resume === undefined) {
    translateToClient(relay, upstream, judge);
    return;
  }
  if (isTakeable(upstream) && backend.protocol === from) {
    const tap = capture?.passThrough({ status: upstream.status });
    const guard = new ErrorEventGuard(redactor);
    const tools = judge === undefined ? undefined : new ToolCallTap(backend.protocol, judge);
    streamToClient(
      ex,
      upstream,
      from,
      backend.name,
      signal,
      tap,
      guard,
      watch,
      tools,
      relay.dropped,
      relay.cut,
      streamUsage(relay),
      from === 'responses' ? (relay.outline ?? new ResponsesOutline(false)) : undefined,
    );
    return;
  }
  const out = streamOut(relay);
  ex.res.writeHead(upstream.status, sseHead(ex));
  // The generators end in an error event of their own when the backend fails.
  void writeStream(ex.res, out, ex.state);
}

/**
 * A streamed answer as an async iterable of the client's protocol: the backend's error events redacted
 * before anything reads them (capture, translator, client), then passed through or translated. Ends in the
 * protocol's error event of its own when the backend fails.
 */
export function streamOut({
  ex,
  route,
  dispatched,
  from,
  redactor,
  capture,
  watch,
  judge,
  ...relay
}: Relay): AsyncIterable<Uint8Array | string> {
  const { upstream, signal } = dispatched;
  const { backend } = route;
  const usage = streamUsage({ ex, route, dispatched, from, redactor, capture, watch, judge, ...relay });
  let source: AsyncIterable<Uint8Array> = guardErrorEvents(upstream.body, redactor);
  // Passed through, the stream's own end is watched (passThroughIterable); translated, its backend bytes.
  if (backend.protocol !== from) source = usageTapped(source, backend.protocol, usage);
  const captured = relay.captureMetadata ?? { status: upstream.status };
  if (capture) source = capture.tee(source, 'inbound', captured);
  if (judge !== undefined) source = judgedToolCalls(source, backend.protocol, judge);
  let out: AsyncIterable<Uint8Array | string> =
    backend.protocol === from
      ? passThroughIterable(
          source,
          from,
          backend.name,
          signal,
          watch,
          (count) => relay.dropped?.(ex.id, backend.name, count),
          usage,
        )
      : guardTranslatedEvents(
          translateStream(
            source,
            backend.protocol,
            from,
            translationMeta({ ex, route, from }),
            relay.codecs,
            relay.sealer ?? processSignatureSealer(),
            relay.resume,
          ),
          redactor,
        );
  if (capture) out = capture.tee(out, 'outbound', captured);
  return out;
}

/**
 * A stream whose tool calls the guard judges, in the backend's protocol (before any translation): events go
 * on as they come, except a tool call's, held until it is whole and then passed on or replaced.
 */
async function* judgedToolCalls(
  source: AsyncIterable<Uint8Array>,
  protocol: Protocol,
  judge: ToolJudge,
): AsyncGenerator<Uint8Array> {
  const guard = TOOL_CALL_GUARDS[protocol];
  if (guard === undefined) {
    yield* source;
    return;
  }
  const filter = guard.createStreamFilter(judge);
  const out = (messages: ReturnType<typeof filter.end>) => Buffer.from(messages.map(sseText).join(''));
  for await (const message of parseSse(source)) {
    const passed = filter.push(message);
    if (passed.length > 0) yield out(passed);
  }
  const rest = filter.end();
  if (rest.length > 0) yield out(rest);
}

/** A whole answer with its condemned tool calls replaced; null when the guard changed nothing. */
function judgedWhole(bytes: Buffer, protocol: Protocol, judge: ToolJudge): Record<string, unknown> | null {
  // An answer without a tool call's marker holds none: not parsed for the guard.
  if (!mayHoldToolCall(protocol, bytes)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  const guard = TOOL_CALL_GUARDS[protocol];
  if (guard === undefined || typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    return null;
  try {
    return guard.rewriteWhole(parsed as Record<string, unknown>, judge) ?? null;
  } catch (err) {
    if (err instanceof RefusedToolCall) throw new ProxyError(400, err.message, { code: 'dangerous_command' });
    throw err;
  }
}

/** A whole answer: passed on as the bytes it came in as (same protocol), or translated. */
function relayWhole(relay: Relay, contentType: string): Promise<void> | undefined {
  // A whole answer read from dispatch callbacks is all here: relayed at once, without a promise.
  const ready = relay.dispatched.upstream.bytes;
  return ready !== undefined ? relayReceived(relay, contentType, ready) : relayRead(relay, contentType);
}

async function relayRead(relay: Relay, contentType: string): Promise<void> {
  await relayReceived(relay, contentType, await relay.dispatched.readWhole());
}

/** A whole answer's bytes to the client; a promise only when a stored response must be written first. */
function relayReceived(
  { ex, route, dispatched, from, capture, watch, judge, meter, codecs: clientCodecs = codecs, sealer }: Relay,
  contentType: string,
  received: Buffer,
): Promise<void> | undefined {
  const { upstream } = dispatched;
  const { backend } = route;
  // The capture records the answer's bytes as text (decoded off this thread); an answer passed on as is
  // goes out as the bytes it came in as, so only translation needs it decoded here.
  capture?.record('inbound_response', {
    headers: upstream.headers,
    payload: received,
    metadata: { status: upstream.status },
  });
  const judged = judge === undefined ? null : judgedWhole(received, backend.protocol, judge);
  const bytes = judged === null ? received : Buffer.from(JSON.stringify(judged));
  if (backend.protocol === from) {
    if (!isJsonObject(bytes)) throw invalidAnswer(backend.name);
    if (watch !== undefined) watch(bytes);
    const passOn = (): void => {
      capture?.record('outbound_response', { payload: bytes, metadata: { status: upstream.status } });
      writeJson(ex, upstream.status, bytes, { 'content-type': contentType || 'application/json' });
      if (meter !== undefined) meter.done(route, usageInBytes(backend.protocol, received), 'answered');
    };
    const storing = ex.state.storing;
    if (storing !== undefined) return storing.then(passOn);
    passOn();
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalidAnswer(backend.name);
  }
  const decoded = codecs[backend.protocol].decodeResponse(parsed);
  if (answerCutInCall(decoded)) {
    const { status, message, code } = CUT_TOOL_CALL;
    throw new ProxyError(status, message, { code });
  }
  sealResponseSignatures(decoded, from, sealer ?? processSignatureSealer());
  const client = clientCodecs[from];
  // Written as text where the client's codec can (no objects, no serialiser's walk); the capture records
  // the answer as an object.
  const answer =
    capture === null && client.encodeResponseText !== undefined
      ? client.encodeResponseText(decoded)
      : client.encodeResponse(decoded);
  const translated = (): void => {
    capture?.record('outbound_response', { payload: answer, metadata: { status: upstream.status } });
    writeJson(ex, upstream.status, answer);
    meter?.done(route, usageOfAnswer(backend.protocol, parsed), 'answered');
  };
  const storing = ex.state.storing;
  if (storing !== undefined) return storing.then(translated);
  translated();
  return undefined;
}

/**
 * Step 4, relay the answer to the client in its protocol: a backend error with its status kept, a stream
 * chunk by chunk, or a whole answer. Writes straight to the response; errors it throws are answered by
 * the pipeline.
 */
export async function relayAnswer(relay: Relay): Promise<void> {
  const { route, dispatched } = relay;
  const { upstream } = dispatched;
  if (upstream.status >= 400) {
    await relayError(relay);
    return;
  }
  relay.meter?.answering(route);
  const contentType = String(upstream.contentType ?? upstream.headers['content-type'] ?? '');
  if (route.stream && contentType.includes('text/event-stream')) {
    relayStream(relay);
    return;
  }
  const reading = relayWhole(relay, contentType);
  if (reading !== undefined) await reading;
}
