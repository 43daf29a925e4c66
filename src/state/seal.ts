import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Encryption of what the proxy writes to a shared store (README, "Shared state": encryption). One secret
 * (`PROXY_STATE_SECRET`) gives one key per purpose through HKDF-SHA256 with a fixed salt, so a key for
 * sealing stored responses and, say, one for signing reasoning signatures never coincide. A sealed value is
 * AES-256-GCM with a fresh random 96-bit IV: `v1:` + base64(iv ‖ ciphertext ‖ tag). Opening checks the tag;
 * a changed byte, a value sealed under another secret or another context (`aad`) fails with `SealError`.
 */

/** Fixed HKDF salt: the secret is the only input that varies. */
const HKDF_SALT = 'llm-interactive-proxy state v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1:';

/** A 32-byte key for `purpose` (a fixed string naming its use), derived from the state secret. */
export function deriveKey(secret: string, purpose: string): Buffer {
  if (secret.length === 0) throw new Error('deriveKey: the secret is empty');
  return Buffer.from(hkdfSync('sha256', secret, HKDF_SALT, purpose, KEY_BYTES));
}

/** A sealed value could not be opened: tampered with, truncated, or sealed with another key or context. */
export class SealError extends Error {
  constructor() {
    super('sealed value cannot be opened (tampered with, or sealed with another secret)');
    this.name = 'SealError';
  }
}

/** Seals and opens strings with one AES-256-GCM key. */
export class Sealer {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error(`Sealer: expected a ${KEY_BYTES}-byte key`);
    this.#key = key;
  }

  /** A sealer whose key is derived from `secret` for `purpose` (see {@link deriveKey}). */
  static fromSecret(secret: string, purpose: string): Sealer {
    return new Sealer(deriveKey(secret, purpose));
  }

  /**
   * `plaintext` encrypted and authenticated. `aad` (e.g. the entry's id) is authenticated but not stored:
   * the value opens only with the same `aad`, so it cannot be moved to another entry.
   */
  seal(plaintext: string, aad = ''): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return VERSION + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
  }

  /** The plaintext of a sealed value; throws `SealError` unless it is intact and sealed with this key and `aad`. */
  open(sealed: string, aad = ''): string {
    if (!sealed.startsWith(VERSION)) throw new SealError();
    const bytes = Buffer.from(sealed.slice(VERSION.length), 'base64');
    if (bytes.length < IV_BYTES + TAG_BYTES) throw new SealError();
    const iv = bytes.subarray(0, IV_BYTES);
    const tag = bytes.subarray(bytes.length - TAG_BYTES);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(tag);
      const body = bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES);
      return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
    } catch {
      throw new SealError();
    }
  }
}
