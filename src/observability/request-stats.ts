/**
 * Request counts and durations, kept as plain numbers on the request path and turned into Prometheus
 * samples only when /metrics is scraped. prom-client's labelled metrics validate and hash their labels on
 * every call, a cost on the hot path, for series whose labels come from the route table and the backend
 * names and never change (docs/performance.md).
 *
 * The two metrics are registered in a prom-client registry as objects of its metric shape (name, help,
 * type, `get`), so /metrics prints them exactly as a prom-client Counter and Histogram would.
 */

/** prom-client's exported sample: `labels` print in their key order. */
interface Sample {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}

interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: Sample[];
  aggregator: 'sum';
}

/** What a prom-client registry needs of a metric (`registry.registerMetric`). */
export interface RegistrableMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<MetricData>;
  reset(): void;
}

interface StatusCount {
  readonly series: Series;
  readonly status: string;
  count: number;
}

/** One route and backend: its answers by status and its duration histogram (bucket i counts values ≤ bound i). */
interface Series {
  readonly route: string;
  readonly backend: string;
  readonly byStatus: Map<number, StatusCount>;
  readonly buckets: number[];
  sum: number;
  count: number;
}

export interface RequestStatsOptions {
  requestsName: string;
  requestsHelp: string;
  durationName: string;
  durationHelp: string;
  /** Upper bounds in seconds, ascending. */
  buckets: readonly number[];
}

export class RequestStats {
  /** route → backend → series: two Map lookups a request, no key built. */
  private byRoute = new Map<string, Map<string, Series>>();
  /** First seen first, as prom-client prints its label sets. */
  private seriesList: Series[] = [];
  private statusList: StatusCount[] = [];
  private readonly bounds: readonly number[];
  readonly requests: RegistrableMetric;
  readonly duration: RegistrableMetric;

  constructor(opts: RequestStatsOptions) {
    this.bounds = [...opts.buckets];
    const reset = (): void => {
      this.byRoute = new Map();
      this.seriesList = [];
      this.statusList = [];
    };
    this.requests = metric(
      opts.requestsName,
      opts.requestsHelp,
      'counter',
      () => this.counterSamples(),
      reset,
    );
    this.duration = metric(
      opts.durationName,
      opts.durationHelp,
      'histogram',
      () => this.histogramSamples(opts.durationName),
      reset,
    );
  }

  observe(route: string, backend: string, status: number, seconds: number): void {
    let backends = this.byRoute.get(route);
    if (backends === undefined) {
      backends = new Map();
      this.byRoute.set(route, backends);
    }
    let series = backends.get(backend);
    if (series === undefined) {
      series = { route, backend, byStatus: new Map(), buckets: this.bounds.map(() => 0), sum: 0, count: 0 };
      backends.set(backend, series);
      this.seriesList.push(series);
    }
    let answered = series.byStatus.get(status);
    if (answered === undefined) {
      answered = { series, status: String(status), count: 0 };
      series.byStatus.set(status, answered);
      this.statusList.push(answered);
    }
    answered.count++;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > (bounds[i] as number)) i++;
    if (i < bounds.length) series.buckets[i] = (series.buckets[i] as number) + 1;
    series.sum += seconds;
    series.count++;
  }

  private counterSamples(): Sample[] {
    return this.statusList.map(({ series, status, count }) => ({
      labels: { route: series.route, backend: series.backend, status },
      value: count,
    }));
  }

  /** Cumulative buckets, then +Inf, _sum and _count per series, in prom-client's order and label order. */
  private histogramSamples(name: string): Sample[] {
    const out: Sample[] = [];
    for (const s of this.seriesList) {
      const labels = { route: s.route, backend: s.backend };
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += s.buckets[i] as number;
        out.push({ metricName: `${name}_bucket`, labels: { le: bound, ...labels }, value: cumulative });
      });
      out.push(
        { metricName: `${name}_bucket`, labels: { le: '+Inf', ...labels }, value: s.count },
        { metricName: `${name}_sum`, labels, value: s.sum },
        { metricName: `${name}_count`, labels, value: s.count },
      );
    }
    return out;
  }
}

function metric(
  name: string,
  help: string,
  type: 'counter' | 'histogram',
  samples: () => Sample[],
  reset: () => void,
): RegistrableMetric {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    get: () => Promise.resolve({ name, help, type, values: samples(), aggregator: 'sum' }),
    reset,
  };
}
