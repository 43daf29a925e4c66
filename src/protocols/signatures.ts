/**
 * Reasoning signatures across families (README, "Reasoning controls"): a signature goes back to the family
 * that made it byte for byte; to travel through a client of another family it is wrapped as
 * `lip1.<family>.<payload>.<mac>` — the payload the signature in base64url, the MAC an HMAC-SHA256 of
 * everything before it — and unwrapped on the way back. A wrapped signature whose MAC fails is not ours or
 * was changed: `unwrap` answers null and it is never forwarded.
 *
 * The key is a parameter so that it can come from `PROXY_STATE_SECRET` (derived for this purpose only) or be
 * a per-process random one; it never appears in a wrapped signature.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Who made a signature: a protocol family, as the codecs name them. */
export type SignatureFamily = string;

export interface Signature {
  family: SignatureFamily;
  value: string;
}

export interface SignatureSealer {
  wrap(signature: Signature): string;
  /** The signature inside a wrapped one; null when it is not wrapped, not ours, or changed. */
  unwrap(text: string): Signature | null;
}

const PREFIX = 'lip1';
const FAMILY = /^[a-z][a-z0-9-]{0,31}$/;
/** What a key is derived for: a secret shared with other uses yields a key of this use only. */
const PURPOSE = 'llm-interactive-proxy/reasoning-signatures/v1';

/** The sealing key: derived from the shared secret when one is set, else random for this process. */
export function signatureKey(secret: string | undefined): Buffer {
  if (secret === undefined || secret === '') return randomBytes(32);
  return createHmac('sha256', secret).update(PURPOSE).digest();
}

/** True for text that has the wrapped shape (whether or not its MAC holds). */
export function isWrapped(text: string): boolean {
  return text.startsWith(`${PREFIX}.`);
}

export function createSignatureSealer(key: Buffer): SignatureSealer {
  const mac = (head: string): Buffer => createHmac('sha256', key).update(head).digest();
  return {
    wrap({ family, value }) {
      if (!FAMILY.test(family)) throw new Error(`not a signature family: ${family}`);
      const head = `${PREFIX}.${family}.${Buffer.from(value, 'utf8').toString('base64url')}`;
      return `${head}.${mac(head).toString('base64url')}`;
    },
    unwrap(text) {
      const parts = text.split('.');
      if (parts.length !== 4 || parts[0] !== PREFIX) return null;
      const [, family, payload, given] = parts as [string, string, string, string];
      if (!FAMILY.test(family)) return null;
      const expected = mac(`${PREFIX}.${family}.${payload}`);
      const actual = Buffer.from(given, 'base64url');
      if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) return null;
      return { family, value: Buffer.from(payload, 'base64url').toString('utf8') };
    },
  };
}
