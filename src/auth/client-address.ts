import ipaddr from 'ipaddr.js';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Redact } from '../redaction/excerpt.js';

type IPAddress = ipaddr.IPv4 | ipaddr.IPv6;
type Range = [IPAddress, number];

/**
 * IPv4 in dotted-quad form, each octet decimal without a leading zero (RFC 3986 `dec-octet`, as RFC 7239
 * requires and as `inet_pton` and Node's `net.isIPv4` read it). `010.0.0.1` is refused, not read as 10.0.0.1
 * or as octal 8.0.0.1: a spelling that tools read two ways is not an address here. ipaddr.js alone would also
 * take `1` or `0x7f.1`, which no operator means.
 */
const DOTTED_QUAD = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function parseIPv4(text: string): ipaddr.IPv4 | null {
  return DOTTED_QUAD.test(text) ? new ipaddr.IPv4(text.split('.').map(Number)) : null;
}

/**
 * IPv6 in any RFC 4291 form. An embedded IPv4 tail (`::ffff:1.2.3.4`) is held to the dotted-quad rule above
 * and converted here, since ipaddr.js takes leading zeros there and reads `::1.2.3.4` as `::ffff:1.2.3.4`.
 * A zone (`fe80::1%eth0`) only when `allowZone`: a socket's peer may have one, a forwarded address may not.
 */
function parseIPv6(text: string, allowZone: boolean): ipaddr.IPv6 | null {
  let body = text;
  let zone = '';
  const percent = text.indexOf('%');
  if (percent >= 0) {
    if (!allowZone) return null;
    body = text.slice(0, percent);
    zone = text.slice(percent);
  }
  if (body.includes('.')) {
    const colon = body.lastIndexOf(':');
    const v4 = parseIPv4(body.slice(colon + 1));
    if (colon < 0 || v4 === null) return null;
    const [a, b, c, d] = v4.octets as [number, number, number, number];
    body = `${body.slice(0, colon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  try {
    return ipaddr.IPv6.parse(body + zone);
  } catch {
    return null;
  }
}

/** Parses one address strictly (see parseIPv4, parseIPv6); IPv4-mapped IPv6 becomes IPv4. Null if invalid. */
function parseAddress(text: string, allowZone = true): IPAddress | null {
  if (!text.includes(':')) return parseIPv4(text);
  const address = parseIPv6(text, allowZone);
  if (address === null) return null;
  return address.isIPv4MappedAddress() ? address.toIPv4Address() : address;
}

/** The canonical text of an address: dotted quad for IPv4, RFC 5952 for IPv6. */
function canonical(address: IPAddress): string {
  return address.kind() === 'ipv4' ? address.toString() : (address as ipaddr.IPv6).toRFC5952String();
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

/** Whether `text` is an IP address or a CIDR, as `--trusted-ip` takes them (settings validate with this). */
export function isAddressRange(text: string): boolean {
  return parseRange(text.trim()) !== null;
}

/** Whether `text` is an entry `--trusted-proxy` takes: an address, a CIDR or a proxy-addr range name. */
export function isTrustedProxyEntry(text: string): boolean {
  return namedRange(text) !== undefined || isAddressRange(text);
}

/** The first 64 bits of an IPv6 address, as `2001:db8:1:2::/64`. */
function ipv6Prefix64(address: ipaddr.IPv6): string {
  const parts = [...address.parts.slice(0, 4), 0, 0, 0, 0];
  return `${new ipaddr.IPv6(parts).toRFC5952String()}/64`;
}

/**
 * The key under which brute-force protection counts a client (README, Authentication: Brute-force protection): an IPv4 address as is, an
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

/** Membership test for a list of IPs and CIDRs, e.g. `--trusted-ip` (README, Authentication: Brute-force protection). */
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
    return address !== null && this.containsAddress(address);
  }

  /** `contains` for an address already parsed (IPv4-mapped IPv6 already made IPv4). */
  containsAddress(address: IPAddress): boolean {
    return this.ranges.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits));
  }
}

/** proxy-addr's names for common ranges, still accepted in `--trusted-proxy`. */
const NAMED_RANGES: Readonly<Record<string, readonly string[]>> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** The ranges a proxy-addr name stands for; undefined for any other text (`toString` included). */
function namedRange(text: string): readonly string[] | undefined {
  const name = text.trim();
  return Object.hasOwn(NAMED_RANGES, name) ? NAMED_RANGES[name] : undefined;
}

/** No real chain has this many proxies; a longer run of trusted addresses is not believed. */
const MAX_TRUSTED_HOPS = 32;
/** The longest forwarded value worth parsing: `[` + a full IPv6 with an IPv4 tail + `]:65535` is 53. */
const MAX_NODE_LENGTH = 64;
const MAX_LOGGED_VALUE_LENGTH = 64;

/** A port, or RFC 7239's obfuscated port (`_` then letters, digits, `.`, `_`, `-`). */
function isPort(text: string): boolean {
  if (/^\d{1,5}$/.test(text)) return Number(text) <= 65535;
  return /^_[A-Za-z0-9._-]+$/.test(text);
}

/**
 * One forwarded node as a proxy writes it (RFC 7239 `node`, and the X-Forwarded-For forms in use): `IPv4`,
 * `IPv4:port` (Azure Application Gateway), `IPv6`, `[IPv6]`, `[IPv6]:port`. Null for anything else,
 * including `unknown` and obfuscated identifiers (`_hidden`): those name no address.
 */
function parseNode(text: string): IPAddress | null {
  if (text.length > MAX_NODE_LENGTH) return null;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return null;
    const rest = text.slice(close + 1);
    if (rest !== '' && !(rest.startsWith(':') && isPort(rest.slice(1)))) return null;
    const inner = text.slice(1, close);
    return inner.includes(':') ? parseAddress(inner, false) : null;
  }
  const colon = text.indexOf(':');
  if (colon < 0) return parseIPv4(text);
  // One colon can only be IPv4:port; an IPv6 address has at least two (and no port without brackets).
  if (text.indexOf(':', colon + 1) < 0)
    return isPort(text.slice(colon + 1)) ? parseIPv4(text.slice(0, colon)) : null;
  return parseAddress(text, false);
}

/** Trims HTTP's optional whitespace (space and tab) only. */
function trimOws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text[start] === ' ' || text[start] === '\t')) start++;
  while (end > start && (text[end - 1] === ' ' || text[end - 1] === '\t')) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/**
 * The `for=` value of one RFC 7239 element (`for=192.0.2.60;proto=http;by=203.0.113.43`): parameter names in
 * any case, the value a token or a quoted string. Null when the element has no `for`, has it twice, or is
 * malformed. A quoted address never holds `"` or `\`, so a quoted value holding one is refused, not unescaped.
 */
function forwardedFor(element: string): string | null {
  let found: string | null = null;
  for (const part of element.split(';')) {
    const pair = trimOws(part);
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    if (equals < 0) return null;
    if (trimOws(pair.slice(0, equals)).toLowerCase() !== 'for') continue;
    if (found !== null) return null;
    let value = trimOws(pair.slice(equals + 1));
    if (value.startsWith('"')) {
      if (value.length < 2 || !value.endsWith('"')) return null;
      value = value.slice(1, -1);
      if (value.includes('"') || value.includes('\\')) return null;
    }
    found = value;
  }
  return found;
}

function headerText(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value.join(',') : value;
  return text === undefined || trimOws(text) === '' ? undefined : text;
}

/**
 * An attacker-controlled value, fit for a log line: redacted, cut short, printable ASCII only. Redacted first,
 * as a whole: a secret cut in two, or with a character replaced, is no longer recognised by the log's writer.
 */
function loggable(value: string, redact: Redact): string {
  const safe = redact(value);
  const cut = safe.length > MAX_LOGGED_VALUE_LENGTH ? safe.slice(0, MAX_LOGGED_VALUE_LENGTH) : safe;
  const printable = cut.replace(/[^\x20-\x7e]/g, '?');
  return cut.length < safe.length ? `${printable}…` : printable;
}

export interface ClientAddressLog {
  warn(obj: object, msg: string): void;
}

/** Where the warning about an unusable forwarding header goes, and the redactor its quote of the header uses. */
export interface ClientAddressWarnings {
  log: ClientAddressLog;
  redact: Redact;
}

/**
 * The reverse proxies of `--trusted-proxy` and the client behind them (README, Authentication: Brute-force protection).
 *
 * - Only a peer in the list is believed; an untrusted peer's forwarding headers change nothing.
 * - `X-Forwarded-For` when the peer sent one (not empty), else `Forwarded` (RFC 7239, its `for=` values).
 *   Never both: the header that the proxy does not write is whatever the client sent, and nginx, the cloud
 *   load balancers and most others write X-Forwarded-For and pass a client's `Forwarded` through untouched.
 *   A proxy that writes only `Forwarded` must drop a client's X-Forwarded-For.
 * - Walking from the right, the first address that is not a trusted proxy is the client; if every address
 *   is trusted, the left-most. Empty list elements are skipped (RFC 9110 §5.6.1).
 * - Every address is parsed strictly and given in canonical form: `IPv4:port`, `[IPv6]:port` and `[IPv6]`
 *   lose port and brackets, IPv4-mapped IPv6 becomes IPv4, IPv6 is written as RFC 5952 says. IPv4 with a
 *   leading zero (`010.0.0.1`), `unknown`, an obfuscated `_name` or garbage met on the walk is not an
 *   address: the request is then counted against the peer (the trusted proxy itself), and a warning is
 *   logged once per header name, since it means the proxy's header cannot be used.
 */
export class TrustedProxies {
  private readonly matcher: CidrMatcher;
  private readonly warned = new Set<string>();

  /** Throws an error naming the first entry that is not an IP address, a CIDR or a proxy-addr range name. */
  constructor(
    entries: readonly string[],
    private readonly warnings: ClientAddressWarnings | null = null,
  ) {
    const expanded = entries.flatMap((entry) => namedRange(entry) ?? [entry]);
    this.matcher = new CidrMatcher(expanded, 'trusted proxy');
  }

  /** Whether `address` (a peer or a forwarded hop) is one of the trusted proxies. */
  trusts(address: string): boolean {
    return this.matcher.contains(address);
  }

  /**
   * The last peer seen, parsed, and whether it is trusted: behind a reverse proxy every request comes from one
   * of a few peers, so most requests parse none.
   */
  private lastPeer: { text: string; address: IPAddress; trusted: boolean } | null = null;

  /** The client address of a request that came from `peer` with `headers` (see the class comment). */
  clientAddress(peer: string, headers: IncomingHttpHeaders): string {
    let last = this.lastPeer;
    if (last === null || last.text !== peer) {
      const address = parseAddress(peer);
      if (address === null) return peer;
      last = { text: peer, address, trusted: this.matcher.containsAddress(address) };
      this.lastPeer = last;
    }
    const peerAddress = last.address;
    if (!last.trusted) return canonical(peerAddress);
    const forwardedFor = headerText(headers['x-forwarded-for']);
    const header = forwardedFor === undefined ? 'forwarded' : 'x-forwarded-for';
    const value = forwardedFor ?? headerText(headers.forwarded);
    if (value === undefined) return canonical(peerAddress);
    const client = this.walk(value, header === 'forwarded');
    if (typeof client !== 'string') return canonical(client ?? peerAddress);
    this.warnOnce(header, client, peer);
    return canonical(peerAddress);
  }

  /**
   * The client in a forwarding header, right to left: its address, null when the header names no hop, or
   * the text of the first hop that is not an address. `Forwarded` too is split at every comma, in quotes or
   * not: no address holds one, and a quote that a client left open must not swallow the element its proxy
   * appended after it.
   */
  private walk(header: string, rfc7239: boolean): IPAddress | string | null {
    let client: IPAddress | null = null;
    let trustedHops = 0;
    let end = header.length;
    while (end >= 0) {
      const comma = end === 0 ? -1 : header.lastIndexOf(',', end - 1);
      const element = trimOws(header.slice(comma + 1, end));
      end = comma;
      if (element === '') continue;
      const node = rfc7239 ? forwardedFor(element) : element;
      const address = node === null ? null : parseNode(node);
      if (address === null) return node ?? element;
      if (!this.matcher.containsAddress(address)) return address;
      if (++trustedHops > MAX_TRUSTED_HOPS) return `(more than ${MAX_TRUSTED_HOPS} trusted proxies)`;
      client = address;
    }
    return client;
  }

  private warnOnce(header: string, value: string, peer: string): void {
    const warnings = this.warnings;
    if (warnings === null || this.warned.has(header)) return;
    this.warned.add(header);
    const shown = loggable(value, warnings.redact);
    warnings.log.warn(
      { header, value: shown, proxy: peer },
      `Trusted proxy ${peer} sent a ${header} header whose client is not an IP address ("${shown}"): ` +
        "such requests are counted against the proxy's own address (logged once)",
    );
  }
}

/**
 * The trusted proxies (`--trusted-proxy`): IP addresses, CIDRs and proxy-addr's names `loopback`,
 * `linklocal`, `uniquelocal`. `warnings` gets the warning about an unusable forwarding header.
 */
export function compileTrustProxy(
  cidrs: readonly string[],
  warnings?: ClientAddressWarnings,
): TrustedProxies {
  return new TrustedProxies(cidrs, warnings ?? null);
}

/**
 * The client's address: the peer, or with trusted proxies the client they forwarded (TrustedProxies). The
 * chat lane calls this; Fastify's `request.ip` is the same function (installClientAddress).
 */
export function resolveClientAddress(req: IncomingMessage, trustProxy: TrustedProxies | false): string {
  const peer = req.socket.remoteAddress ?? '';
  return trustProxy === false ? peer : trustProxy.clientAddress(peer, req.headers);
}
