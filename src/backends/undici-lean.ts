// The parts of undici the proxy uses — a connection pool and its request API — loaded on their own. The
// package's entry point also loads fetch, WebSocket, caches, interceptors, mocks…: about 8 MB more resident
// memory for code the proxy never runs (docs/performance.md: RSS ≤ 120 MB).
// `undici/lib/...` is not undici's public API: its paths and exports may change in any release, patch
// releases included, so package.json pins undici to one exact version (not a ^ range) and an upgrade is a
// deliberate edit that runs the tests against the new paths. A wrong path fails every test at once.
import type { Dispatcher, Pool as UndiciPool } from 'undici';
import PoolModule from 'undici/lib/dispatcher/pool.js';
import apiModule from 'undici/lib/api/index.js';

export const Pool = PoolModule as typeof UndiciPool;
export type Pool = UndiciPool;

const api = apiModule as { request: (this: Dispatcher, options: Dispatcher.RequestOptions) => unknown };

/** `pool.request(options)`: the entry point mixes the request API into every dispatcher; this calls it directly. */
export function poolRequest(
  pool: UndiciPool,
  options: Dispatcher.RequestOptions,
): Promise<Dispatcher.ResponseData> {
  return api.request.call(pool, options) as Promise<Dispatcher.ResponseData>;
}

/** undici's error codes (stable, documented) rather than its classes, which live in the full package. */
export const UNDICI_HEADERS_TIMEOUT = 'UND_ERR_HEADERS_TIMEOUT';
export const UNDICI_BODY_TIMEOUT = 'UND_ERR_BODY_TIMEOUT';
