import { beforeEach, describe, expect, it, vi } from 'vitest';

// Wrap timingSafeEqual so the tests can count comparisons; behaviour stays the real one.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

const crypto = await import('node:crypto');
const {
  KeySet,
  MAX_PROXY_KEY_BYTES,
  generateProxyKey,
  hashKey,
  parseKeysFile,
  weakKeyReason,
  weakKeyWarning,
} = await import('./keys.js');

const timingSafeEqual = vi.mocked(crypto.timingSafeEqual);

describe('hashKey', () => {
  it('is the hex SHA-256 of the UTF-8 key', () => {
    expect(hashKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('generateProxyKey', () => {
  it('makes 32 random bytes in base64url and their digest', () => {
    const first = generateProxyKey();
    const second = generateProxyKey();
    expect(first.key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(first.key, 'base64url')).toHaveLength(32);
    expect(first.sha256).toBe(hashKey(first.key));
    expect(second.key).not.toBe(first.key);
  });
});

describe('KeySet', () => {
  beforeEach(() => {
    timingSafeEqual.mockClear();
  });

  const keys = new KeySet([
    { name: 'env', key: 'primary-secret' },
    { name: 'team', sha256: hashKey('team-secret').toUpperCase() },
    { name: 'ci', key: 'a-much-longer-secret-for-continuous-integration' },
  ]);

  it('returns the name of the matching key, plaintext or sha256 entry', () => {
    expect(keys.size).toBe(3);
    expect(keys.verify('primary-secret')).toBe('env');
    expect(keys.verify('team-secret')).toBe('team');
    expect(keys.verify('a-much-longer-secret-for-continuous-integration')).toBe('ci');
  });

  it('refuses anything else, including prefixes, case changes and the digest itself', () => {
    for (const wrong of [
      '',
      'primary',
      'primary-secret ',
      'PRIMARY-SECRET',
      hashKey('team-secret'),
      'x'.repeat(10_000),
    ]) {
      expect(keys.verify(wrong)).toBeNull();
    }
  });

  it('compares the presented key with every entry, whichever matches', () => {
    for (const presented of ['primary-secret', 'team-secret', 'nope']) {
      timingSafeEqual.mockClear();
      keys.verify(presented);
      expect(timingSafeEqual).toHaveBeenCalledTimes(3);
      for (const [a, b] of timingSafeEqual.mock.calls) {
        expect(a).toHaveLength(32);
        expect(b).toHaveLength(32);
      }
    }
  });

  it('picks the first name when two entries hold the same key', () => {
    const duplicate = new KeySet([
      { name: 'old', key: 'same' },
      { name: 'new', sha256: hashKey('same') },
    ]);
    expect(duplicate.verify('same')).toBe('old');
  });

  it('matches nothing when empty', () => {
    expect(new KeySet([]).verify('anything')).toBeNull();
  });

  it('rejects bad entries without quoting the secret', () => {
    expect(() => new KeySet([{ name: 'x', sha256: 'abc' }])).toThrow(/x.*64 hexadecimal/);
    expect(() => new KeySet([{ name: 'x', sha256: 'g'.repeat(64) }])).toThrow(/64 hexadecimal/);
    expect(() => new KeySet([{ name: 'x', key: '' }])).toThrow(/"x" is empty/);
    expect(() => new KeySet([{ name: '', key: 'hunter2' }])).toThrow(/entry #1 has an empty name/);
    expect(() => new KeySet([{ name: '', key: 'hunter2' }])).not.toThrow(/hunter2/);
  });
});

describe('parseKeysFile', () => {
  it('reads name:key and name:sha256:<hex> lines, skipping comments and blank lines', () => {
    const digest = hashKey('rotated');
    const text = [
      '\uFEFF# proxy keys',
      '',
      'alice:alice-secret',
      '  bob : bob:secret:with:colons  ',
      `carol:sha256:${digest.toUpperCase()}`,
      '   # indented comment',
      `dave:SHA256:${digest}\r`,
    ].join('\n');
    expect(parseKeysFile(text)).toEqual([
      { name: 'alice', key: 'alice-secret' },
      { name: 'bob', key: 'bob:secret:with:colons' },
      { name: 'carol', sha256: digest },
      { name: 'dave', sha256: digest },
    ]);
  });

  it('accepts an empty file', () => {
    expect(parseKeysFile('')).toEqual([]);
    expect(parseKeysFile('# nothing yet\n\n')).toEqual([]);
  });

  it.each([
    ['a line without a colon', 'ok:one\nsecret-without-name', /line 2: expected "name:key"/],
    ['an empty name', '# c\n:secret-value', /line 2: missing key name/],
    ['an empty key', 'alice:', /line 1: missing key for "alice"/],
    ['a short digest', `x:sha256:${'a'.repeat(63)}`, /line 1: sha256 of "x" must be 64 hexadecimal/],
    ['a non-hex digest', `x:sha256:${'z'.repeat(64)}`, /line 1: sha256 of "x" must be 64 hexadecimal/],
    ['a duplicate name', 'a:one\n\na:two', /line 3: duplicate key name "a" \(first on line 1\)/],
    [
      "the trusted addresses' name",
      'a:one\ntrusted-ip:secret-value',
      /^keys file line 2: key name "trusted-ip" is reserved \(the proxy's name for requests from a --trusted-ip address that send no key\): give the key another name$/,
    ],
    ["/metrics' name for requests without a key", 'none:secret-value', /line 1: key name "none" is reserved/],
    ["/admin/usage's name for them", '(none):secret-value', /line 1: key name "\(none\)" is reserved/],
  ])('rejects %s, naming the line', (_label, text, expected) => {
    expect(() => parseKeysFile(text)).toThrow(expected);
  });

  it('never puts the key into the error message', () => {
    const secrets = ['secret-without-name', 'secret-value'];
    for (const text of ['secret-without-name', ':secret-value']) {
      try {
        parseKeysFile(text);
        expect.unreachable('should have thrown');
      } catch (error) {
        for (const secret of secrets) expect((error as Error).message).not.toContain(secret);
      }
    }
  });
});

describe('parseKeysFile: role, labels and expiry', () => {
  const digest = hashKey('alice-secret-0123456789');

  it('reads role=, labels= and expires_at= after the key, in any order', () => {
    const text = [
      `alice:sha256:${digest} role=admin labels=team-a`,
      'bob:bob-secret-0123456789\tlabels=team-a,team-b,team-a expires_at=2027-01-01T00:00:00Z role=client',
      'carol:carol-secret-0123456789 expires_at=2027-03-01',
    ].join('\n');
    expect(parseKeysFile(text)).toEqual([
      { name: 'alice', sha256: digest, role: 'admin', labels: ['team-a'] },
      {
        name: 'bob',
        key: 'bob-secret-0123456789',
        role: 'client',
        labels: ['team-a', 'team-b'],
        expiresAtMs: Date.UTC(2027, 0, 1),
      },
      { name: 'carol', key: 'carol-secret-0123456789', expiresAtMs: Date.UTC(2027, 2, 1) },
    ]);
  });

  it('reads commands= and guardrails= switches into the own limits of the key', () => {
    expect(
      parseKeysFile(
        'alice:alice-secret-0123456789 commands=false guardrails=false\nbob:bob-secret-0123456789 commands=true',
      ),
    ).toEqual([
      { name: 'alice', key: 'alice-secret-0123456789', limits: { commands: false, guardrails: false } },
      { name: 'bob', key: 'bob-secret-0123456789', limits: { commands: true } },
    ]);
  });

  it.each([
    ['an unknown role', 'a:secret-0123456789 role=root', /line 1: role= must be client or admin/],
    ['an empty label', 'a:secret-0123456789 labels=x,,y', /line 1: labels= must be comma-separated labels/],
    ['a bad expiry', 'a:secret-0123456789 expires_at=tomorrow', /line 1: expires_at= expected an RFC 3339/],
    ['an impossible date', 'a:secret-0123456789 expires_at=2027-02-30', /line 1: expires_at= expected/],
    ['an attribute given twice', 'a:secret-0123456789 role=admin role=client', /line 1: role= given twice/],
    ['an unknown attribute', 'a:secret-0123456789 rpm=5', /line 1: after the key, expected space-separated/],
    [
      'a switch that is not a boolean',
      'a:secret-0123456789 commands=off',
      /line 1: commands= must be true or false/,
    ],
  ])('rejects %s, naming the line and the attribute', (_label, text, expected) => {
    expect(() => parseKeysFile(text)).toThrow(expected);
  });

  it('never quotes a word after the key: a key with a space in it is not shown', () => {
    try {
      parseKeysFile('alice:first-half second-half-of-the-secret');
      expect.unreachable('should have thrown');
    } catch (error) {
      expect((error as Error).message).toBe(
        'keys file line 1: after the key, expected space-separated role=client|admin, labels=<a,b>, ' +
          'expires_at=<date-time>, commands=true|false or guardrails=true|false',
      );
    }
  });
});

describe('KeySet: grants', () => {
  it('grants each key its name, role and expiry, and knows whether an admin key exists', () => {
    const keys = new KeySet([
      { name: 'ops', key: 'ops-secret-0123456789', role: 'admin' },
      { name: 'dev', key: 'dev-secret-0123456789', expiresAtMs: 5 },
    ]);
    expect(keys.grant('ops-secret-0123456789')).toEqual({
      keyName: 'ops',
      role: 'admin',
      expiresAtMs: null,
      hashed: false,
    });
    expect(keys.grant('dev-secret-0123456789')).toEqual({
      keyName: 'dev',
      role: 'client',
      expiresAtMs: 5,
      hashed: false,
    });
    expect(keys.grant('dev-secret-0123456789')).toBe(keys.grant('dev-secret-0123456789'));
    expect(keys.grant('nope')).toBeNull();
    expect(keys.hasAdmin).toBe(true);
    expect(new KeySet([{ name: 'dev', key: 'dev-secret-0123456789' }]).hasAdmin).toBe(false);
  });
});

describe('KeySet: key size', () => {
  it('accepts a key of exactly 1 KiB and refuses a longer one, naming it and never quoting it', () => {
    const max = 'k'.repeat(MAX_PROXY_KEY_BYTES);
    expect(new KeySet([{ name: 'max', key: max }]).verify(max)).toBe('max');
    const over = `${'q'.repeat(MAX_PROXY_KEY_BYTES - 5)}-END-`;
    let message = '';
    try {
      new KeySet([
        { name: 'ok', key: 'fine-key-0123456789abcdef' },
        { name: 'team-x', key: over + 'z' },
      ]);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe(
      'API key "team-x" is 1025 bytes long: a proxy key may be at most 1024 bytes ' +
        '(`llm-interactive-proxy keygen` makes a strong 43-character one)',
    );
  });

  it('counts UTF-8 bytes, not characters', () => {
    const multibyte = 'é'.repeat(513); // 1026 bytes
    expect(() => new KeySet([{ name: 'accents', key: multibyte }])).toThrow(/"accents" is 1026 bytes long/);
    expect(() => new KeySet([{ name: 'fits', key: 'é'.repeat(512) }])).not.toThrow();
  });
});

describe('weakKeyReason', () => {
  it.each([
    [{ name: 'a', key: 'abc' }, 'it is shorter than 20 characters'],
    [{ name: 'a', key: 'x'.repeat(19) }, 'it is shorter than 20 characters'],
    [{ name: 'a', key: 'your-secret-proxy-key' }, 'it is an example key from the documentation'],
    [{ name: 'a', key: 'dev-secret-key' }, 'it is an example key from the documentation'],
    [{ name: 'a', key: 'shared-team-key' }, 'it is an example key from the documentation'],
    [
      { name: 'a', sha256: hashKey('dev-secret-key').toUpperCase() },
      'it is the digest of an example key from the documentation',
    ],
  ])('%j is weak: %s', (entry, reason) => {
    expect(weakKeyReason(entry)).toBe(reason);
  });

  it.each([
    { name: 'a', key: 'x'.repeat(20) },
    { name: 'a', key: generateProxyKey().key },
    { name: 'a', sha256: hashKey('abc') },
  ])('%j is not', (entry) => {
    expect(weakKeyReason(entry)).toBeNull();
  });

  it('words the warning with the name and keygen, never the key', () => {
    expect(weakKeyWarning('alice', 'it is shorter than 20 characters')).toBe(
      'Proxy key "alice" is weak: it is shorter than 20 characters. Anyone who guesses it can use your ' +
        'provider keys; replace it with one from `llm-interactive-proxy keygen`',
    );
  });
});
