import { jsonQuote } from '../observability/json-line.js';

/** What the warning about a failed authentication says (README, Logs): never the key. */
export interface FailureFields {
  method: string;
  /** The path only, cut short (a query may carry a credential). */
  path: string;
  clientAddress: string;
  reason: string;
  credentialSource: string | null;
  /** False for a failure the brute-force guard does not count (a cross-site request without a key). */
  counted: boolean;
}

/** The fields as the gate logs them through pino: `counted` only when false. */
export function failureObject(fields: FailureFields): Record<string, unknown> {
  const { counted, ...rest } = fields;
  return counted ? rest : { ...rest, counted: false };
}

export function failureMessage(reason: string): string {
  return `Authentication failed (${reason} API key)`;
}

/**
 * The warning line of a failed authentication as pino writes it at level warn (`base` off, `msg` last),
 * built by a template: every request with a wrong key writes one, and an attacker sends them at full speed;
 * pino's generic serialiser cost several times the template (docs/performance.md, the attack row). A test
 * holds the two to the same output.
 */
export function formatFailureLine(fields: FailureFields, time: number): string {
  const source = fields.credentialSource === null ? 'null' : jsonQuote(fields.credentialSource);
  return (
    `{"level":40,"time":${time},"method":${jsonQuote(fields.method)},"path":${jsonQuote(fields.path)}` +
    `,"clientAddress":${jsonQuote(fields.clientAddress)},"reason":${jsonQuote(fields.reason)}` +
    `,"credentialSource":${source}${fields.counted ? '' : ',"counted":false'}` +
    `,"msg":${jsonQuote(failureMessage(fields.reason))}}\n`
  );
}
