import type { Logger } from 'pino';
import type { ProxyMetrics } from '../observability/metrics.js';
import type { RequestState } from './state.js';

/** One answered request, as the access log and the metrics record it. */
export interface AccessEntry {
  id: string;
  method: string;
  /** The URL as received; only its path is logged (a query may carry a credential). */
  url: string;
  status: number;
  /** The route pattern (a bounded metric label), or `unmatched`. */
  route: string;
  state: RequestState | null;
  keyName: string | null;
  client: string | undefined;
}

export type AccessRecorder = (entry: AccessEntry, endedAt: number) => void;

/** The one access line per request (level info) and the request metrics, for both server paths. */
export function createAccessRecorder(logger: Logger, metrics: ProxyMetrics): AccessRecorder {
  return (entry, endedAt) => {
    const state = entry.state;
    const durationMs = state ? endedAt - state.start : 0;
    metrics.observeRequest(entry.route, state?.backend ?? '', entry.status, durationMs / 1000);
    const queryStart = entry.url.indexOf('?');
    logger.info(
      {
        request_id: entry.id,
        method: entry.method,
        path: queryStart < 0 ? entry.url : entry.url.slice(0, queryStart),
        status: entry.status,
        duration_ms: Math.round(durationMs * 1000) / 1000,
        backend: state?.backend ?? undefined,
        model: state?.model ?? undefined,
        key_name: entry.keyName ?? undefined,
        client: entry.client,
      },
      'request',
    );
  };
}
