/**
 * The capture worker thread: redacts the lines the proxy records (a stream's text, which its stream
 * redacted, only where JSON-encoding could form a secret: see redactLine) and writes them to the capture
 * file, off the event loop that serves clients. Started by WorkerCaptureWriter; see there.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Redactor } from '../redaction/redactor.js';
import type { CaptureWorkerData, FromCaptureWorker, ToCaptureWorker } from './worker-protocol.js';
import { CaptureStreams, PieceCache, readEventFrames, redactLine, type FramedLine } from './event-frames.js';
import { CaptureStamps } from './stamps.js';
import { CaptureWriter } from './writer.js';

const port = parentPort!;
const data = workerData as CaptureWorkerData;
const post = (message: FromCaptureWorker): void => port.postMessage(message);

let redactor = new Redactor();
const pieces = new PieceCache();
/** The lines' stamps: the proxy sends each event's time; sequence numbers are given here, in order. */
const stamps = new CaptureStamps();
const streams = new CaptureStreams();
/**
 * Each batch received: where its lines end, counted over every line read (it is settled once that many
 * are written or lost). Its buffer goes back as soon as it is read (see acknowledge).
 */
const batchEnds: number[] = [];
let received = 0;
/** Entries lost before reaching the writer (a redaction that threw). */
let lost = 0;
let settled = 0;

/**
 * Tells the proxy which batches are settled, and hands back `read`, a batch's buffer read already: at once,
 * not once its lines are written — the proxy, out of buffers, would allocate one, and a buffer moved to this
 * thread fresh costs the proxy's event loop several times what one it had before does.
 */
function acknowledge(read?: ArrayBuffer): void {
  let batches = 0;
  while (batchEnds.length > 0 && batchEnds[0]! <= settled + lost) {
    batchEnds.shift();
    batches++;
  }
  const buffers = read === undefined ? [] : [read];
  if (batches > 0 || read !== undefined)
    port.postMessage({ type: 'settled', batches, buffers } satisfies FromCaptureWorker, buffers);
}

const writer = new CaptureWriter({
  path: data.path,
  maxBytes: data.maxBytes,
  maxFiles: data.maxFiles,
  // The proxy bounds what it has sent and not yet seen settled; the worker holds no more than that.
  maxQueueBytes: Infinity,
  maxQueueEntries: Infinity,
  onDrop: (info) =>
    post({ type: 'drop', reason: info.reason, entries: info.entries, error: describe(info.error) }),
  onProgress: (count) => {
    settled = count;
    acknowledge();
  },
});

port.on('message', (message: ToCaptureWorker) => {
  switch (message.type) {
    case 'lines': {
      let lines: FramedLine[];
      try {
        const bytes = Buffer.from(message.buffer, 0, message.length);
        lines = readEventFrames(bytes, message.length, pieces, { stamps, redactor, streams });
      } catch (error) {
        // Never expected (the proxy wrote these frames); counted as lost rather than guessed at.
        lines = [];
        post({ type: 'drop', reason: 'unserialisable', entries: message.entries, error: describe(error) });
      }
      received += lines.length;
      batchEnds.push(received);
      for (const line of lines) {
        let redacted: string | readonly string[];
        try {
          redacted = redactLine(line, redactor);
        } catch (error) {
          lost++;
          post({ type: 'drop', reason: 'unserialisable', entries: 1, error: describe(error) });
          continue;
        }
        writer.writeLine(redacted);
      }
      acknowledge(message.buffer);
      break;
    }
    case 'secrets':
      redactor = new Redactor(message.secrets);
      break;
    case 'flush':
      void writer.flush().then(() => post({ type: 'flushed', id: message.id }));
      break;
    case 'close':
      void writer.close().then(() => port.close());
      break;
  }
});

function describe(error: unknown): { message: string; code?: string } | undefined {
  if (error === undefined) return undefined;
  const code = (error as { code?: unknown }).code;
  return {
    message: error instanceof Error ? error.message : String(error),
    ...(typeof code === 'string' ? { code } : {}),
  };
}
