/** How a proxy key's attributes are written, in YAML and in the keys file (README, Teams: policies). */

/** Labels name teams: letters, digits, `.`, `_`, `-`; at most 64 characters. */
export const LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * An expiry as written in the keys file or YAML: an RFC 3339 date-time with its offset
 * (`2027-01-01T00:00:00Z`, `2027-01-01T09:00:00+02:00`) or a date alone (00:00 UTC that day).
 */
const EXPIRES_AT_PATTERN =
  /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/i;

/** Epoch milliseconds of an `expires_at` value, or null when it is not one (see EXPIRES_AT_PATTERN). */
export function parseExpiresAt(text: string): number | null {
  if (!EXPIRES_AT_PATTERN.test(text)) return null;
  const ms = Date.parse(text.length === 10 ? `${text}T00:00:00Z` : text);
  if (!Number.isFinite(ms)) return null;
  // Date.parse rolls 2027-02-30 over into March: only a date that reads back the same is real.
  const day = text.slice(0, 10);
  const offsetMatch = /(?:Z|([+-])(\d{2}):(\d{2}))$/i.exec(text);
  const offsetMinutes =
    offsetMatch?.[1] !== undefined
      ? (offsetMatch[1] === '-' ? -1 : 1) * (Number(offsetMatch[2]) * 60 + Number(offsetMatch[3]))
      : 0;
  return new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 10) === day ? ms : null;
}

export const EXPIRES_AT_FORMAT =
  'expected an RFC 3339 date-time with its offset (2027-01-01T00:00:00Z) or a date (2027-01-01)';

/** The identity of a request from a `--trusted-ip` address that sent no key (src/auth/gate.ts). */
export const TRUSTED_IP_KEY_NAME = 'trusted-ip';
/** How /metrics names requests without a key (the `key` label). */
export const NO_KEY_METRIC_NAME = 'none';
/** How /admin/usage groups requests without a key. */
export const NO_KEY_USAGE_NAME = '(none)';

/**
 * Names the proxy gives principals that are not keys, and what each stands for. A key's name is its identity
 * (README, Authentication: Keys): a key by one of these would take on theirs — a trusted address's stored
 * responses, sessions, usage and limits, or the key-less requests' lines in /metrics and /admin/usage — so
 * every key source refuses them, at startup and at a reload.
 */
const RESERVED_KEY_NAMES: ReadonlyMap<string, string> = new Map([
  [TRUSTED_IP_KEY_NAME, 'requests from a --trusted-ip address that send no key'],
  [NO_KEY_METRIC_NAME, 'requests without a key on /metrics'],
  [NO_KEY_USAGE_NAME, 'requests without a key in /admin/usage'],
]);

/** Why `name` may not name a proxy key, or null when it may. */
export function reservedKeyName(name: string): string | null {
  const stands = RESERVED_KEY_NAMES.get(name);
  return stands === undefined
    ? null
    : `key name "${name}" is reserved (the proxy's name for ${stands}): give the key another name`;
}
