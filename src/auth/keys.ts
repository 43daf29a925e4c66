import * as crypto from 'node:crypto';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  EXPIRES_AT_FORMAT,
  LABEL_PATTERN,
  parseExpiresAt,
  reservedKeyName,
} from '../config/key-attributes.js';
import type { PolicyLimits } from '../config/schema.js';

/** What a key may do (README, Admin keys): `admin` keys also reach the operator endpoints. */
export type KeyRole = 'client' | 'admin';

/**
 * What a key carries besides its secret (README, Teams: policies): its role, its labels (the teams whose
 * policies it shares) and when it stops working (epoch milliseconds). All optional: a key is a client key of
 * no team that never expires.
 */
export interface KeyAttributes {
  role?: KeyRole | undefined;
  labels?: readonly string[] | undefined;
  expiresAtMs?: number | undefined;
  /**
   * The key's own limits and switches (`commands`, `guardrails`; the keys file gives only the switches), for
   * the teams policies (src/teams/); authentication ignores them.
   */
  limits?: PolicyLimits | undefined;
}

/** A configured proxy key: the secret itself, or only its SHA-256 (hex) so a config file need not hold it. */
export type KeyEntry = ({ name: string; key: string } | { name: string; sha256: string }) & KeyAttributes;

/**
 * What a valid key grants, as the gate reports it: the key's name (never the key), its role, and when it
 * expires (null: never). One frozen object per configured key, made when the key set is built, so a request
 * allocates nothing to carry it.
 */
export interface KeyGrant {
  readonly keyName: string;
  readonly role: KeyRole;
  readonly expiresAtMs: number | null;
  /** Configured by its digest (`sha256`): the proxy knows the key itself only once a client presents it. */
  readonly hashed: boolean;
}

const SHA256_HEX = /^[0-9a-f]{64}$/i;

/**
 * Longest proxy key accepted, in UTF-8 bytes. A generated key is 43 characters; a key of kilobytes is a
 * mistake (a file's content pasted, a certificate), and every key is a secret that each log line, capture
 * line and error body is scanned for.
 */
export const MAX_PROXY_KEY_BYTES = 1024;

/** Proxy keys shorter than this are weak: logged as a WARNING at startup and when they appear on reload. */
export const MIN_STRONG_KEY_LENGTH = 20;

/** Example keys from the documentation: whoever kept one has a key the whole world knows. */
export const PLACEHOLDER_KEYS: readonly string[] = [
  'your-secret-proxy-key',
  'dev-secret-key',
  'shared-team-key',
];

/** One-shot hashing (Node >= 20.12) skips the Hash object a per-request check would otherwise build. */
const oneShot = crypto.hash as typeof crypto.hash | undefined;
const sha256 = (text: string): Buffer =>
  oneShot ? oneShot('sha256', text, 'buffer') : createHash('sha256').update(text, 'utf8').digest();

/** Hex SHA-256 of a key, the form stored by `name:sha256:<hex>` entries and printed by `keygen`. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

const PLACEHOLDER_DIGESTS: ReadonlySet<string> = new Set(PLACEHOLDER_KEYS.map(hashKey));

/**
 * Why a key entry is weak (a documentation placeholder, or shorter than {@link MIN_STRONG_KEY_LENGTH}), or
 * null. A `sha256` entry can only be recognised as a placeholder's digest. Never quotes the key.
 */
export function weakKeyReason(entry: KeyEntry): string | null {
  if ('key' in entry) {
    if (PLACEHOLDER_KEYS.includes(entry.key)) return 'it is an example key from the documentation';
    if (entry.key.length < MIN_STRONG_KEY_LENGTH) {
      return `it is shorter than ${MIN_STRONG_KEY_LENGTH} characters`;
    }
    return null;
  }
  return PLACEHOLDER_DIGESTS.has(entry.sha256.toLowerCase())
    ? 'it is the digest of an example key from the documentation'
    : null;
}

/** The WARNING for a weak key: its name and why, never the key, and how to make a strong one. */
export function weakKeyWarning(name: string, reason: string): string {
  return (
    `Proxy key "${name}" is weak: ${reason}. Anyone who guesses it can use your provider keys; ` +
    'replace it with one from `llm-interactive-proxy keygen`'
  );
}

/** A new random proxy key (32 random bytes, base64url) and its digest, for `llm-interactive-proxy keygen`. */
export function generateProxyKey(): { key: string; sha256: string } {
  const key = randomBytes(32).toString('base64url');
  return { key, sha256: hashKey(key) };
}

/**
 * The set of keys that authenticate a request. Every entry is kept only as its 32-byte digest, so plaintext
 * and `sha256` entries are compared the same way and the set itself holds no plaintext key. Refuses (throws)
 * an empty name or key, a malformed digest and a key over {@link MAX_PROXY_KEY_BYTES}; the messages name
 * the key, never quote it.
 */
export class KeySet {
  private readonly grants: readonly KeyGrant[];
  private readonly digests: readonly Buffer[];
  /** Whether any key has the admin role (README, Admin keys): without one the operator endpoints say so. */
  readonly hasAdmin: boolean;

  constructor(entries: readonly KeyEntry[]) {
    const grants: KeyGrant[] = [];
    const digests: Buffer[] = [];
    entries.forEach((entry, index) => {
      if (entry.name.length === 0) throw new Error(`API key entry #${index + 1} has an empty name`);
      if ('key' in entry) {
        if (entry.key.length === 0) throw new Error(`API key "${entry.name}" is empty`);
        const bytes = Buffer.byteLength(entry.key, 'utf8');
        if (bytes > MAX_PROXY_KEY_BYTES) {
          throw new Error(
            `API key "${entry.name}" is ${bytes} bytes long: a proxy key may be at most ${MAX_PROXY_KEY_BYTES} ` +
              'bytes (`llm-interactive-proxy keygen` makes a strong 43-character one)',
          );
        }
        digests.push(createHash('sha256').update(entry.key, 'utf8').digest());
      } else {
        if (!SHA256_HEX.test(entry.sha256)) {
          throw new Error(`API key "${entry.name}": sha256 must be 64 hexadecimal characters`);
        }
        digests.push(Buffer.from(entry.sha256, 'hex'));
      }
      grants.push(
        Object.freeze({
          keyName: entry.name,
          role: entry.role ?? 'client',
          expiresAtMs: entry.expiresAtMs ?? null,
          hashed: !('key' in entry),
        }),
      );
    });
    this.grants = grants;
    this.digests = digests;
    this.hasAdmin = grants.some((grant) => grant.role === 'admin');
  }

  get size(): number {
    return this.digests.length;
  }

  /**
   * The name of the key equal to `presented`, or null. Constant time with respect to the secrets: the
   * presented key is hashed once (so its length does not matter) and compared with every entry; the loop
   * never exits early and the first match is chosen without a data-dependent branch.
   */
  verify(presented: string): string | null {
    return this.grant(presented)?.keyName ?? null;
  }

  /** What the key equal to `presented` grants, or null; constant time as {@link verify} says. */
  grant(presented: string): KeyGrant | null {
    const digest = sha256(presented);
    let matched = -1;
    for (let i = 0; i < this.digests.length; i++) {
      const equal = timingSafeEqual(digest, this.digests[i] as Buffer);
      // Keep the first match: (equal && matched < 0) selects i, computed arithmetically.
      const take = Number(equal) & Number(matched < 0);
      matched = take * i + (1 - take) * matched;
    }
    return matched < 0 ? null : (this.grants[matched] ?? null);
  }
}

const KEYS_FILE_FORMAT =
  'expected "name:key" or "name:sha256:<64 hex digits>", optionally followed by role=, labels=, expires_at=, ' +
  'commands= and guardrails=';

const ATTRIBUTE_FORMAT =
  'after the key, expected space-separated role=client|admin, labels=<a,b>, expires_at=<date-time>, ' +
  'commands=true|false or guardrails=true|false';

/**
 * Reads the `attr=value` words after a key. Each error names the attribute, never quotes a word: a key with
 * a space in it would otherwise show up in the message.
 */
function parseAttributes(words: readonly string[], fail: (why: string) => never): KeyAttributes {
  const attributes: KeyAttributes = {};
  const seen = new Set<string>();
  for (const word of words) {
    const eq = word.indexOf('=');
    const attribute = eq < 0 ? '' : word.slice(0, eq);
    const value = word.slice(eq + 1);
    if (!ATTRIBUTE_PARSERS.has(attribute)) fail(ATTRIBUTE_FORMAT);
    if (seen.has(attribute)) fail(`${attribute}= given twice`);
    seen.add(attribute);
    ATTRIBUTE_PARSERS.get(attribute)?.(value, attributes, fail);
  }
  return attributes;
}

type AttributeParser = (value: string, into: KeyAttributes, fail: (why: string) => never) => void;

/** The keys file's attributes, one parser each: a new attribute is one more row. */
const ATTRIBUTE_PARSERS: ReadonlyMap<string, AttributeParser> = new Map<string, AttributeParser>([
  [
    'role',
    (value, into, fail) => {
      if (value !== 'client' && value !== 'admin') return fail('role= must be client or admin');
      into.role = value;
    },
  ],
  [
    'labels',
    (value, into, fail) => {
      const labels = value.split(',');
      if (!labels.every((label) => LABEL_PATTERN.test(label))) {
        fail('labels= must be comma-separated labels (letters, digits, ".", "_", "-"; at most 64 each)');
      }
      into.labels = [...new Set(labels)];
    },
  ],
  ...(['commands', 'guardrails'] as const).map((name): [string, AttributeParser] => [
    name,
    (value, into, fail) => {
      if (value !== 'true' && value !== 'false') return fail(`${name}= must be true or false`);
      into.limits = { ...into.limits, [name]: value === 'true' };
    },
  ]),
  [
    'expires_at',
    (value, into, fail) => {
      const ms = parseExpiresAt(value);
      if (ms === null) return fail(`expires_at= ${EXPIRES_AT_FORMAT}`);
      into.expiresAtMs = ms;
    },
  ],
]);

/**
 * Parses a keys file (README, Authentication: Keys): one `name:key` or `name:sha256:<hex>` a line, optionally
 * followed by `role=`, `labels=` and `expires_at=` (README, Teams), `#` comments, blank lines. Errors name
 * the line number and never quote the line, since it may hold a key.
 */
export function parseKeysFile(text: string): KeyEntry[] {
  const entries: KeyEntry[] = [];
  const firstLineOfName = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const lineNumber = index + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fail = (why: string): never => {
      throw new Error(`keys file line ${lineNumber}: ${why}`);
    };
    const colon = line.indexOf(':');
    if (colon < 0) fail(KEYS_FILE_FORMAT);
    const name = line.slice(0, colon).trim();
    const rest = line.slice(colon + 1).trim();
    if (name === '') fail(`missing key name (${KEYS_FILE_FORMAT})`);
    if (rest === '') fail(`missing key for "${name}"`);
    const reserved = reservedKeyName(name);
    if (reserved !== null) fail(reserved);
    const earlier = firstLineOfName.get(name);
    if (earlier !== undefined) fail(`duplicate key name "${name}" (first on line ${earlier})`);
    firstLineOfName.set(name, lineNumber);
    const [secret = '', ...words] = rest.split(/[ \t]+/);
    const attributes = parseAttributes(words, fail);
    if (secret.toLowerCase().startsWith('sha256:')) {
      const hex = secret.slice('sha256:'.length);
      if (!SHA256_HEX.test(hex)) fail(`sha256 of "${name}" must be 64 hexadecimal characters`);
      entries.push({ name, sha256: hex.toLowerCase(), ...attributes });
    } else {
      entries.push({ name, key: secret, ...attributes });
    }
  });
  return entries;
}
