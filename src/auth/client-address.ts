import ipaddr from 'ipaddr.js';
import proxyAddr from 'proxy-addr';
import type { IncomingMessage } from 'node:http';

type IPAddress = ipaddr.IPv4 | ipaddr.IPv6;
type Range = [IPAddress, number];

/**
 * Parses one address strictly: IPv4 only in dotted-quad form (ipaddr.js would also accept `1` or `0x7f.1`,
 * which no operator means), IPv6 in any RFC 4291 form; IPv4-mapped IPv6 becomes IPv4. Null if invalid.
 */
function parseAddress(text: string): IPAddress | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (!ipaddr.IPv6.isValid(text)) return null;
  const address = ipaddr.IPv6.parse(text);
  return address.isIPv4MappedAddress() ? address.toIPv4Address() : address;
}

/** Parses `IP` or `IP/prefix`; a mapped IPv6 range (`::ffff:10.0.0.0/104`) becomes its IPv4 range. */
function parseRange(text: string): Range | null {
  const slash = text.indexOf('/');
  const address = parseAddress(slash < 0 ? text : text.slice(0, slash));
  if (address === null) return null;
  const maxBits = address.kind() === 'ipv4' ? 32 : 128;
  if (slash < 0) return [address, maxBits];
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return null;
  let bits = Number(prefixText);
  // A mapped IPv6 prefix counts the 96 bits of `::ffff:` before the IPv4 part.
  if (address.kind() === 'ipv4' && text.slice(0, slash).includes(':')) bits -= 96;
  return bits >= 0 && bits <= maxBits ? [address, bits] : null;
}

/** The first 64 bits of an IPv6 address, as `2001:db8:1:2::/64`. */
function ipv6Prefix64(address: ipaddr.IPv6): string {
  const parts = [...address.parts.slice(0, 4), 0, 0, 0, 0];
  return `${new ipaddr.IPv6(parts).toRFC5952String()}/64`;
}

/**
 * The key under which brute-force protection counts a client (SPEC §2.5): an IPv4 address as is, an
 * IPv4-mapped IPv6 address as its IPv4 address, any other IPv6 address as its /64 prefix, because one
 * subscriber usually owns a whole /64.
 */
export function clientKeyFor(ip: string): string {
  // Node reports IPv4 peers in dotted-quad form: the common case needs no parsing.
  if (!ip.includes(':')) return ip;
  const address = parseAddress(ip);
  if (address === null) return ip;
  return address.kind() === 'ipv4' ? address.toString() : ipv6Prefix64(address as ipaddr.IPv6);
}

/**
 * The client key an operator means by `input` (an IPv4 or IPv6 address, or a `/64` key as shown by
 * `GET /admin/auth/blocks`), or null when it is neither.
 */
export function normalizeClientKey(input: string): string | null {
  const text = input.trim();
  const range = parseRange(text);
  if (range === null) return null;
  const [address, bits] = range;
  if (address.kind() === 'ipv4') return bits === 32 ? address.toString() : null;
  const isAddressOr64 = !text.includes('/') || bits === 64;
  return isAddressOr64 ? ipv6Prefix64(address as ipaddr.IPv6) : null;
}

/** Membership test for a list of IPs and CIDRs, e.g. `--trusted-ip` (SPEC §2.5). */
export class CidrMatcher {
  private readonly ranges: readonly Range[];

  /** Throws an error naming the first entry that is not an IP address or CIDR. */
  constructor(entries: readonly string[], what = 'IP address or CIDR') {
    this.ranges = entries.map((entry) => {
      const range = parseRange(entry.trim());
      if (range === null)
        throw new Error(`invalid ${what} "${entry}": expected e.g. 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32`);
      return range;
    });
  }

  get size(): number {
    return this.ranges.length;
  }

  contains(ip: string): boolean {
    if (this.ranges.length === 0) return false;
    const address = parseAddress(ip);
    if (address === null) return false;
    return this.ranges.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits));
  }
}

const PROXY_ADDR_NAMES: ReadonlySet<string> = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * A `trustProxy` function for Fastify: `X-Forwarded-For` is believed only for hops whose address is in
 * `cidrs`, so the client is the right-most address that is not a trusted proxy, and a spoofed header from an
 * untrusted peer is ignored. Also accepts proxy-addr's names `loopback`, `linklocal`, `uniquelocal`.
 */
export function compileTrustProxy(cidrs: readonly string[]): (address: string, hop: number) => boolean {
  const entries = cidrs.map((entry) => entry.trim());
  for (const entry of entries) {
    if (!PROXY_ADDR_NAMES.has(entry) && parseRange(entry) === null) {
      throw new Error(`invalid trusted proxy "${entry}": expected an IP address or CIDR, e.g. 10.0.0.0/8`);
    }
  }
  return proxyAddr.compile(entries);
}

/**
 * The client's address as Fastify's `request.ip` computes it: the peer, or with trusted proxies the first
 * address in X-Forwarded-For (from the right) that is not a trusted proxy.
 */
export function resolveClientAddress(
  req: IncomingMessage,
  trustProxy: ((address: string, hop: number) => boolean) | false,
): string {
  if (trustProxy === false) return req.socket.remoteAddress ?? '';
  return proxyAddr(req, trustProxy);
}
