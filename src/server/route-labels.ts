/**
 * The `route` label of a request no route took (README, Endpoints: `/metrics`): the pattern of a route that
 * serves its path with another method (`GET /v1/chat/completions`, `POST /v1/responses/{id}`), or `unmatched`
 * for a path no route serves. Labels are route patterns only, never a request's own path, so the label set
 * is as small as the route table however many paths clients make up.
 */
export const UNMATCHED = 'unmatched';

/** Characters a RegExp reads specially, escaped in the literal parts of a pattern. */
const SPECIAL = /[.+?^${}()|[\]\\]/g;

/**
 * A route pattern as the routers write it, as a RegExp over a path: `:name` is one segment, `*` any run of
 * characters (Fastify's at the end, the chat lane's also inside one, `/v1beta/models/*:countTokens`).
 */
function patternRegExp(pattern: string): RegExp {
  const source = pattern
    .split('/')
    .map((segment) =>
      segment.startsWith(':')
        ? '[^/]+'
        : segment
            .split('*')
            .map((part) => part.replace(SPECIAL, '\\$&'))
            .join('.*'),
    )
    .join('/');
  return new RegExp(`^${source}$`);
}

export class RouteLabels {
  private readonly patterns: Array<{ label: string; path: RegExp }> = [];

  /** A route's pattern; earlier ones win, so a narrower one goes first (as in the chat lane's table). */
  add(pattern: string): void {
    // A catch-all (the CORS pre-flight's `*`) serves every path: it would name them all.
    if (pattern === '*' || pattern === '/*') return;
    if (this.patterns.some((p) => p.label === pattern)) return;
    this.patterns.push({ label: pattern, path: patternRegExp(pattern) });
  }

  /** The label of a request URL (its query ignored) that no route of its method took. */
  labelOf(url: string): string {
    const queryStart = url.indexOf('?');
    const path = queryStart < 0 ? url : url.slice(0, queryStart);
    for (const { label, path: test } of this.patterns) if (test.test(path)) return label;
    return UNMATCHED;
  }
}
