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
