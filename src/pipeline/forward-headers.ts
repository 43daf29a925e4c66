import type { IncomingHttpHeaders } from 'node:http';
import type { Protocol } from '../protocols/types.js';

/**
 * The client's headers a same-protocol backend gets (README, "Headers on the same protocol"): an
 * allow-list per protocol, so that nothing else the client sent — its credentials, cookies, hop-by-hop
 * headers, `host`, `x-forwarded-*` — can ever reach a provider. A translated request carries none of them:
 * they describe the client's protocol, not the backend's. Names are lower case, as Node gives them.
 */
export const FORWARDED_HEADERS: Readonly<Partial<Record<Protocol, readonly string[]>>> = {
  openai: ['openai-beta'],
  // The Responses API is OpenAI's too: its pass-through forwards the same header.
  responses: ['openai-beta'],
  anthropic: ['anthropic-version', 'anthropic-beta'],
};

/**
 * The allowed headers the client sent, for a backend of protocol `to`; undefined when there are none (the
 * usual case, and every translated request): the backend then sends its own headers object untouched.
 */
export function forwardedHeaders(
  headers: IncomingHttpHeaders,
  from: Protocol,
  to: Protocol,
): Readonly<Record<string, string>> | undefined {
  if (from !== to) return undefined;
  const names = FORWARDED_HEADERS[from];
  if (names === undefined) return undefined;
  let out: Record<string, string> | undefined;
  for (const name of names) {
    const value = headers[name];
    if (typeof value === 'string' && value !== '') (out ??= {})[name] = value;
  }
  return out;
}
