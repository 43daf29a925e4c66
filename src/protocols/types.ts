/** The three wire protocols the proxy speaks, on either side. */
export type Protocol = 'openai' | 'anthropic' | 'gemini';

/**
 * Which protocol a request path belongs to (README, Endpoints): decides the error envelope and the front-end.
 */
export function protocolForPath(url: string): Protocol {
  if (url.startsWith('/anthropic/') || url === '/anthropic') return 'anthropic';
  if (url.startsWith('/v1beta/') || url === '/v1beta') return 'gemini';
  return 'openai';
}
