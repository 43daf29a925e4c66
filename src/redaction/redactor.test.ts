import { describe, expect, it } from 'vitest';
import { PROMPT_SECRET_REPLACEMENT } from './patterns.js';
import { Redactor, collectEnvSecrets } from './redactor.js';

const OPENAI_PROJECT = 'sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_AbC-dEf';
const ANTHROPIC = 'sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe-dcba_1234567890';
const OPENROUTER = 'sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef';
const OPENAI_LEGACY = 'sk-T3BlbkFJabcdefghijklmnopqrstuvwxyz012345';
const GOOGLE = 'AIzaSyD-1234567890abcdefghijklmnopqrstu';

describe('Redactor.redact: well-known key formats', () => {
  const redactor = new Redactor();

  it.each([
    [OPENAI_PROJECT, 'sk-proj-****'],
    [ANTHROPIC, 'sk-ant-****'],
    [OPENROUTER, 'sk-or-****'],
    [OPENAI_LEGACY, 'sk-****'],
    [GOOGLE, 'AIza****'],
    ['Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature', 'Bearer ****'],
    ['authorization: bearer abcDEF123456', 'authorization: bearer ****'],
    ['Bearer your-secret-proxy-key', 'Bearer ****'],
    [
      'GET /v1beta/models/g:generateContent?key=plain-value-123&alt=sse',
      'GET /v1beta/models/g:generateContent?key=****&alt=sse',
    ],
    ['/x?alt=sse&api_key=abc', '/x?alt=sse&api_key=****'],
  ])('%s → %s', (secret, masked) => {
    expect(redactor.redact(secret)).toBe(masked);
    expect(redactor.redact(`before "${secret}" after`)).toBe(`before "${masked}" after`);
  });

  it.each([
    'sk',
    'sk-',
    'task-list',
    'risk-free',
    'the task-list-management-module is done',
    'whisk-the-eggs-until-very-stiff',
    'sk-short',
    'sk-proj-short',
    'AIza short',
    'the bearer of bad news',
    'Bearer authentication is described in RFC 6750',
    'a bearer token',
    'Bearer abc',
    'monkey=banana&keys=1',
    '?keyboard=qwerty',
    'asks-for-more-than-sixteen-characters-of-hyphenated-prose',
  ])('leaves %j alone', (text) => {
    expect(redactor.redact(text)).toBe(text);
  });

  it('returns the very same string when nothing matches', () => {
    const text = 'x'.repeat(10_000);
    expect(redactor.redact(text)).toBe(text);
  });

  it('is idempotent: redacting a redacted text changes nothing', () => {
    const once = redactor.redact(`${OPENAI_PROJECT} Bearer ${ANTHROPIC} ${GOOGLE} ?key=abc`);
    expect(redactor.redact(once)).toBe(once);
  });

  it('masks credential headers inside JSON text whatever their value, keeping the scheme', () => {
    const line = JSON.stringify({
      req: {
        headers: { authorization: 'Basic dXNlcjpwYXNz', 'X-Api-Key': 'abc', cookie: 'a="b"; c=d', host: 'h' },
      },
    });
    const out = redactor.redact(line);
    expect(JSON.parse(out)).toEqual({
      req: { headers: { authorization: 'Basic ****', 'X-Api-Key': '****', cookie: '****', host: 'h' } },
    });
  });
});

describe('Redactor.redact: configured exact secrets', () => {
  it('masks a secret without a known prefix as ****, and one with a prefix by its prefix', () => {
    const redactor = new Redactor(['my-proxy-key-1', 'sk-ant-x1']);
    expect(redactor.redact('key=my-proxy-key-1;')).toBe('key=****;');
    expect(redactor.redact('(sk-ant-x1)')).toBe('(sk-ant-****)');
  });

  it('lets the longer secret win over its prefix', () => {
    const redactor = new Redactor(['team-key', 'team-key-extended']);
    expect(redactor.redact('a team-key-extended b team-key c')).toBe('a **** b **** c');
  });

  it('covers a secret with characters outside token alphabets whole, after Bearer too', () => {
    const secret = 'p@ss!word#2024';
    const redactor = new Redactor([secret]);
    expect(redactor.redact(`Authorization: Bearer ${secret}`)).toBe('Authorization: Bearer ****');
    expect(redactor.redact(`value ${secret}.`)).toBe('value ****.');
  });

  it('matches the JSON-escaped and URL-encoded forms of a secret', () => {
    const secret = 'ab"c\\d+e/f=';
    const redactor = new Redactor([secret]);
    const json = JSON.stringify({ key: secret });
    expect(json).not.toContain(secret);
    const redactedJson = redactor.redact(json);
    expect(JSON.parse(redactedJson)).toEqual({ key: '****' });
    expect(redactor.redact(`/path?token=${encodeURIComponent(secret)}`)).toBe('/path?token=****');
  });

  it('escapes regular-expression characters in secrets', () => {
    const redactor = new Redactor(['a.b*c(d)']);
    expect(redactor.redact('aXbbbcd a.b*c(d)')).toBe('aXbbbcd ****');
  });

  it('ignores secrets shorter than 4 characters and redacts any of 4 or more', () => {
    const redactor = new Redactor(['', 'x', 'abc', 'abcd']);
    expect(redactor.secrets).toEqual(['abcd']);
    expect(redactor.redact('x abc abcd')).toBe('x abc ****');
  });
});

describe('Redactor.redactValue', () => {
  const secret = 'configured-secret-value';
  const redactor = new Redactor([secret]);

  it('deep-copies objects and arrays with every string redacted', () => {
    const input = {
      a: [`x ${secret}`, 1, null, true, { b: OPENAI_PROJECT }],
      nested: { deeper: { list: [[GOOGLE]] } },
      untouched: 'hello',
    };
    const out = redactor.redactValue(input);
    expect(out).toEqual({
      a: ['x ****', 1, null, true, { b: 'sk-proj-****' }],
      nested: { deeper: { list: [['AIza****']] } },
      untouched: 'hello',
    });
    expect(out).not.toBe(input);
    expect(input.a[0]).toBe(`x ${secret}`);
  });

  it('masks credential-header keys whatever their value', () => {
    expect(redactor.redactValue({ headers: { Authorization: 'Bearer x', 'x-goog-api-key': 'abc' } })).toEqual(
      {
        headers: { Authorization: 'Bearer ****', 'x-goog-api-key': '****' },
      },
    );
  });

  it('turns errors into plain objects with message, stack and own fields redacted', () => {
    const error = new Error(`upstream rejected ${secret}`) as Error & { status?: number; body?: unknown };
    error.status = 401;
    error.body = { error: { message: `Incorrect API key provided: ${OPENAI_LEGACY}` } };
    const out = redactor.redactValue({ err: error }) as { err: Record<string, unknown> };
    expect(out.err['name']).toBe('Error');
    expect(out.err['message']).toBe('upstream rejected ****');
    expect(out.err['stack']).toMatch(/^Error: upstream rejected \*\*\*\*\n/);
    expect(out.err['status']).toBe(401);
    expect(out.err['body']).toEqual({ error: { message: 'Incorrect API key provided: sk-****' } });
    expect(JSON.stringify(out)).not.toContain(secret);
  });

  it('redacts error causes, buffers and survives cycles', () => {
    const cyclic: Record<string, unknown> = { name: secret };
    cyclic['self'] = cyclic;
    const error = new Error('outer', { cause: new Error(secret) });
    const out = redactor.redactValue({ cyclic, error, raw: Buffer.from(`data ${secret}`) });
    const text = JSON.stringify(out);
    expect(text).not.toContain(secret);
    expect(out).toMatchObject({ cyclic: { name: '****', self: '[Circular]' }, raw: 'data ****' });
  });

  it('passes primitives through', () => {
    expect(redactor.redactValue(42)).toBe(42);
    expect(redactor.redactValue(undefined)).toBeUndefined();
    expect(redactor.redactValue(secret)).toBe('****');
  });
});

describe('Redactor.redactHeaders', () => {
  const redactor = new Redactor(['proxy-key-abcdef']);

  it('always masks credential headers, keeping the auth scheme, and redacts the others', () => {
    expect(
      redactor.redactHeaders({
        authorization: 'Bearer whatever',
        'Proxy-Authorization': 'Basic Zm9vOmJhcg==',
        'x-api-key': 'short',
        'api-key': 'k',
        'x-goog-api-key': GOOGLE,
        cookie: 'session=1',
        'set-cookie': ['a=1', 'b=2'],
        'x-custom': 'echo proxy-key-abcdef',
        'content-length': 12 as unknown as string,
        'user-agent': 'curl/8',
        'x-missing': undefined,
      }),
    ).toEqual({
      authorization: 'Bearer ****',
      'Proxy-Authorization': 'Basic ****',
      'x-api-key': '****',
      'api-key': '****',
      'x-goog-api-key': '****',
      cookie: '****',
      'set-cookie': ['****', '****'],
      'x-custom': 'echo ****',
      'content-length': '12',
      'user-agent': 'curl/8',
    });
  });

  it('masks a scheme-less authorization value entirely', () => {
    expect(redactor.redactHeaders({ authorization: 'rawtoken' })).toEqual({ authorization: '****' });
  });
});

describe('Redactor.redactUrl', () => {
  const redactor = new Redactor(['proxy-key-in-path']);

  it.each([
    [
      '/v1beta/models/gemini:streamGenerateContent?alt=sse&key=abc123',
      '/v1beta/models/gemini:streamGenerateContent?alt=sse&key=****',
    ],
    ['https://h/x?api_key=zzz#frag', 'https://h/x?api_key=****#frag'],
    ['/x?KEY=1&other=2', '/x?KEY=****&other=2'],
    ['/x/proxy-key-in-path/y?q=1', '/x/****/y?q=1'],
    ['/v1/chat/completions', '/v1/chat/completions'],
  ])('%s → %s', (url, expected) => {
    expect(redactor.redactUrl(url)).toBe(expected);
  });
});

describe('Redactor.redactPromptSecrets', () => {
  const secret = 'proxy-key-0123456789';
  const redactor = new Redactor([secret, 'provider-key-xyz']);

  it('replaces configured secrets in any string of the body', () => {
    const body = {
      model: 'gpt-4o',
      messages: [
        { role: 'user', content: `my key is ${secret}, ok?` },
        { role: 'user', content: [{ type: 'text', text: 'and provider-key-xyz too' }] },
      ],
    };
    const { body: out, changed } = redactor.redactPromptSecrets(body);
    expect(changed).toBe(true);
    expect(out).toEqual({
      model: 'gpt-4o',
      messages: [
        { role: 'user', content: `my key is ${PROMPT_SECRET_REPLACEMENT}, ok?` },
        { role: 'user', content: [{ type: 'text', text: `and ${PROMPT_SECRET_REPLACEMENT} too` }] },
      ],
    });
    expect(body.messages[0]!.content).toContain(secret);
  });

  it('leaves key formats alone (only configured secrets) and does not copy when nothing matched', () => {
    const body = { messages: [{ role: 'user', content: `what does ${OPENAI_LEGACY} look like?` }] };
    const result = redactor.redactPromptSecrets(body);
    expect(result.changed).toBe(false);
    expect(result.body).toBe(body);
  });

  it('copies only the branches that changed', () => {
    const untouched = { role: 'system', content: 'be brief' };
    const body = { messages: [untouched, { role: 'user', content: secret }] };
    const out = redactor.redactPromptSecrets(body).body as typeof body;
    expect(out.messages[0]).toBe(untouched);
    expect(out.messages[1]!.content).toBe(PROMPT_SECRET_REPLACEMENT);
  });

  it('does nothing without configured secrets', () => {
    const body = { content: 'x' };
    expect(new Redactor().redactPromptSecrets(body)).toEqual({ body, changed: false });
  });

  it('given the raw JSON, answers from one scan of it, with the same result as the walk', () => {
    const clean = '{"messages":[{"role":"user","content":"nothing secret\\nhere"}]}';
    const cleanBody = JSON.parse(clean) as unknown;
    expect(redactor.redactPromptSecrets(cleanBody, clean)).toEqual({ body: cleanBody, changed: false });
    const leaky = JSON.stringify({ messages: [{ role: 'user', content: `key: ${secret}` }] });
    const leakyBody = JSON.parse(leaky) as unknown;
    expect(redactor.redactPromptSecrets(leakyBody, leaky)).toEqual(redactor.redactPromptSecrets(leakyBody));
    expect(redactor.redactPromptSecrets(leakyBody, leaky).changed).toBe(true);
  });

  it.each([
    ['a slash, escaped by some encoders', 'tok/abc-0123456789', '{"c":"tok\\/abc-0123456789"}'],
    ['non-ASCII, escaped by ensure_ascii encoders', 'clé-0123456789', '{"c":"cl\\u00e9-0123456789"}'],
    ['an ampersand, escaped by Go and .NET', 'a&b-0123456789', '{"c":"a\\u0026b-0123456789"}'],
  ])('walks the body when a secret holds %s (its JSON text may not show it verbatim)', (_what, key, raw) => {
    const withEscapable = new Redactor([key]);
    const body = JSON.parse(raw) as { c: string };
    expect(body.c).toBe(key);
    const result = withEscapable.redactPromptSecrets(body, raw);
    expect(result.changed).toBe(true);
    expect(result.body).toEqual({ c: PROMPT_SECRET_REPLACEMENT });
  });
});

describe('collectEnvSecrets', () => {
  it('collects *_API_KEY, *_API_KEY_<n>, AUTH_TOKEN, *_ADMIN_KEY and API_KEYS items', () => {
    const secrets = collectEnvSecrets({
      LLM_INTERACTIVE_PROXY_ADMIN_KEY: 'admin',
      ADMIN_KEY_FILE: 'not-a-secret-either',
      OPENAI_API_KEY: 'o',
      GEMINI_API_KEY_2: 'g2',
      LLM_INTERACTIVE_PROXY_API_KEY: 'proxy',
      AUTH_TOKEN: 'tok',
      ANTHROPIC_AUTH_TOKEN: 'atok',
      API_KEYS: 'k1, k2 ,,k3',
      EMPTY_API_KEY: '',
      API_KEY_FILE: 'not-a-secret',
      OPENAI_API_BASE_URL: 'https://example',
      PATH: '/usr/bin',
    });
    expect(new Set(secrets)).toEqual(
      new Set(['admin', 'o', 'g2', 'proxy', 'tok', 'atok', 'k1', 'k2', ' k2 ', 'k3']),
    );
  });
});

describe('redactPromptSecrets over a body given as bytes', () => {
  // Two secrets are searched one by one in the bytes; twelve by one expression over latin1 windows.
  it.each([
    ['a few secrets', [] as string[]],
    ['many secrets', Array.from({ length: 10 }, (_, i) => `other-secret-${i}-abcdefgh`)],
  ])('%s: finds a secret wherever it is in the bytes, across windows and after non-ASCII text', (_, more) => {
    const secret = 'sk-window-secret-0123456789';
    const redactor = new Redactor([secret, 'ab', ...more]);
    const filler = 'x'.repeat(64 * 1024 - 30) + 'é😀';
    for (let shift = 0; shift < 40; shift += 3) {
      const body = {
        model: 'm',
        messages: [{ role: 'user', content: `${filler}${'y'.repeat(shift)}${secret} end` }],
      };
      const bytes = Buffer.from(JSON.stringify(body));
      const fromBytes = redactor.redactPromptSecrets(body, bytes);
      expect(fromBytes).toEqual(redactor.redactPromptSecrets(body, JSON.stringify(body)));
      expect(fromBytes.changed).toBe(true);
    }
    const short = { model: 'm', messages: [{ role: 'user', content: 'ab' }], pad: 'z'.repeat(70_000) };
    expect(redactor.redactPromptSecrets(short, Buffer.from(JSON.stringify(short))).changed).toBe(true);
    const clean = { model: 'm', messages: [{ role: 'user', content: `${filler} no secret here` }] };
    const untouched = redactor.redactPromptSecrets(clean, Buffer.from(JSON.stringify(clean)));
    expect(untouched).toEqual({ body: clean, changed: false });
  });
});

describe('Redactor.jsonEncodingMayForm', () => {
  const secrets = ['bench-proxy-key-0123456789', 'nightly-key-0123456789', '0a1b2c3d4e5f'];
  const redactor = new Redactor(secrets);
  /** Text after an escape's backslash that could start a match: each secret and rule, less 0–3 leading characters. */
  const tails = [
    ...secrets,
    'Bearer abcdefgh12345678',
    'sk-abcdefghijklmnopqrstuvwx',
    'AIzaabcdefghijklmnopqrstuvwxyz0123456',
    '?key=value',
    '"authorization": "value"',
  ].flatMap((tail) => [0, 1, 2, 3].map((cut) => tail.slice(cut)));
  const escaped = [
    ...Array.from({ length: 0x20 }, (_, code) => String.fromCharCode(code)),
    '"',
    '\\',
    '\ud800',
    '\udc00',
  ];

  it.each([
    ['one starts with b', redactor],
    ['none starts with b', new Redactor(secrets.slice(1))],
  ])('is true wherever JSON-encoding a redacted text forms a match (secrets: %s)', (_, subject) => {
    for (const char of escaped) {
      for (const tail of tails) {
        const text = subject.redact(`x${char}${tail}`);
        const json = JSON.stringify(text);
        if (!subject.jsonEncodingMayForm(text)) expect(subject.redact(json)).toBe(json);
        let controls = 0;
        for (const c of text) if (c < ' ') controls |= 1 << c.charCodeAt(0);
        const lone = /[\ud800-\udfff]/.test(text);
        if (!lone && !subject.jsonEscapesMayForm(controls)) expect(subject.redact(json)).toBe(json);
      }
    }
  });

  it('is false for text with newlines, carriage returns, tabs and surrogate pairs when no secret starts with their letter', () => {
    const plain = new Redactor(['bench-proxy-key-0123456789']);
    expect(plain.jsonEncodingMayForm('data: {"a":"b\\n"}\r\n\r\n\t😀')).toBe(false);
    expect(plain.jsonEncodingMayForm('x\u001by')).toBe(true);
    expect(plain.jsonEncodingMayForm('x\by')).toBe(true);
    expect(plain.jsonEncodingMayForm('x\ud800y')).toBe(true);
    expect(plain.jsonEncodingMayForm('x\udc00y')).toBe(true);
    expect(redactor.jsonEncodingMayForm('line\nnext')).toBe(true);
  });

  it('is always true when a secret is not verbatim in JSON, or short', () => {
    expect(new Redactor(['quote"secret-123']).jsonEncodingMayForm('plain')).toBe(true);
    expect(new Redactor(['ab', 'bench-proxy-key-0123456789']).jsonEncodingMayForm('plain')).toBe(true);
  });
});
