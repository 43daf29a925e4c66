/** Text with every secret the proxy knows masked: the current redactor's `redact` (README, Key hygiene). */
export type Redact = (text: string) => string;

/**
 * Client text as an answer or a log line quotes it: redacted whole, then cut to `max` characters (`…` marks a
 * cut). In that order: a secret cut in two is no longer recognised, and the part left would show its start.
 */
export function redactedExcerpt(text: string, max: number, redact: Redact): string {
  const safe = redact(text);
  return safe.length > max ? `${safe.slice(0, max)}…` : safe;
}
