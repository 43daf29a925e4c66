import type { IncomingHttpHeaders } from 'node:http';

/** Paths reachable without a key by default (README, Authentication: Public endpoints). */
export const DEFAULT_BYPASS_PATHS: readonly string[] = ['/health', '/docs', '/docs/*', '/openapi.json'];

/** The public endpoints are read-only pages; other methods on the same paths still need a key. */
const BYPASS_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

/**
 * Characters a path may hold to count as canonical: RFC 3986 unreserved characters and `/`. Anything
 * else (`%`, `\`, `;`, `#`, `:` …) could be decoded, split or normalised differently by the router than by
 * us, so such a path is never public — it simply needs a key.
 */
const CANONICAL_CHARACTERS = /^[A-Za-z0-9\-._~/]*$/;

/**
 * True when `path` is already in the one form every router agrees on: starts with `/`, only unreserved
 * characters, no empty segment (`//`) except a trailing slash, no `.` or `..` segment.
 */
export function isCanonicalPath(path: string): boolean {
  if (!path.startsWith('/') || !CANONICAL_CHARACTERS.test(path)) return false;
  const segments = path.slice(1).split('/');
  const last = segments.length - 1;
  return segments.every(
    (segment, index) => segment !== '.' && segment !== '..' && (segment !== '' || index === last),
  );
}

/**
 * Decides whether a request may skip authentication because of its path (README, Authentication: Public endpoints). Patterns are exact
 * paths or prefixes ending in `/*` (`/docs/*` matches `/docs/` and everything under it, not `/docs`).
 *
 * Instead of normalising the request path (and risking disagreement with the router about what
 * `%2e%2e` or `\` mean), only a raw path that is *already* canonical can match; anything else needs a key.
 */
export class BypassMatcher {
  private readonly exact: ReadonlySet<string>;
  /** Prefixes including their trailing `/`, e.g. `/docs/`. */
  private readonly prefixes: readonly string[];

  constructor(patterns: readonly string[]) {
    const exact = new Set<string>();
    const prefixes: string[] = [];
    for (const pattern of patterns) {
      const isPrefix = pattern.endsWith('/*');
      const path = isPrefix ? pattern.slice(0, -1) : pattern;
      if (!isCanonicalPath(path) || path.includes('*')) {
        throw new Error(
          `invalid bypass path "${pattern}": expected an absolute path like "/health" or a prefix like "/docs/*" ` +
            `(letters, digits, "-._~" only; no "." or ".." segments)`,
        );
      }
      if (isPrefix && path === '/') {
        throw new Error(
          `invalid bypass path "${pattern}": it would make every path public; use --disable-auth`,
        );
      }
      if (isPrefix) prefixes.push(path);
      else exact.add(path);
    }
    this.exact = exact;
    this.prefixes = prefixes;
  }

  /** `rawUrl` is the request target as received (path plus optional query), e.g. `request.url`. */
  matches(method: string, rawUrl: string): boolean {
    if (!BYPASS_METHODS.has(method)) return false;
    const queryStart = rawUrl.indexOf('?');
    const path = queryStart < 0 ? rawUrl : rawUrl.slice(0, queryStart);
    // Exact patterns are canonical, so equality alone proves the request path is canonical too.
    if (this.exact.has(path)) return true;
    for (const prefix of this.prefixes) {
      if (path.startsWith(prefix)) return isCanonicalPath(path);
    }
    return false;
  }
}

/**
 * A CORS pre-flight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`. Browsers never attach
 * credentials to pre-flights, so they pass without a key (README, Authentication: Public endpoints). The CORS plugin must answer them:
 * no route may treat an OPTIONS request as real work.
 */
export function isCorsPreflight(method: string, headers: IncomingHttpHeaders): boolean {
  return (
    method === 'OPTIONS' &&
    headers.origin !== undefined &&
    headers['access-control-request-method'] !== undefined
  );
}
