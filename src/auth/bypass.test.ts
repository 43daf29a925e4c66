import { describe, expect, it } from 'vitest';
import { BypassMatcher, DEFAULT_BYPASS_PATHS, isCanonicalPath, isCorsPreflight } from './bypass.js';

const matcher = new BypassMatcher(DEFAULT_BYPASS_PATHS);

describe('BypassMatcher with the default list', () => {
  it.each([
    '/health',
    '/health?verbose=1',
    '/docs',
    '/docs/',
    '/docs/static/index.html',
    '/docs/static/swagger-ui-bundle.js',
    '/docs/json?x=%2e%2e/../',
    '/openapi.json',
  ])('lets GET %s through', (url) => {
    expect(matcher.matches('GET', url)).toBe(true);
    expect(matcher.matches('HEAD', url)).toBe(true);
  });

  it.each([
    '/v1/chat/completions',
    '/healthz',
    '/health/',
    '/HEALTH',
    '/docsx',
    '/openapi.json.bak',
    '/admin/auth/blocks',
    '',
    '*',
    'http://example.com/health',
  ])('does not let GET %s through', (url) => {
    expect(matcher.matches('GET', url)).toBe(false);
  });

  it.each([
    '/docs/../v1/chat/completions',
    '/docs/./../v1/models',
    '/docs/..',
    '/docs/.',
    '/health/..%2Fv1/models',
    '/health/..%2fv1/models',
    '//health',
    '/docs//x',
    '/%68ealth',
    '/docs/%2e%2e/v1/models',
    '/docs/%2E%2E/v1/models',
    '/docs/%252e%252e/v1/models',
    '/docs/..%5cv1/models',
    '/health;x',
    '/docs/x;/../../v1/models',
    '/docs\\..\\v1',
    '/docs/..\\v1',
    '/docs/#/../v1/models',
    '/docs/%00',
    '/docs/é',
    '/docs/ /x',
  ])('requires a key for the non-canonical path %s', (url) => {
    expect(matcher.matches('GET', url)).toBe(false);
  });

  it.each(['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'get'])(
    'requires a key for %s on a public path',
    (method) => {
      expect(matcher.matches(method, '/health')).toBe(false);
      expect(matcher.matches(method, '/docs/static/x.js')).toBe(false);
    },
  );
});

describe('BypassMatcher patterns', () => {
  it('supports custom exact paths and prefixes', () => {
    const custom = new BypassMatcher(['/status', '/public/*']);
    expect(custom.matches('GET', '/status')).toBe(true);
    expect(custom.matches('GET', '/public/a/b.css')).toBe(true);
    expect(custom.matches('GET', '/public')).toBe(false);
    expect(custom.matches('GET', '/health')).toBe(false);
  });

  it('matches nothing when empty', () => {
    expect(new BypassMatcher([]).matches('GET', '/health')).toBe(false);
  });

  it.each(['health', '/a/../b', '/a//b', '/%68ealth', '/a*', '/a/*/b', '/*', '', '/a;b'])(
    'rejects the pattern %j',
    (pattern) => {
      expect(() => new BypassMatcher([pattern])).toThrow(/invalid bypass path/);
    },
  );
});

describe('isCanonicalPath', () => {
  it.each([
    ['/', true],
    ['/a/b', true],
    ['/a/b/', true],
    ['/a/.../b', true],
    ['/a/.b', true],
    ['/a/./b', false],
    ['/a/', true],
    ['a/b', false],
    ['/a//', false],
  ])('%s → %s', (path, expected) => {
    expect(isCanonicalPath(path)).toBe(expected);
  });
});

describe('isCorsPreflight', () => {
  const preflight = { origin: 'https://app.example', 'access-control-request-method': 'POST' };
  it('needs OPTIONS, Origin and Access-Control-Request-Method', () => {
    expect(isCorsPreflight('OPTIONS', preflight)).toBe(true);
    expect(isCorsPreflight('GET', preflight)).toBe(false);
    expect(isCorsPreflight('OPTIONS', { origin: 'https://app.example' })).toBe(false);
    expect(isCorsPreflight('OPTIONS', { 'access-control-request-method': 'POST' })).toBe(false);
  });
});
