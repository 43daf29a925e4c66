/**
 * Hostile input to authentication, against the real server: property-based (fast-check) fuzzing of the
 * credential headers and query parameters, path tricks on the bypass list, and spoofed forwarding headers.
 * The two properties everywhere: never a 5xx, and never a protected answer without the key.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import { rawExchange } from './support.js';

const KEY = 'Fuzz-Key_0123456789abcdefXYZ';
const RUNS = { numRuns: 250 };

/** Text that only a protected route writes (models list, readiness, metrics, blocks, chat). */
const PROTECTED_MARKERS = ['"object":"list"', '"backends"', 'llm_proxy_', '"blocked"', '"choices"'];

function request(path: string, headerLines: string[], method = 'GET'): Buffer {
  return Buffer.from(
    `${method} ${path} HTTP/1.1\r\nhost: localhost\r\n${headerLines.map((l) => `${l}\r\n`).join('')}connection: close\r\n\r\n`,
    'latin1',
  );
}

/** Bytes a header value may be made of on the wire: anything but CR/LF (those would end the header). */
const headerBytes = fc
  .uint8Array({ maxLength: 120 })
  .map((bytes) => Buffer.from(bytes.filter((b) => b !== 10 && b !== 13)).toString('latin1'));

// eslint-disable-next-line no-control-regex
const HEADER_CONTROL_CHARACTER = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** Near misses of the key: the forms a guesser or a sloppy comparison would try. */
const nearMisses = fc
  .oneof(
    fc.integer({ min: 0, max: KEY.length - 1 }).map((n) => KEY.slice(0, n)),
    fc.string({ minLength: 1, maxLength: 3 }).map((s) => KEY + s),
    fc.string({ minLength: 1, maxLength: 3 }).map((s) => s + KEY),
    fc
      .integer({ min: 0, max: KEY.length - 1 })
      .map((i) => KEY.slice(0, i) + (KEY[i] === 'a' ? 'b' : 'a') + KEY.slice(i + 1)),
    fc.constant(KEY.toUpperCase()),
    fc.constant(KEY.toLowerCase()),
    fc.constant(`"${KEY}"`),
    fc.constant(Buffer.from(KEY).toString('base64')),
    fc.constant(`${KEY}\u0000`),
    fc.constant(encodeURIComponent(KEY).replace('_', '%5F')),
    // HTTP drops the whitespace around a header value: " KEY" or "KEY\t" is the key itself, not a near miss
    // (a run drew " " + KEY and was let in, rightly).
  )
  .filter((miss) => miss.replace(/^[ \t]+|[ \t]+$/g, '') !== KEY);

const schemes = fc.constantFrom(
  'Bearer',
  'bearer',
  'BEARER',
  'Basic',
  'Token',
  'Bearer:',
  'Digest',
  '',
  'Bearer Bearer',
  'Bearer,',
);
const separators = fc.constantFrom(' ', '  ', '\t', '', ':', '=');

/** The one acceptance rule for `Authorization` (README, Authentication): `Bearer <key>`, scheme in any case. */
const acceptedAuthorization = new RegExp(`^[ \\t]*[Bb][Ee][Aa][Rr][Ee][Rr][ \\t]+${KEY}[ \\t]*$`);

describe('hostile credentials against the real server', () => {
  let proxy: ProxyProcess;

  beforeAll(async () => {
    // Brute-force protection off, so every request reaches the key check instead of a 429.
    proxy = await startProxyProcess(['--disable-brute-force-protection'], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    });
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('answers exactly `Bearer <key>` (any scheme case, any blanks) with 200 and every other Authorization with 401', async () => {
    await fc.assert(
      fc.asyncProperty(
        schemes,
        separators,
        fc.oneof(nearMisses, fc.constant(KEY)),
        async (scheme, sep, token) => {
          const value = `${scheme}${sep}${token}`;
          const { status, raw } = await rawExchange(
            proxy.url,
            request('/v1/models', [`authorization: ${value}`]),
          );
          const accepted = acceptedAuthorization.test(value);
          if (value.includes('\u0000')) expect(status).toBe(400);
          else expect(status, `${JSON.stringify(value)}`).toBe(accepted ? 200 : 401);
          if (!accepted) for (const marker of PROTECTED_MARKERS) expect(raw).not.toContain(marker);
        },
      ),
      RUNS,
    );
  });

  it('arbitrary bytes, huge values and repeats in any credential header: never a 5xx, never in without the key', async () => {
    const headerName = fc.constantFrom(
      'authorization',
      'Authorization',
      'x-api-key',
      'X-API-KEY',
      'x-goog-api-key',
      'api-key',
    );
    const value = fc.oneof(
      headerBytes,
      nearMisses,
      fc.integer({ min: 1, max: 40_000 }).map((n) => 'A'.repeat(n)),
      headerBytes.map((junk) => `Bearer ${junk}`),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(headerName, value), { minLength: 1, maxLength: 4 }),
        async (headers) => {
          const lines = headers.map(([name, v]) => `${name}: ${v}`);
          const { status, raw } = await rawExchange(proxy.url, request('/v1/models', lines));
          expect(status, JSON.stringify(lines).slice(0, 300)).toBeGreaterThanOrEqual(400);
          expect(status).toBeLessThan(500);
          for (const marker of PROTECTED_MARKERS) expect(raw).not.toContain(marker);
        },
      ),
      RUNS,
    );
  });

  it('arbitrary, repeated and huge `key` / `api_key` query parameters: never a 5xx, never in without the key', async () => {
    const param = fc.tuple(
      fc.constantFrom('key', 'api_key', 'KEY', 'key[]', 'api_key%00', 'ke%79'),
      fc.oneof(
        fc
          .uint8Array({ maxLength: 80 })
          .map((b) => [...b].map((x) => `%${x.toString(16).padStart(2, '0')}`).join('')),
        nearMisses.map(encodeURIComponent),
        fc.integer({ min: 1, max: 30_000 }).map((n) => 'k'.repeat(n)),
        fc.constant(''),
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(param, { minLength: 1, maxLength: 4 }), async (params) => {
        const query = params.map(([name, v]) => `${name}=${v}`).join('&');
        const { status, raw } = await rawExchange(proxy.url, request(`/v1/models?${query}`, []));
        expect(status, query.slice(0, 200)).toBeGreaterThanOrEqual(400);
        expect(status).toBeLessThan(500);
        for (const marker of PROTECTED_MARKERS) expect(raw).not.toContain(marker);
      }),
      RUNS,
    );
  });

  it('the key itself works from every source, and a repeated key is refused rather than guessed at', async () => {
    const ok = async (path: string, lines: string[]) =>
      (await rawExchange(proxy.url, request(path, lines))).status;
    expect(await ok('/v1/models', [`x-api-key: ${KEY}`])).toBe(200);
    expect(await ok('/v1/models', [`x-goog-api-key: ${KEY}`])).toBe(200);
    expect(await ok(`/v1/models?key=${KEY}`, [])).toBe(200);
    expect(await ok(`/v1/models?api_key=${KEY}`, [])).toBe(200);
    // Two values for one source are ambiguous: refused, never one picked.
    expect(await ok(`/v1/models?key=${KEY}&key=${KEY}`, [])).toBe(401);
    expect(await ok('/v1/models', [`x-api-key: ${KEY}`, `x-api-key: ${KEY}`])).toBe(401);
    // Authorization is read first: a wrong one is not rescued by a right x-api-key.
    expect(await ok('/v1/models', ['authorization: Bearer nope', `x-api-key: ${KEY}`])).toBe(401);
  });

  it('path tricks on the bypass list never reach a protected route without a key', async () => {
    const segment = fc.constantFrom(
      'health',
      'docs',
      'openapi.json',
      'v1',
      'models',
      'internal',
      'metrics',
      'admin',
      'auth',
      'blocks',
      'chat',
      'completions',
      '..',
      '.',
      '%2e%2e',
      '%2E%2E',
      '.%2e',
      '%2e',
      '..%2f',
      '..%2F',
      '%2f',
      '%5c',
      '\\',
      '..\\',
      ';',
      ';x=1',
      '%00',
      '',
      '%68ealth',
      'HEALTH',
      'v1%2fmodels',
      '%2fv1%2fmodels',
      '%252e%252e',
      '~',
    );
    const path = fc
      .tuple(
        fc.constantFrom('/health', '/docs', '/docs/', '/openapi.json', '/', '//', '/./'),
        fc.array(segment, { minLength: 0, maxLength: 6 }),
        fc.constantFrom('', '?', '?x=1', '#frag', '/'),
      )
      .map(([start, rest, tail]) => `${start}${start.endsWith('/') ? '' : '/'}${rest.join('/')}${tail}`);
    const method = fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS');
    await fc.assert(
      fc.asyncProperty(path, method, async (p, m) => {
        const { status, raw } = await rawExchange(proxy.url, request(p, [], m));
        expect(status, `${m} ${p}`).toBeGreaterThan(0);
        expect(status, `${m} ${p}`).toBeLessThan(500);
        for (const marker of PROTECTED_MARKERS) expect(raw, `${m} ${p}`).not.toContain(marker);
        if (status < 300 && m !== 'OPTIONS')
          expect(p, `${m} ${p} answered ${status}`).toMatch(/^\/(health|docs|openapi\.json)/);
      }),
      { numRuns: 400 },
    );
  });
});

describe('spoofed forwarding headers', () => {
  const spoof = fc.oneof(
    fc.ipV4(),
    fc.ipV6(),
    headerBytes,
    fc.array(fc.ipV4(), { minLength: 1, maxLength: 5 }).map((ips) => ips.join(', ')),
    fc.constantFrom('127.0.0.1', 'unknown', '::1', '10.0.0.1, 127.0.0.1', '', ',,,', '"[::1]:80"'),
  );
  const forwardingHeader = fc.constantFrom(
    'x-forwarded-for',
    'forwarded',
    'x-real-ip',
    'true-client-ip',
    'cf-connecting-ip',
  );

  it('from an untrusted peer change nothing: once blocked, every request is 429 whatever it claims', async () => {
    const proxy = await startProxyProcess(
      // Hundreds of refusals: the tarpit (which delays each 429) is not what this test is about.
      ['--auth-max-failed-attempts', '3', '--auth-blocked-delay', '0'],
      {
        LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      },
    );
    const send = (name: string, value: string, auth: string) =>
      rawExchange(
        proxy.url,
        request('/v1/models', [auth, `${name}: ${name === 'forwarded' ? `for=${value}` : value}`]),
      );
    try {
      // Three failures, each claiming to come from somewhere else: all count against the socket's 127.0.0.1.
      for (const [name, value] of fc.sample(fc.tuple(forwardingHeader, spoof), { numRuns: 3, seed: 7 })) {
        expect((await send(name, value, 'authorization: Bearer wrong')).status).toBe(401);
      }
      await fc.assert(
        fc.asyncProperty(forwardingHeader, spoof, fc.boolean(), async (name, value, validKey) => {
          const auth = `authorization: Bearer ${validKey ? KEY : 'wrong'}`;
          // A control character makes the header itself invalid: Node's parser refuses the request (400).
          const expected = HEADER_CONTROL_CHARACTER.test(value) ? 400 : 429;
          expect((await send(name, value, auth)).status, `${name}: ${JSON.stringify(value)}`).toBe(expected);
        }),
        { numRuns: 120 },
      );
    } finally {
      await proxy.stop();
    }
  });

  it('through a trusted proxy, arbitrary X-Forwarded-For values never cause a 5xx or let a bad key in', async () => {
    const proxy = await startProxyProcess(
      ['--trusted-proxy', '127.0.0.1', '--auth-max-failed-attempts', '2', '--auth-blocked-delay', '0'],
      {
        LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      },
    );
    try {
      await fc.assert(
        fc.asyncProperty(spoof, fc.boolean(), async (value, validKey) => {
          const auth = validKey ? `authorization: Bearer ${KEY}` : 'authorization: Bearer wrong';
          const { status, raw } = await rawExchange(
            proxy.url,
            request('/v1/models', [auth, `x-forwarded-for: ${value}`]),
          );
          expect(status, value).toBeLessThan(500);
          if (!validKey) {
            expect([401, 429, 400]).toContain(status);
            for (const marker of PROTECTED_MARKERS) expect(raw).not.toContain(marker);
          }
        }),
        { numRuns: 200 },
      );
    } finally {
      await proxy.stop();
    }
  });
});
