import { Redis, type RedisOptions } from 'ioredis';

type SendCommand = Redis['sendCommand'];
type Command = Parameters<SendCommand>[0];

/**
 * A client whose command timeout is not fooled by a busy event loop. ioredis's own timer fires in the timers
 * phase, before the poll phase reads the socket: after the process was stalled for longer than the timeout
 * (a CPU-starved host, a long synchronous task), every command in flight timed out although its reply had
 * long arrived, and a replica fell back to memory under load alone. Here the expired timer waits for one
 * poll phase (setImmediate) and times the command out only if its reply is still missing then.
 */
class PatientRedis extends Redis {
  /** Set after super(): the constructor may start connecting, but sends no command before it returns. */
  private deadlineMs = 0;

  constructor(url: string, options: RedisOptions, deadlineMs: number) {
    super(url, options);
    this.deadlineMs = deadlineMs;
  }

  override sendCommand(command: Command, stream?: Parameters<SendCommand>[1]): unknown {
    const sent = super.sendCommand(command, stream);
    if (this.deadlineMs > 0 && !command.isResolved) {
      const timer = setTimeout(() => {
        setImmediate(() => {
          if (!command.isResolved) command.reject(new Error('Command timed out'));
        });
      }, this.deadlineMs);
      const clear = () => clearTimeout(timer);
      command.promise.then(clear, clear);
    }
    return sent;
  }
}

/**
 * One connection to the Redis that replicas share (README, "Shared state"), used by every store built on
 * it. Commands fail fast rather than queue: while Redis is down or slow, a caller gets an error within
 * `commandTimeoutMs` and can fall back to memory (see `Fallback`, fallback.ts).
 */
export interface RedisConnectionOptions {
  /** `redis://[:password@]host:port/db` or `rediss://…`. */
  url: string;
  /** Longest wait for one command: a stalled Redis must not stall a request (default 250 ms). */
  commandTimeoutMs?: number;
  /** Longest wait to (re)connect (default 1000 ms). */
  connectTimeoutMs?: number;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 250;
const DEFAULT_CONNECT_TIMEOUT_MS = 1000;
const MAX_RECONNECT_DELAY_MS = 2000;

/** The URL with any password replaced, for logs and `/internal/health`. */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '****';
    if (parsed.username && parsed.password === '') parsed.username = '****';
    return parsed.toString();
  } catch {
    return 'redis://(unparseable URL)';
  }
}

export class RedisConnection {
  /** Where it points, without credentials. */
  readonly description: string;
  readonly client: Redis;
  /** Until the first connection attempt settles, commands wait for it instead of failing at once. */
  private firstConnection: Promise<boolean> | null;
  private lastConnectionError: string | null = null;
  private closed = false;

  constructor(options: RedisConnectionOptions) {
    this.description = describeRedisUrl(options.url);
    const redisOptions: RedisOptions = {
      // No `commandTimeout`: PatientRedis times commands out itself.
      connectTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      // Fail fast instead of queueing while disconnected, and never replay a command after a reconnect:
      // a decision (an authentication, a limit) is only useful now.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    };
    const client = new PatientRedis(
      options.url,
      redisOptions,
      options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    );
    // Connection errors surface as rejected commands (see `connected`); the stores' owners log them, throttled.
    client.on('error', (err: Error) => {
      this.lastConnectionError = err.message;
    });
    client.on('ready', () => {
      this.lastConnectionError = null;
    });
    this.client = client;
    this.firstConnection = this.waitUntilReady(redisOptions.connectTimeout as number, true).finally(() => {
      this.firstConnection = null;
    });
  }

  /**
   * Defines a Lua script as a command on the client (EVALSHA, loaded on first use), once: several stores may
   * share the connection. With `numberOfKeys` null, each call passes the number of keys first.
   */
  defineScript(name: string, numberOfKeys: number | null, lua: string): void {
    const existing = (this.client as unknown as Record<string, unknown>)[name];
    if (typeof existing === 'function') return;
    this.client.defineCommand(name, numberOfKeys === null ? { lua } : { numberOfKeys, lua });
  }

  /** Resolves when Redis answers PING within the command timeout; rejects otherwise. */
  async ping(): Promise<void> {
    await this.connected();
    await this.client.ping();
  }

  /** Fails at once, with the reason, while there is no connection (ioredis would only say "not writeable"). */
  async connected(): Promise<void> {
    if (this.firstConnection !== null) await this.firstConnection;
    if (this.client.status !== 'ready') {
      const reason = this.lastConnectionError ?? this.client.status;
      throw new Error(`not connected to Redis (${reason})`);
    }
  }

  /**
   * Waits for the connection to be ready, up to `timeoutMs`; false if it is not by then, or, with
   * `untilFirstError`, as soon as a connection attempt fails (a refused connection need not wait).
   */
  waitUntilReady(timeoutMs: number, untilFirstError = false): Promise<boolean> {
    if (this.client.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ready: boolean) => {
        clearTimeout(timer);
        this.client.off('ready', onReady);
        this.client.off('error', onError);
        resolve(ready);
      };
      const onReady = () => done(true);
      const onError = () => {
        if (untilFirstError) done(false);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      this.client.on('ready', onReady);
      this.client.on('error', onError);
    });
  }

  /** Closes the connection (idempotent). */
  close(): Promise<void> {
    if (!this.closed) this.client.disconnect();
    this.closed = true;
    return Promise.resolve();
  }
}
