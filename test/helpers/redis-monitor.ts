import { createConnection, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';

/**
 * Redis's MONITOR read over a plain socket. ioredis's `monitor()` is not used: its connection switches to
 * "monitoring" a tick after Redis already relays commands on it, and a command relayed in that gap fails
 * the connection with "Command queue state error" (seen in CI). Here the socket is in monitor mode from its
 * first line on, and every relayed line is parsed as Redis writes it (`sdscatrepr` quoting).
 */
export interface RedisMonitor {
  /** The commands clients sent since the monitor was on (what Lua scripts run inside Redis left out). */
  readonly commands: string[][];
  /** Waits until every command a client sent before this call has been relayed. */
  settle(): Promise<void>;
  close(): void;
}

/** One relayed line: `+<time> [<db> <source>] "<arg>" "<arg>" …`; `source` is `lua` inside scripts. */
export function parseMonitorLine(line: string): { source: string; args: string[] } | null {
  const open = line.indexOf('[');
  const close = line.indexOf(']', open);
  if (!line.startsWith('+') || open < 0 || close < 0) return null;
  const source = line.slice(open + 1, close).split(' ')[1] ?? '';
  const args: string[] = [];
  let i = close + 1;
  while (i < line.length) {
    if (line[i] !== '"') {
      i++;
      continue;
    }
    const bytes: number[] = [];
    i++;
    while (i < line.length && line[i] !== '"') {
      if (line[i] === '\\') {
        const next = line[i + 1];
        if (next === 'x') {
          bytes.push(parseInt(line.slice(i + 2, i + 4), 16));
          i += 4;
          continue;
        }
        bytes.push(ESCAPES[next ?? ''] ?? (next ?? '').charCodeAt(0));
        i += 2;
        continue;
      }
      bytes.push(line.charCodeAt(i));
      i++;
    }
    args.push(Buffer.from(bytes).toString('utf8'));
    i++;
  }
  return { source, args };
}

const ESCAPES: Record<string, number> = { n: 10, r: 13, t: 9, a: 7, b: 8 };

/** Opens a MONITOR connection to the Redis on `port` and resolves once it relays commands. */
export async function startRedisMonitor(port: number): Promise<RedisMonitor> {
  const socket = createConnection({ host: '127.0.0.1', port });
  const commands: string[][] = [];
  const waiters = new Map<string, () => void>();
  let pending = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    let end: number;
    while ((end = pending.indexOf('\r\n')) >= 0) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 2);
      const parsed = parseMonitorLine(line);
      if (parsed === null || parsed.source === 'lua') continue;
      const marker = parsed.args[0]?.toLowerCase() === 'echo' ? parsed.args[1] : undefined;
      const waiter = marker === undefined ? undefined : waiters.get(marker);
      if (waiter !== undefined) {
        waiters.delete(marker!);
        waiter();
      } else commands.push(parsed.args);
    }
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', () => {});
  socket.write('MONITOR\r\n');

  /** A marker sent on a connection of its own, relayed after what other clients sent before it. */
  const settle = async (): Promise<void> => {
    const marker = `monitor-marker-${randomUUID()}`;
    const heard = new Promise<void>((resolve) => waiters.set(marker, resolve));
    const sender = await connect(port);
    try {
      sender.write(`ECHO ${marker}\r\n`);
      await heard;
    } finally {
      sender.destroy();
    }
  };
  await settle();
  commands.length = 0;
  return { commands, settle, close: () => socket.destroy() };
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('error', reject);
    socket.once('connect', () => resolve(socket));
    socket.on('data', () => {});
  });
}

/** The commands clients send to the Redis on `port` while `run` runs (MONITOR; scripts' own left out). */
export async function redisCommandsDuring(port: number, run: () => Promise<void>): Promise<string[][]> {
  const monitor = await startRedisMonitor(port);
  try {
    await run();
    await monitor.settle();
    return [...monitor.commands];
  } finally {
    monitor.close();
  }
}
