import { request } from 'undici';
import { ADMIN_KEY, PROXY_KEY } from './constants.mjs';

/**
 * GET on an operator endpoint (/metrics, /admin/...) with the admin key; a build from before admin keys
 * (a `BENCH_PEERS=baseline` checkout) refuses that key with 401, and is asked again with the proxy key,
 * whose success also clears the failure the first ask recorded.
 */
export async function operatorGet(url) {
  const first = await request(url, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  if (first.statusCode !== 401) return first;
  await first.body.dump();
  return request(url, { headers: { authorization: `Bearer ${PROXY_KEY}` } });
}
