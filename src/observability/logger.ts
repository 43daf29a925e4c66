import pino, { type DestinationStream, type Level, type Logger } from 'pino';
import { lineRedactor, redactingLoggerOptions } from '../redaction/pino.js';
import { LineBatcher } from './line-batcher.js';
import { openPrivateAppend } from './private-files.js';
import type { Redactor } from '../redaction/redactor.js';

export interface LoggerOptions {
  level: string;
  file?: string | undefined;
  format: 'auto' | 'json' | 'pretty';
  /** The redactor in force; every serialised line passes through it (a getter, because keys rotate). */
  redactor: () => Redactor;
  /** Where console output goes (stdout by default); tests pass a stream. */
  stdout?: NodeJS.WritableStream & { fd?: number };
  isTTY?: boolean;
}

export interface ProxyLogger {
  logger: Logger;
  /** Writes out anything buffered; called at shutdown. */
  flush(): Promise<void>;
  /**
   * Writes a finished info-level JSON line, in pino's shape, to every destination that takes info lines,
   * redacted like every other line: for the one line per request, serialised by a template rather than
   * by pino's generic walk over an object. Null when lines are formatted for a terminal (pino-pretty).
   */
  writeInfoLine: ((line: string) => void) | null;
  /** The same for a finished warn-level line (the warning of a failed authentication). */
  writeWarnLine: ((line: string) => void) | null;
}

/** JSON lines under load: a write per batch of lines rather than per line (see LineBatcher). */
const LOG_BATCH = { maxBytes: 16 * 1024, maxDelayMs: 25 };

function batched(destination: DestinationStream): DestinationStream {
  return new LineBatcher(destination, LOG_BATCH);
}

export async function createLogger(opts: LoggerOptions): Promise<ProxyLogger> {
  const tty = opts.isTTY ?? Boolean(process.stdout.isTTY);
  const usePretty = opts.format === 'pretty' || (opts.format === 'auto' && tty);
  const fileDest = opts.file
    ? // Opened here rather than by path in sonic-boom: private mode, no symbolic link (README, Logs).
      batched(pino.destination({ dest: openPrivateAppend('log file (--log-file)', opts.file), sync: false }))
    : null;
  // pino-pretty is loaded only for a terminal: JSON-lines deployments never pay its memory.
  const pretty = usePretty ? (await import('pino-pretty')).default : null;
  const consoleDest: DestinationStream = pretty
    ? pretty({
        colorize: tty,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
        destination: opts.stdout ?? 1,
        sync: true,
      })
    : opts.stdout
      ? (opts.stdout as DestinationStream)
      : batched(pino.destination({ dest: 1, sync: false }));
  const streams = [{ stream: consoleDest, level: opts.level as Level }];
  if (fileDest) streams.push({ stream: fileDest, level: opts.level as Level });
  const logger = pino(
    {
      level: opts.level,
      base: undefined,
      ...redactingLoggerOptions(opts.redactor),
    },
    streams.length === 1 ? consoleDest : pino.multistream(streams),
  );
  const redact = lineRedactor(opts.redactor);
  /** A writer of finished lines at `level` (redacted), or null for a terminal (pino-pretty formats there). */
  const lineWriter = (level: 'info' | 'warn'): ((line: string) => void) | null => {
    if (pretty) return null;
    // 'silent' has no number: it takes nothing.
    const takes = (pino.levels.values[opts.level] ?? Infinity) <= pino.levels.values[level]!;
    const destinations = takes ? streams.map((s) => s.stream) : [];
    return (line: string): void => {
      const safe = redact(line);
      for (const destination of destinations) destination.write(safe);
    };
  };
  const writeInfoLine = lineWriter('info');
  const writeWarnLine = lineWriter('warn');
  const flush = async (): Promise<void> => {
    for (const dest of [consoleDest, fileDest]) {
      const sonic = dest as unknown as { flushSync?: () => void; fd?: number };
      try {
        sonic?.flushSync?.();
      } catch {
        // A destination that is not ready (still opening) has nothing to flush.
      }
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  };
  return { logger, flush, writeInfoLine, writeWarnLine };
}
