/**
 * A provider key pool (README, Routes and failover): `*_API_KEY` with `*_API_KEY_1 … _N` beside it, or a
 * backend's `api_key_envs` (built-in or custom). Requests rotate over the keys; a key answered 401 or 403 is taken out of
 * rotation; one answered 429 rests for its `Retry-After`. The request that met the refusal is sent again
 * with the next ready key (`HttpBackend.chat`), so the client sees the pool's answer, not one key's. Keys
 * are known by their env var's name, never their value.
 */
export interface PoolKey {
  /** The env var that holds it: what logs and /internal/health show. */
  readonly name: string;
  readonly value: string;
}

export interface PoolKeyView {
  readonly key: string;
  readonly state: 'ready' | 'resting' | 'out';
}

/**
 * A key leaving the rotation (README, Routes and failover): refused (`out`, for good) or rate-limited
 * (`resting`, for `restS`). Named by its env var and its place in the pool (1-based), never its value.
 */
export interface PoolKeyLeave {
  readonly key: string;
  readonly position: number;
  readonly state: 'out' | 'resting';
  readonly status: number;
  /** How long it rests (`resting` only). */
  readonly restS?: number;
}

/** A 429 without a `Retry-After` rests the key this long. */
const DEFAULT_REST_MS = 1000;

/** The env vars of a built-in backend's pool: `NAME`, then `NAME_1`, `NAME_2` … while they are set. */
export function poolEnvNames(env: NodeJS.ProcessEnv, keyEnv: string): string[] {
  const names = env[keyEnv] ? [keyEnv] : [];
  for (let i = 1; env[`${keyEnv}_${i}`]; i++) names.push(`${keyEnv}_${i}`);
  return names;
}

export class KeyPool {
  private next = 0;
  private readonly out: boolean[];
  private readonly restUntil: number[];
  /** How often each key left the rotation, out and resting (shown on /metrics). */
  private readonly left: Array<{ out: number; resting: number }>;

  constructor(
    readonly keys: readonly PoolKey[],
    private readonly now: () => number = Date.now,
    /** Told when a key leaves the rotation: once as it goes out, once per rest it begins. */
    private readonly onLeave?: (leave: PoolKeyLeave) => void,
  ) {
    this.out = keys.map(() => false);
    this.restUntil = keys.map(() => 0);
    this.left = keys.map(() => ({ out: 0, resting: 0 }));
  }

  /**
   * The key for the next request: the next in rotation that is neither out nor resting. When none is, the
   * one whose rest ends first (callers ask `restingFor` first: the pool answers for resting keys itself); a
   * key taken out is used only when all are out: the provider's 401 then reaches the client, as without a
   * pool.
   */
  take(): number {
    const n = this.keys.length;
    const now = this.now();
    for (let i = 0; i < n; i++) {
      const index = (this.next + i) % n;
      if (!this.out[index] && this.restUntil[index]! <= now) {
        this.next = (index + 1) % n;
        return index;
      }
    }
    let best = -1;
    for (let i = 0; i < n; i++) {
      if (!this.out[i] && (best < 0 || this.restUntil[i]! < this.restUntil[best]!)) best = i;
    }
    const index = best >= 0 ? best : this.next;
    this.next = (index + 1) % n;
    return index;
  }

  /**
   * When no key is ready but one rests (none ready, not all out): the milliseconds until the first rest
   * ends — the pool answers 429 itself meanwhile rather than send a key the provider just refused. Null
   * otherwise.
   */
  restingFor(): number | null {
    const now = this.now();
    let soonest = Infinity;
    for (let i = 0; i < this.keys.length; i++) {
      if (this.out[i]) continue;
      const until = this.restUntil[i]!;
      if (until <= now) return null;
      soonest = Math.min(soonest, until);
    }
    return soonest === Infinity ? null : soonest - now;
  }

  /** Whether some key is neither out nor resting: a refused request may be sent again with it. */
  hasReady(): boolean {
    const now = this.now();
    for (let i = 0; i < this.keys.length; i++) if (!this.out[i] && this.restUntil[i]! <= now) return true;
    return false;
  }

  /** What the provider answered with key `index`. */
  report(index: number, status: number, retryAfterS: number | null): void {
    if (status === 401 || status === 403) {
      if (this.out[index]) return;
      this.out[index] = true;
      this.left[index]!.out += 1;
      this.onLeave?.({ key: this.keys[index]!.name, position: index + 1, state: 'out', status });
    } else if (status === 429) {
      const now = this.now();
      const restMs = retryAfterS === null ? DEFAULT_REST_MS : retryAfterS * 1000;
      const wasResting = this.restUntil[index]! > now;
      this.restUntil[index] = now + restMs;
      if (wasResting || this.out[index]) return;
      this.left[index]!.resting += 1;
      this.onLeave?.({
        key: this.keys[index]!.name,
        position: index + 1,
        state: 'resting',
        status,
        restS: restMs / 1000,
      });
    }
  }

  /** How often each key left the rotation, by how (out, resting). */
  leaves(): Array<{ key: string; out: number; resting: number }> {
    return this.keys.map((k, i) => ({ key: k.name, ...this.left[i]! }));
  }

  view(): PoolKeyView[] {
    const now = this.now();
    return this.keys.map((k, i) => ({
      key: k.name,
      state: this.out[i] ? 'out' : this.restUntil[i]! > now ? 'resting' : 'ready',
    }));
  }
}
