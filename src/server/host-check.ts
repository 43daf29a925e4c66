import { BlockList, isIP } from 'node:net';
import { ProxyError } from '../proxy-error.js';

/**
 * With authentication off nothing but the network guards the provider keys, and a web page can reach a
 * proxy on loopback through the browser — directly, or by DNS rebinding (the attacker's own name, resolved
 * to 127.0.0.1, with the browser treating the answers as same-origin). Such a request still names the
 * attacker's host in `Host`, so the proxy answers only requests whose `Host` names it (README
 * "Turning it off"): `localhost`, a loopback address, the address it is bound to, or an allowed host.
 */
export type HostCheck = (host: string | undefined) => boolean;

const LOOPBACK = new BlockList();
// IPv4 rules also match IPv4-mapped IPv6 addresses (::ffff:127.0.0.1).
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Addresses that name no interface: a browser sends `Host: 0.0.0.0` only for a page that targets it. */
const UNSPECIFIED = new Set(['0.0.0.0', '::', '[::]']);

/** The host part of a `Host` value, lower case: without its port, an IPv6 literal without its brackets. */
function hostName(value: string): string {
  const lower = value.toLowerCase();
  if (lower.startsWith('[')) {
    const close = lower.indexOf(']');
    return close < 0 ? lower : lower.slice(1, close);
  }
  const colon = lower.indexOf(':');
  return colon < 0 ? lower : lower.slice(0, colon);
}

function isLoopback(name: string): boolean {
  const family = isIP(name);
  return family !== 0 && LOOPBACK.check(name, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The check for `Host` values: true for a host that names this proxy. `bindHost` is `--host`; `allowed` the
 * `--allowed-host` names (each matched with or without a port, case-insensitively). A request without a
 * `Host` (HTTP/1.0) is refused: nothing says it was meant for this proxy.
 */
export function createHostCheck(bindHost: string, allowed: readonly string[]): HostCheck {
  const names = new Set<string>(['localhost']);
  const bound = hostName(bindHost.includes(':') && !bindHost.startsWith('[') ? `[${bindHost}]` : bindHost);
  if (!UNSPECIFIED.has(bound)) names.add(bound);
  const exact = new Set<string>();
  for (const entry of allowed) {
    const lower = entry.toLowerCase();
    // An entry with a port matches only that port; a bare name (or IPv6 literal) any port.
    if (/^\[.*\]:\d+$|^[^:[\]]+:\d+$/.test(lower)) exact.add(lower);
    else names.add(hostName(lower.includes(':') && !lower.startsWith('[') ? `[${lower}]` : lower));
  }
  // Clients send the same Host on every request: the last one accepted is remembered, so the usual request
  // costs one string comparison.
  let lastAccepted = '';
  return (host) => {
    if (host === undefined || host.length === 0) return false;
    if (host === lastAccepted) return true;
    const name = hostName(host);
    const ok = names.has(name) || isLoopback(name) || exact.has(host.toLowerCase());
    if (ok) lastAccepted = host;
    return ok;
  };
}

export function misdirected(): ProxyError {
  return new ProxyError(
    421,
    'Misdirected request: with authentication disabled the proxy answers only requests addressed to localhost, ' +
      'a loopback address, its --host or an --allowed-host name',
    { code: 'misdirected_request' },
  );
}
