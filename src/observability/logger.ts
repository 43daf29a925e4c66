import pino, { type DestinationStream, type Level, type Logger } from 'pino';
import pretty from 'pino-pretty';

export interface LoggerOptions {
  level: string;
  file?: string | undefined;
  format: 'auto' | 'json' | 'pretty';
  /**
   * Scrubs every serialised line before it is written: the one place where redaction applies to logs, so
   * messages, objects, errors and stack traces are all covered. A getter, because keys rotate.
   */
  redact: () => (line: string) => string;
  /** Where console output goes (stdout by default); tests pass a stream. */
  stdout?: NodeJS.WritableStream & { fd?: number };
  isTTY?: boolean;
}

export interface ProxyLogger {
  logger: Logger;
  /** Writes out anything buffered; called at shutdown. */
  flush(): Promise<void>;
}

export function createLogger(opts: LoggerOptions): ProxyLogger {
  const tty = opts.isTTY ?? Boolean(process.stdout.isTTY);
  const usePretty = opts.format === 'pretty' || (opts.format === 'auto' && tty);
  const fileDest = opts.file ? pino.destination({ dest: opts.file, mkdir: true, sync: false }) : null;
  const consoleDest: DestinationStream = usePretty
    ? pretty({
        colorize: tty,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
        destination: opts.stdout ?? 1,
        sync: true,
      })
    : opts.stdout
      ? (opts.stdout as DestinationStream)
      : pino.destination({ dest: 1, sync: false });
  const streams = [{ stream: consoleDest, level: opts.level as Level }];
  if (fileDest) streams.push({ stream: fileDest, level: opts.level as Level });
  const logger = pino(
    {
      level: opts.level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: { streamWrite: (line: string) => opts.redact()(line) },
    },
    streams.length === 1 ? consoleDest : pino.multistream(streams),
  );
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
  return { logger, flush };
}
