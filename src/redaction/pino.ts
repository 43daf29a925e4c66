import pino, { type LoggerOptions } from 'pino';
import type { Redactor } from './redactor.js';

/**
 * The single place where redaction plugs into logging: every serialised log line (message, bound and
 * object fields, `err` with its stack, request URLs, headers objects) passes through the current redactor
 * before it reaches any destination — stdout, a log file, pino-pretty or a transport.
 *
 * `getRedactor` is called per line so that a redactor rebuilt after key rotation takes effect at once.
 * Redacting the finished JSON line (rather than chosen fields) means nothing logged by any module, a
 * library or a future change can slip past; the masks are plain characters, so the line stays valid JSON.
 *
 * Bytes are the one thing text redaction cannot see: JSON writes a Buffer as an array of numbers. Node's
 * HTTP parser hands the raw packet of a malformed request (its `Authorization` header included) to the
 * `clientError` handler, which Fastify logs at trace level. So byte fields of logged errors are withheld,
 * and any Buffer that still reaches a line is replaced by its length (README, Logs).
 *
 * Usage: `pino({ ...redactingLoggerOptions(() => current.redactor), level }, destination)`. When merging
 * with other `hooks` or `serializers`, keep these.
 */
export function redactingLoggerOptions(
  getRedactor: () => Redactor,
): Pick<LoggerOptions, 'hooks' | 'serializers'> {
  const redact = lineRedactor(getRedactor);
  return {
    hooks: {
      streamWrite: (line) => redact(withholdBufferJson(line)),
    },
    serializers: { err: serializeError },
  };
}

/** The same redaction, for finished lines written past pino (the access line, see `writeInfoLine`). */
export function lineRedactor(getRedactor: () => Redactor): (line: string) => string {
  return (line) => {
    try {
      return getRedactor().redact(line);
    } catch {
      // Never the raw line, and never an exception into the code that logged (it would stop logging, or
      // turn a log call into a crash): a line that says one was withheld.
      return `{"level":50,"time":${Date.now()},"msg":"${WITHHELD}"}\n`;
    }
  };
}

/** How a withheld run of bytes shows in a log line: its length only. */
export const withheldBytes = (length: number): string => `[${length} bytes withheld]`;

/** Deep enough for `cause` chains and aggregate errors; a deeper one is cut, not walked. */
const MAX_ERROR_DEPTH = 8;

/**
 * pino's standard error serializer, then every byte field (`rawPacket` of an HTTP parse error, a body a
 * library attached) replaced by its length, in the error and its causes.
 */
export function serializeError(err: unknown): unknown {
  return withholdBytes(pino.stdSerializers.err(err as Error), 0);
}

/** Copy-on-write: the same reference back for anything without bytes (a logged object is never changed). */
function withholdBytes(value: unknown, depth: number): unknown {
  if (ArrayBuffer.isView(value)) return withheldBytes(value.byteLength);
  if (value instanceof ArrayBuffer) return withheldBytes(value.byteLength);
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_ERROR_DEPTH) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item: unknown, i) => {
      const safe = withholdBytes(item, depth + 1);
      if (safe !== item) (copy ??= value.slice())[i] = safe;
    });
    return copy ?? value;
  }
  const record = value as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(record)) {
    const item = record[key];
    const safe = withholdBytes(item, depth + 1);
    if (safe !== item) {
      // The serializer's own result (depth 0) is a fresh object: changed in place, keeping its prototype.
      copy ??= depth === 0 ? record : { ...record };
      copy[key] = safe;
    }
  }
  return copy ?? value;
}

const BUFFER_JSON = /\{"type":"Buffer","data":\[([\d,]*)\]\}/g;

/** A Buffer serialised by `JSON.stringify` anywhere in a line, replaced by its length. */
export function withholdBufferJson(line: string): string {
  if (!line.includes('{"type":"Buffer","data":[')) return line;
  return line.replace(BUFFER_JSON, (_all, data: string) =>
    JSON.stringify(withheldBytes(data === '' ? 0 : data.split(',').length)),
  );
}

/** The message of a log line put in place of one the redactor failed on. */
export const WITHHELD = 'A log line was withheld: it could not be redacted';
