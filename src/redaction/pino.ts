import type { LoggerOptions } from 'pino';
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
 * Usage: `pino({ ...redactingLoggerOptions(() => current.redactor), level }, destination)`. When merging
 * with other `hooks`, keep this `streamWrite`.
 */
export function redactingLoggerOptions(getRedactor: () => Redactor): Pick<LoggerOptions, 'hooks'> {
  return {
    hooks: {
      streamWrite: lineRedactor(getRedactor),
    },
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

/** The message of a log line put in place of one the redactor failed on. */
export const WITHHELD = 'A log line was withheld: it could not be redacted';
