import { describe, expect, it } from 'vitest';
import { deriveKey, SealError, Sealer } from './seal.js';

const SECRET = 'seal-test-secret-0123456789abcdefghijklmnop';

/** The sealed value with one byte of its payload (IV, ciphertext or tag) flipped, re-encoded. */
function flipByte(sealed: string, index: number): string {
  const bytes = Buffer.from(sealed.slice(3), 'base64');
  bytes[index] = (bytes[index] as number) ^ 0x01;
  return `v1:${bytes.toString('base64')}`;
}

describe('deriveKey', () => {
  it('gives 32 bytes, the same for the same secret and purpose, different otherwise', () => {
    const key = deriveKey(SECRET, 'stored-responses');
    expect(key).toHaveLength(32);
    expect(deriveKey(SECRET, 'stored-responses').equals(key)).toBe(true);
    expect(deriveKey(SECRET, 'reasoning-signatures').equals(key)).toBe(false);
    expect(deriveKey(`${SECRET}x`, 'stored-responses').equals(key)).toBe(false);
  });

  it('refuses an empty secret', () => {
    expect(() => deriveKey('', 'x')).toThrow(/secret is empty/);
  });
});

describe('Sealer', () => {
  const sealer = Sealer.fromSecret(SECRET, 'test');

  it('round-trips strings, empty and non-ASCII ones included, without showing them', () => {
    for (const text of ['', 'hello', 'canary-plaintext-word', '日本語 ✓ \u0000 end', 'x'.repeat(200_000)]) {
      const sealed = sealer.seal(text, 'resp_1');
      expect(sealed.startsWith('v1:')).toBe(true);
      if (text.length > 0) expect(sealed).not.toContain(text);
      expect(sealer.open(sealed, 'resp_1')).toBe(text);
    }
  });

  it('uses a fresh IV each time: one text sealed twice gives two different values', () => {
    const a = sealer.seal('same text');
    const b = sealer.seal('same text');
    expect(a).not.toBe(b);
    expect(Buffer.from(a.slice(3), 'base64').subarray(0, 12)).not.toEqual(
      Buffer.from(b.slice(3), 'base64').subarray(0, 12),
    );
  });

  it('refuses a value with any byte changed: IV, ciphertext or tag', () => {
    const sealed = sealer.seal('the conversation so far', 'resp_1');
    const length = Buffer.from(sealed.slice(3), 'base64').length;
    for (const index of [0, 11, 12, 20, length - 16, length - 1]) {
      expect(() => sealer.open(flipByte(sealed, index), 'resp_1')).toThrow(SealError);
    }
  });

  it('refuses truncated, unversioned and garbage values', () => {
    const sealed = sealer.seal('text');
    for (const bad of [sealed.slice(0, 20), sealed.slice(3), 'v1:', 'v1:AAAA', '', 'v2:' + sealed.slice(3)]) {
      expect(() => sealer.open(bad)).toThrow(SealError);
    }
  });

  it('refuses a value sealed under another secret, another purpose or another context', () => {
    const sealed = sealer.seal('text', 'resp_1');
    expect(() => Sealer.fromSecret(`${SECRET}!`, 'test').open(sealed, 'resp_1')).toThrow(SealError);
    expect(() => Sealer.fromSecret(SECRET, 'other').open(sealed, 'resp_1')).toThrow(SealError);
    expect(() => sealer.open(sealed, 'resp_2')).toThrow(SealError);
  });

  it('says nothing of the value or the key in its error', () => {
    const sealed = sealer.seal('secret-plaintext');
    try {
      sealer.open(flipByte(sealed, 14));
      expect.unreachable();
    } catch (error) {
      expect(String((error as Error).message)).not.toMatch(/secret-plaintext|seal-test-secret/);
    }
  });
});
