import { inspect } from 'node:util';
import type { Redactor } from '../redaction/redactor.js';

/**
 * Printed in place of a fatal error that could not be redacted (the redactor itself failed, or the error
 * could not even be turned into text): nothing of the error, which may hold a secret.
 */
export const UNREDACTED_ERROR_WITHHELD = 'the error details are withheld: they could not be redacted';

/**
 * A thrown value as text with every secret redacted: its stack (which starts with the message) and any
 * other fields, a cause included. The value is redacted before it is formatted (`util.inspect` shortens long
 * strings, and a shortened secret would no longer be recognised), and the text once more after. If anything
 * fails on the way, {@link UNREDACTED_ERROR_WITHHELD} — never raw text.
 */
export function redactedErrorText(error: unknown, redactor: () => Redactor): string {
  try {
    const current = redactor();
    const copy = current.redactValue(error);
    let text: string;
    if (typeof copy === 'string') text = copy;
    else if (isErrorCopy(copy)) {
      const { stack, name: _name, message: _message, ...rest } = copy;
      text = Object.keys(rest).length > 0 ? `${stack} ${format(rest)}` : stack;
    } else text = format(copy);
    return current.redact(text);
  } catch {
    return UNREDACTED_ERROR_WITHHELD;
  }
}

/** What `Redactor.redactValue` makes of an `Error` that has a stack. */
function isErrorCopy(value: unknown): value is { stack: string; name: unknown; message: unknown } {
  return (
    typeof value === 'object' && value !== null && typeof (value as { stack?: unknown }).stack === 'string'
  );
}

function format(value: unknown): string {
  return inspect(value, { depth: 6, maxStringLength: Infinity, breakLength: 120 });
}

export interface FatalHandlerOptions {
  /** The redactor in force (the proxy's once it runs: it knows the keys from every source). */
  redactor: () => Redactor;
  /** Also tells the log (a JSON line for log collectors), given the report already redacted. */
  log?: ((what: string, redactedText: string) => void) | undefined;
  /** Defaults: `process.stderr.write` and `process.exit`. */
  write?: (text: string) => void;
  exit?: (code: number) => void;
}

/**
 * Handles an uncaught exception or unhandled rejection: one redacted report on stderr (whatever the log
 * level — a crash is always shown), the same to the log, then exit 1. Replaces Node's default report, which
 * prints the error's message, stack and fields raw. Returns a function that removes the handlers.
 */
export function installFatalHandlers(options: FatalHandlerOptions): () => void {
  const write = options.write ?? ((text: string) => void process.stderr.write(text));
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let handling = false;
  const handle = (what: string) => (error: unknown) => {
    // A failure while reporting (a second one) must not recurse; exit all the same.
    if (!handling) {
      handling = true;
      const text = redactedErrorText(error, options.redactor);
      try {
        write(`llm-interactive-proxy: ${what}: ${text}\n`);
      } catch {
        // Nothing else can be said: stderr is gone.
      }
      try {
        options.log?.(what, text);
      } catch {
        // The log is best effort; stderr has the report.
      }
    }
    exit(1);
  };
  const onException = handle('uncaught exception');
  const onRejection = handle('unhandled promise rejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}
