import type { Logger } from 'pino';
import { jsonQuote } from '../observability/json-line.js';
import type { ProxyMetrics } from '../observability/metrics.js';
import type { RequestState } from '../pipeline/state.js';

/** One answered request, as the access log and the metrics record it. */
export interface AccessEntry {
  id: string;
  method: string;
  /** The URL as received; only its path is logged (a query may carry a credential). */
  url: string;
  status: number;
  /**
   * The route pattern (a bounded metric label): of the route that took the request, else of one serving its
   * path with another method, else `unmatched` (src/server/route-labels.ts).
   */
  route: string;
  state: RequestState | null;
  keyName: string | null;
  client: string | undefined;
}

export type AccessRecorder = (entry: AccessEntry, endedAt: number) => void;

/** The access line's fields, in the order they are logged; undefined ones are left out. */
interface AccessFields {
  request_id: string;
  method: string;
  path: string;
  status: number;
  duration_ms: number;
  backend: string | undefined;
  model: string | undefined;
  key_name: string | undefined;
  client: string | undefined;
  /** Failover's attempts, `element status outcome ms` joined by `; ` (README, Routes and failover). */
  attempts?: string | undefined;
  /** A continued stream's elements that wrote to the answer, in order, joined by `|` (continue_streams). */
  answered_by?: string | undefined;
}

/** The elements that wrote to a continued answer; undefined when no continuation wrote to it. */
function answeredBy(attempts: RequestState['attempts']): string | undefined {
  if (attempts === undefined || !attempts.some((a) => a.outcome === 'continued')) return undefined;
  return attempts
    .filter((a) => a.outcome === 'ok' || a.outcome === 'continued')
    .map((a) => a.element)
    .join('|');
}

function accessFields(entry: AccessEntry, endedAt: number): AccessFields {
  const state = entry.state;
  const durationMs = state ? endedAt - state.start : 0;
  const queryStart = entry.url.indexOf('?');
  return {
    request_id: entry.id,
    method: entry.method,
    path: queryStart < 0 ? entry.url : entry.url.slice(0, queryStart),
    status: entry.status,
    duration_ms: Math.round(durationMs * 1000) / 1000,
    backend: state?.backend ?? undefined,
    model: state?.model ?? undefined,
    key_name: entry.keyName ?? undefined,
    client: entry.client,
    attempts: state?.attempts
      ?.map((a) => `${a.element} ${a.status} ${a.outcome} ${Math.round(a.ms)}ms`)
      .join('; '),
    answered_by: answeredBy(state?.attempts),
  };
}

const quote = jsonQuote;

function optional(name: string, value: string | undefined): string {
  return value === undefined ? '' : `,"${name}":${quote(value)}`;
}

/**
 * The access line as pino writes it at level info (`base` off, `msg` last), built by a template: pino's
 * generic serialiser walks the object, checks serialisers and escapes each value, a measurable share of a
 * proxied request's cost (docs/performance.md). A test holds the two to the same output.
 */
export function formatAccessLine(fields: AccessFields, time: number): string {
  return (
    `{"level":30,"time":${time},"request_id":${quote(fields.request_id)},"method":${quote(fields.method)}` +
    `,"path":${quote(fields.path)},"status":${fields.status},"duration_ms":${fields.duration_ms}` +
    optional('backend', fields.backend) +
    optional('model', fields.model) +
    optional('key_name', fields.key_name) +
    optional('client', fields.client) +
    optional('attempts', fields.attempts) +
    optional('answered_by', fields.answered_by) +
    `,"msg":"request"}\n`
  );
}

/**
 * The one access line per request (level info) and the request metrics, for both server paths.
 * `writeInfoLine` (from the logger) takes the line pre-formatted; without it the line goes through pino.
 */
export function createAccessRecorder(
  logger: Logger,
  metrics: ProxyMetrics,
  writeInfoLine: ((line: string) => void) | null = null,
): AccessRecorder {
  return (entry, endedAt) => {
    const fields = accessFields(entry, endedAt);
    metrics.observeRequest(entry.route, entry.state?.backend ?? '', entry.status, fields.duration_ms / 1000);
    if (writeInfoLine !== null) writeInfoLine(formatAccessLine(fields, Date.now()));
    else logger.info(fields, 'request');
  };
}
