import { describe, expect, it } from 'vitest';
import { createSignatureSealer, isWrapped, signatureKey } from './signatures.js';

const SECRET = 'state-secret-for-tests-0123456789';
const sealer = createSignatureSealer(signatureKey(SECRET));
const anthropic = { family: 'anthropic', value: 'EqQBCkYIBhgCKkD+/a=' };

describe('reasoning signatures across families', () => {
  it('wraps as lip1.<family>.<payload>.<mac> and unwraps byte for byte', () => {
    const wrapped = sealer.wrap(anthropic);
    expect(wrapped).toMatch(/^lip1\.anthropic\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(isWrapped(wrapped)).toBe(true);
    expect(sealer.unwrap(wrapped)).toEqual(anthropic);
    expect(sealer.unwrap(sealer.wrap({ family: 'gemini', value: '' }))).toEqual({
      family: 'gemini',
      value: '',
    });
  });

  it('answers null for a changed family, payload or MAC', () => {
    const [prefix, family, payload, mac] = sealer.wrap(anthropic).split('.') as [
      string,
      string,
      string,
      string,
    ];
    const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    expect(sealer.unwrap([prefix, 'gemini', payload, mac].join('.'))).toBeNull();
    expect(sealer.unwrap([prefix, family, flip(payload), mac].join('.'))).toBeNull();
    expect(sealer.unwrap([prefix, family, payload, flip(mac)].join('.'))).toBeNull();
    expect(sealer.unwrap([prefix, family, payload, mac.slice(1)].join('.'))).toBeNull();
  });

  it('answers null for another key’s signature and for text that is not wrapped', () => {
    const other = createSignatureSealer(signatureKey('another-secret'));
    expect(sealer.unwrap(other.wrap(anthropic))).toBeNull();
    expect(sealer.unwrap(anthropic.value)).toBeNull();
    expect(isWrapped(anthropic.value)).toBe(false);
  });

  it('derives the same key from the same secret, a random one without', () => {
    expect(signatureKey(SECRET).equals(signatureKey(SECRET))).toBe(true);
    expect(signatureKey(undefined).equals(signatureKey(undefined))).toBe(false);
    const wrapped = sealer.wrap(anthropic);
    expect(wrapped).not.toContain(SECRET);
    expect(wrapped).not.toContain(signatureKey(SECRET).toString('base64url'));
  });

  it('refuses a family name that would break the format', () => {
    expect(() => sealer.wrap({ family: 'a.b', value: 'x' })).toThrow();
  });
});
