import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { KeySet, hashKey, weakKeyReason, weakKeyWarning, type KeyEntry, type KeyGrant } from './keys.js';

export type ReloadResult = { ok: true; keys: number } | { ok: false; error: string };

export interface ReloadLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  /** Weak keys (see `weakKeyReason`); without it they are not reported. */
  warn?(obj: object, msg: string): void;
}

export interface KeyReloaderOptions {
  /** The keys in use at start (already validated by the caller, which turns errors into startup errors). */
  initial: readonly KeyEntry[];
  /**
   * Reads every key source again. Throws an Error whose message is safe to log: it names the file and line,
   * never a key.
   */
  load: () => KeyEntry[];
  /** A keys file to reload on change (the directory is watched: editors replace files). */
  watchFile?: string | undefined;
  log: ReloadLogger;
  /** Quiet time after the last change event before reloading (default 100 ms). */
  debounceMs?: number;
  /** Signal that triggers a reload (default SIGHUP); null for none. */
  signal?: NodeJS.Signals | null;
}

const DEFAULT_DEBOUNCE_MS = 100;

function plaintextOf(entries: readonly KeyEntry[]): string[] {
  return entries.flatMap((entry) => ('key' in entry ? [entry.key] : []));
}

/** Tells one weak key from another without holding it: its name and digest. */
function weakKeyId(entry: KeyEntry): string {
  return `${entry.name}\0${'key' in entry ? hashKey(entry.key) : entry.sha256.toLowerCase()}`;
}

/** A digest of the file's bytes, or of why it cannot be read, to tell a real change from a touch. */
function fingerprint(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch (err) {
    return `unreadable:${(err as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}

/**
 * The proxy keys in use, swapped atomically on reload (README, Deployment: rotating proxy keys). The gate reads `keys` on every
 * request, so a removed key stops working at the next request while requests already authenticated carry
 * on. A reload that fails — unreadable or malformed source, a key over 1 KiB, or no key left — keeps the
 * old keys and logs an ERROR naming the line or the key (never quoting a key). Weak keys (`weakKeyReason`)
 * are logged as a WARNING each, by name: at construction (startup), and on reload when a key is newly weak.
 */
export class KeyReloader {
  private current: KeySet;
  private currentEntries: readonly KeyEntry[];
  private plaintext: readonly string[];
  /**
   * Keys configured by their digest, learnt when a client presented them (by their hex digest): redacted as
   * plaintext keys are. Kept across reloads while their digest is still configured.
   */
  private learned = new Map<string, string>();
  /** The grants of the keys in use whose key is learnt: one set lookup a request once it is. */
  private learnedGrants = new WeakSet<KeyGrant>();
  private names: readonly string[];
  private readonly listeners: Array<() => void> = [];
  private readonly secretListeners: Array<() => void> = [];
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private fileFingerprint = '';
  private readonly signal: NodeJS.Signals | null;
  private readonly onSignal = () => void this.reload(this.signal ?? 'signal');
  private lastError: string | null = null;
  /** The weak keys already warned about (see {@link weakKeyId}). */
  private weak: ReadonlySet<string> = new Set();

  constructor(private readonly options: KeyReloaderOptions) {
    this.signal = options.signal === undefined ? 'SIGHUP' : options.signal;
    this.current = new KeySet(options.initial);
    this.currentEntries = options.initial;
    this.plaintext = plaintextOf(options.initial);
    this.names = options.initial.map((entry) => entry.name);
    this.warnWeakKeys(options.initial);
  }

  get keys(): KeySet {
    return this.current;
  }

  /** The entries behind `keys` (attributes and limits included), for the teams policies. */
  get entries(): readonly KeyEntry[] {
    return this.currentEntries;
  }

  /** Every plaintext key in use, and every key configured by its digest that a client presented. */
  secrets(): readonly string[] {
    return this.plaintext;
  }

  /** Called whenever `secrets()` changes: after a successful reload, and when a key is learnt. */
  onSecretsChanged(listener: () => void): void {
    this.secretListeners.push(listener);
  }

  /**
   * `key` was presented and matched `grant`, a key configured by its digest: from now on it is a secret the
   * redactor knows. The first time per key and key set only; after that, one set lookup.
   */
  learn(grant: KeyGrant, key: string): void {
    if (!grant.hashed || this.learnedGrants.has(grant)) return;
    this.learnedGrants.add(grant);
    const digest = hashKey(key);
    if (this.learned.has(digest)) return;
    this.learned.set(digest, key);
    this.plaintext = [...plaintextOf(this.currentEntries), ...this.learned.values()];
    for (const listener of this.secretListeners) listener();
  }

  /** The error of the last reload, or null if it succeeded (or none happened). */
  get lastReloadError(): string | null {
    return this.lastError;
  }

  /** Called after every successful reload. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  reload(trigger: string): ReloadResult {
    let next: KeySet;
    let entries: KeyEntry[];
    try {
      entries = this.options.load();
      if (entries.length === 0) throw new Error('no proxy key would be left');
      next = new KeySet(entries);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.lastError = error;
      this.options.log.error(
        { trigger, keys: this.current.size },
        `Proxy keys not reloaded (${trigger}): ${error}; the ${this.current.size} keys in use stay in use`,
      );
      return { ok: false, error };
    }
    const names = entries.map((entry) => entry.name);
    const added = names.filter((name) => !this.names.includes(name));
    const removed = this.names.filter((name) => !names.includes(name));
    this.current = next;
    this.currentEntries = entries;
    // A learnt key stays learnt while its digest is configured; the new set's grants are looked up afresh.
    const digests = new Set(
      entries.flatMap((entry) => ('sha256' in entry ? [entry.sha256.toLowerCase()] : [])),
    );
    this.learned = new Map([...this.learned].filter(([digest]) => digests.has(digest)));
    this.learnedGrants = new WeakSet();
    this.plaintext = [...plaintextOf(entries), ...this.learned.values()];
    this.names = names;
    this.lastError = null;
    this.options.log.info(
      { trigger, keys: next.size, added, removed },
      `Proxy keys reloaded (${trigger}): ${next.size} keys`,
    );
    this.warnWeakKeys(entries);
    for (const listener of this.listeners) listener();
    for (const listener of this.secretListeners) listener();
    return { ok: true, keys: next.size };
  }

  /** One WARNING per weak key not warned about before (by name and digest: a weak key replaced is new). */
  private warnWeakKeys(entries: readonly KeyEntry[]): void {
    const weak = new Set<string>();
    for (const entry of entries) {
      const reason = weakKeyReason(entry);
      if (reason === null) continue;
      const id = weakKeyId(entry);
      weak.add(id);
      if (!this.weak.has(id))
        this.options.log.warn?.({ keyName: entry.name }, weakKeyWarning(entry.name, reason));
    }
    this.weak = weak;
  }

  /** Starts watching the keys file and listening for the reload signal. */
  start(): void {
    if (this.signal !== null) process.on(this.signal, this.onSignal);
    const file = this.options.watchFile;
    if (file === undefined) return;
    const target = resolve(file);
    const name = basename(target);
    this.fileFingerprint = fingerprint(target);
    try {
      this.watcher = watch(dirname(target), { persistent: false }, (_event, changed) => {
        // Some platforms omit the name; Kubernetes swaps a `..data` symlink: check the content either way.
        if (changed !== null && changed !== name && !changed.startsWith('..')) return;
        this.scheduleFileCheck(target);
      });
      this.watcher.on('error', (err) => this.watchFailed(target, err));
    } catch (err) {
      this.watchFailed(target, err);
    }
  }

  close(): void {
    if (this.signal !== null) process.off(this.signal, this.onSignal);
    if (this.debounce !== null) clearTimeout(this.debounce);
    this.debounce = null;
    this.watcher?.close();
    this.watcher = null;
  }

  private scheduleFileCheck(target: string): void {
    if (this.debounce !== null) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      const now = fingerprint(target);
      if (now === this.fileFingerprint) return;
      this.fileFingerprint = now;
      this.reload('keys file changed');
    }, this.options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    this.debounce.unref();
  }

  private watchFailed(target: string, err: unknown): void {
    this.options.log.error(
      { file: target, err: err instanceof Error ? err.message : String(err) },
      'Cannot watch the keys file for changes: reload with SIGHUP or POST /admin/reload instead',
    );
  }
}
