import Fastify from 'fastify';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { afterAll, describe, expect, it } from 'vitest';
import { Redactor } from '../redaction/redactor.js';
import { installClientAddress } from '../server/auth-hook.js';
import {
  CidrMatcher,
  clientKeyFor,
  compileTrustProxy,
  isAddressRange,
  isTrustedProxyEntry,
  normalizeClientKey,
  resolveClientAddress,
} from './client-address.js';

describe('clientKeyFor', () => {
  it.each([
    ['203.0.113.9', '203.0.113.9'],
    ['::ffff:203.0.113.9', '203.0.113.9'],
    ['::FFFF:cb00:7109', '203.0.113.9'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8::/64'],
    ['::1', '::/64'],
    ['fe80::1%eth0', 'fe80::/64'],
    ['not-an-address', 'not-an-address'],
  ])('%s → %s', (ip, key) => {
    expect(clientKeyFor(ip)).toBe(key);
  });
});

describe('normalizeClientKey', () => {
  it.each([
    ['203.0.113.9', '203.0.113.9'],
    [' 203.0.113.9 ', '203.0.113.9'],
    ['203.0.113.9/32', '203.0.113.9'],
    ['::ffff:203.0.113.9', '203.0.113.9'],
    ['2001:db8:1:2::/64', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:aaaa::1', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2:0:0:0:0/64', '2001:db8:1:2::/64'],
    ['203.0.113.0/24', null],
    ['2001:db8::/48', null],
    ['1', null],
    ['', null],
    ['203.0.113.9/', null],
    ['hello', null],
  ])('%j → %j', (input, key) => {
    expect(normalizeClientKey(input)).toBe(key);
  });
});

describe('CidrMatcher', () => {
  const matcher = new CidrMatcher(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32', '::ffff:198.51.100.0/120']);

  it.each([
    ['10.1.2.3', true],
    ['::ffff:10.1.2.3', true],
    ['11.0.0.1', false],
    ['192.0.2.7', true],
    ['192.0.2.8', false],
    ['2001:db8:ffff::1', true],
    ['2001:db9::1', false],
    ['198.51.100.77', true],
    ['198.51.101.1', false],
    ['garbage', false],
  ])('contains(%s) = %s', (ip, expected) => {
    expect(matcher.contains(ip)).toBe(expected);
  });

  it('is empty by default: loopback is not trusted implicitly', () => {
    expect(new CidrMatcher([]).contains('127.0.0.1')).toBe(false);
  });

  it.each(['10.0.0.0/33', '10.0.0/8', '1', 'localhost', '2001:db8::/129', '10.0.0.0/x', ''])(
    'names the bad entry %j',
    (entry) => {
      expect(() => new CidrMatcher(['10.0.0.0/8', entry])).toThrow(`"${entry}"`);
    },
  );
});

describe('strict address parsing', () => {
  it.each([
    ['::ffff:010.0.0.1', false],
    ['::ffff:10.0.0.1', true],
    ['010.0.0.1', false],
    ['10.0.0.01', false],
  ])('CidrMatcher accepts %s: %s', (entry, ok) => {
    const build = () => new CidrMatcher([entry]);
    if (ok) expect(build).not.toThrow();
    else expect(build).toThrow(`"${entry}"`);
  });

  it('reads ::1.2.3.4 as the IPv4-compatible ::102:304, not as the mapped 1.2.3.4', () => {
    expect(clientKeyFor('::1.2.3.4')).toBe('::/64');
    expect(new CidrMatcher(['1.2.3.4']).contains('::1.2.3.4')).toBe(false);
  });
});

const PEER = '10.0.0.1';

describe('TrustedProxies.clientAddress', () => {
  const proxies = compileTrustProxy(['10.0.0.0/8']);
  const viaXff = (value: string, peer = PEER) => proxies.clientAddress(peer, { 'x-forwarded-for': value });
  const viaForwarded = (value: string, peer = PEER) => proxies.clientAddress(peer, { forwarded: value });

  describe('X-Forwarded-For from a trusted proxy: every spelling of one address gives one canonical address', () => {
    it.each([
      ['203.0.113.9', '203.0.113.9'],
      ['203.0.113.9:4711', '203.0.113.9'],
      [' 203.0.113.9 ', '203.0.113.9'],
      ['::ffff:203.0.113.9', '203.0.113.9'],
      ['::FFFF:CB00:7109', '203.0.113.9'],
      ['0:0:0:0:0:ffff:203.0.113.9', '203.0.113.9'],
      ['[::ffff:203.0.113.9]:443', '203.0.113.9'],
      ['2001:db8::1', '2001:db8::1'],
      ['2001:DB8::1', '2001:db8::1'],
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['[2001:db8::1]', '2001:db8::1'],
      ['[2001:db8::1]:4711', '2001:db8::1'],
      ['[2001:db8::1]:_obf', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['::1.2.3.4', '::102:304'],
      ['203.0.113.9:65535', '203.0.113.9'],
    ])('%j → %s', (value, client) => {
      expect(viaXff(value)).toBe(client);
    });
  });

  describe('a value that is not an address makes the request count against the trusted proxy (the peer)', () => {
    it.each([
      ['010.0.0.1', 'leading zero: octal or decimal is ambiguous, so refused'],
      ['203.0.113.009', 'leading zero'],
      ['::ffff:010.0.0.1', 'leading zero in an IPv4 tail'],
      ['1.2.3', 'not a dotted quad'],
      ['0x7f.0.0.1', 'hexadecimal'],
      ['2130706433', 'a number'],
      ['256.0.0.1', 'octet out of range'],
      ['203.0.113.9:65536', 'port out of range'],
      ['203.0.113.9:', 'empty port'],
      ['203.0.113.9:http', 'named port'],
      ['[2001:db8::1', 'unclosed bracket'],
      ['[2001:db8::1]4711', 'no colon before the port'],
      ['[203.0.113.9]', 'IPv4 in brackets'],
      ['[203.0.113.9]:80', 'IPv4 in brackets'],
      ['fe80::1%eth0', 'a zone id'],
      ['unknown', 'RFC 7239 unknown'],
      ['_hidden', 'an obfuscated identifier'],
      ['garbage', 'garbage'],
      ['203.0.113.9 198.51.100.1', 'two addresses without a comma'],
      ['"203.0.113.9"', 'quotes belong to Forwarded'],
      [`${'1'.repeat(70)}`, 'too long'],
    ])('%j (%s)', (value) => {
      expect(viaXff(value)).toBe(PEER);
    });
  });

  it('walks from the right: the right-most address that is not a trusted proxy is the client', () => {
    expect(viaXff('198.51.100.1, 203.0.113.9')).toBe('203.0.113.9');
    expect(viaXff('198.51.100.1, 203.0.113.9:1234, 10.0.0.2')).toBe('203.0.113.9');
    expect(viaXff('garbage, 203.0.113.9, 10.0.0.2')).toBe('203.0.113.9');
    expect(viaXff('203.0.113.9, garbage, 10.0.0.2')).toBe(PEER);
    // Every hop trusted: the left-most.
    expect(viaXff('10.0.0.5, 10.0.0.2')).toBe('10.0.0.5');
    // Empty list elements are ignored (RFC 9110 §5.6.1); an empty header is no header.
    expect(viaXff('203.0.113.9,, ,')).toBe('203.0.113.9');
    expect(viaXff(' ')).toBe(PEER);
    expect(viaXff(',')).toBe(PEER);
  });

  it('gives up on an absurd run of trusted hops', () => {
    const hops = Array.from({ length: 40 }, (_, i) => `10.0.1.${i}`).join(', ');
    expect(viaXff(`203.0.113.9, ${hops}`)).toBe(PEER);
  });

  it('joins a header sent more than once (Node joins it with ", ", light-my-request may give an array)', () => {
    expect(proxies.clientAddress(PEER, { 'x-forwarded-for': ['198.51.100.1', '203.0.113.9'] })).toBe(
      '203.0.113.9',
    );
  });

  describe('Forwarded (RFC 7239)', () => {
    it.each([
      ['for=203.0.113.9', '203.0.113.9'],
      ['For=203.0.113.9', '203.0.113.9'],
      ['FOR="203.0.113.9"', '203.0.113.9'],
      ['for="203.0.113.9:4711"', '203.0.113.9'],
      ['for="[2001:db8::1]:4711"', '2001:db8::1'],
      ['for="[2001:DB8:0::1]"', '2001:db8::1'],
      ['for=[2001:db8::1]', '2001:db8::1'],
      ['for="[::ffff:203.0.113.9]"', '203.0.113.9'],
      ['for=203.0.113.9;proto=https;by=10.0.0.1', '203.0.113.9'],
      ['proto=https; for=203.0.113.9 ;host=example.com', '203.0.113.9'],
      ['for=198.51.100.1, for=203.0.113.9', '203.0.113.9'],
      ['for=198.51.100.1;proto=http, for="203.0.113.9:80", for=10.0.0.2', '203.0.113.9'],
      ['for=10.0.0.5, for=10.0.0.2', '10.0.0.5'],
      ['for=203.0.113.9,', '203.0.113.9'],
    ])('%s → %s', (value, client) => {
      expect(viaForwarded(value)).toBe(client);
    });

    it.each([
      ['for=unknown', 'unknown'],
      ['for="unknown"', 'unknown'],
      ['for=_hidden', 'obfuscated'],
      ['for="_hidden:_port"', 'obfuscated'],
      ['for="[2001:db8::1]:_port", for=_hidden', 'obfuscated right-most hop'],
      ['proto=https;by=10.0.0.9', 'no for'],
      ['for=203.0.113.9;for=198.51.100.1', 'for twice in one element'],
      ['for="203.0.113.9', 'unterminated quote'],
      ['for="', 'a lone quote'],
      ['for=203.0.113.9;proto', 'a parameter without ='],
      ['for="203.0.113.9\\"', 'an escape'],
      ['for=010.0.0.1', 'leading zero'],
      ['for="[fe80::1%eth0]"', 'a zone id'],
      ['for=', 'empty value'],
      ['for=203.0.113.9 198.51.100.1', 'two addresses'],
    ])('%s (%s) → the peer', (value) => {
      expect(viaForwarded(value)).toBe(PEER);
    });

    it('cannot be smuggled past: a quote a client left open does not swallow the element its proxy appended', () => {
      expect(viaForwarded('for="198.51.100.66, for=203.0.113.9')).toBe('203.0.113.9');
      expect(viaForwarded('for="a;b,c", for=203.0.113.9')).toBe('203.0.113.9');
    });
  });

  describe('precedence: X-Forwarded-For when present, else Forwarded (never both)', () => {
    it('takes X-Forwarded-For over Forwarded', () => {
      const headers = { 'x-forwarded-for': '203.0.113.9', forwarded: 'for=198.51.100.1' };
      expect(proxies.clientAddress(PEER, headers)).toBe('203.0.113.9');
    });

    it('does not fall back to Forwarded when X-Forwarded-For is unusable', () => {
      const headers = { 'x-forwarded-for': 'garbage', forwarded: 'for=198.51.100.1' };
      expect(proxies.clientAddress(PEER, headers)).toBe(PEER);
    });

    it('takes Forwarded when X-Forwarded-For is absent or empty', () => {
      expect(proxies.clientAddress(PEER, { forwarded: 'for=198.51.100.1' })).toBe('198.51.100.1');
      const headers = { 'x-forwarded-for': '', forwarded: 'for=198.51.100.1' };
      expect(proxies.clientAddress(PEER, headers)).toBe('198.51.100.1');
    });
  });

  describe('an untrusted peer: its forwarding headers change nothing', () => {
    it.each([
      { 'x-forwarded-for': '198.51.100.1' },
      { 'x-forwarded-for': '10.0.0.5, 198.51.100.1' },
      { forwarded: 'for=198.51.100.1' },
      { forwarded: 'for="[2001:db8::1]:80"' },
      { 'x-real-ip': '198.51.100.1', 'true-client-ip': '198.51.100.1' },
    ])('%j', (headers) => {
      expect(proxies.clientAddress('203.0.113.9', headers)).toBe('203.0.113.9');
    });

    it('is given in canonical form', () => {
      expect(proxies.clientAddress('::ffff:203.0.113.9', { 'x-forwarded-for': '1.1.1.1' })).toBe(
        '203.0.113.9',
      );
      expect(proxies.clientAddress('2001:DB8:0::1', {})).toBe('2001:db8::1');
    });
  });

  it('judges each peer anew when the peer changes (the last peer is remembered, not the first)', () => {
    const once = compileTrustProxy(['10.0.0.0/8']);
    const xff = { 'x-forwarded-for': '198.51.100.1' };
    expect(once.clientAddress(PEER, xff)).toBe('198.51.100.1');
    expect(once.clientAddress('203.0.113.9', xff)).toBe('203.0.113.9');
    expect(once.clientAddress(PEER, xff)).toBe('198.51.100.1');
    expect(once.clientAddress(PEER, { 'x-forwarded-for': '192.0.2.4' })).toBe('192.0.2.4');
    expect(once.clientAddress('not an address', xff)).toBe('not an address');
    expect(once.clientAddress('::ffff:203.0.113.9', xff)).toBe('203.0.113.9');
    expect(once.clientAddress(PEER, {})).toBe(PEER);
  });

  it('trusts a mapped peer, and the canonical form of the peer when a header is unusable', () => {
    expect(proxies.clientAddress('::ffff:10.0.0.1', { 'x-forwarded-for': '203.0.113.9' })).toBe(
      '203.0.113.9',
    );
    expect(proxies.clientAddress('::ffff:10.0.0.1', { 'x-forwarded-for': 'garbage' })).toBe(PEER);
    expect(proxies.clientAddress('::ffff:10.0.0.1', {})).toBe(PEER);
  });

  it('gives back a peer that is not an address as it is (a socket already closed has none)', () => {
    expect(proxies.clientAddress('', { 'x-forwarded-for': '203.0.113.9' })).toBe('');
  });

  it('accepts proxy-addr range names and names an invalid entry', () => {
    const named = compileTrustProxy(['loopback', 'uniquelocal']);
    expect(named.trusts('127.0.0.1')).toBe(true);
    expect(named.trusts('::1')).toBe(true);
    expect(named.trusts('192.168.1.1')).toBe(true);
    expect(named.trusts('fd00::1')).toBe(true);
    expect(named.trusts('203.0.113.9')).toBe(false);
    expect(compileTrustProxy([]).trusts('10.0.0.1')).toBe(false);
    expect(() => compileTrustProxy(['10.0.0.0/8', 'proxy.internal'])).toThrow(
      /invalid trusted proxy "proxy\.internal"/,
    );
    expect(() => compileTrustProxy(['010.0.0.1'])).toThrow(/"010\.0\.0\.1"/);
    expect(() => compileTrustProxy(['toString'])).toThrow(/invalid trusted proxy "toString"/);
  });

  it('tells the settings which entries it takes', () => {
    expect(['loopback', ' 10.0.0.0/8 ', '::1', '2001:db8::/32'].every(isTrustedProxyEntry)).toBe(true);
    expect(['toString', 'proxy.internal', '10.0.0.0/33', ''].some(isTrustedProxyEntry)).toBe(false);
    expect(isAddressRange('192.0.2.7')).toBe(true);
    expect(isAddressRange('loopback')).toBe(false);
  });

  describe('the warning about an unusable header', () => {
    const logged: Array<{ obj: Record<string, unknown>; msg: string }> = [];
    const secret = 'opaque-secret-key-0123456789abcdefghij';
    const redactor = new Redactor([secret]);
    const log = {
      warn: (obj: object, msg: string) => logged.push({ obj: obj as Record<string, unknown>, msg }),
    };
    const logging = compileTrustProxy(['10.0.0.0/8'], { log, redact: (text) => redactor.redact(text) });

    it('is logged once per header name, with the value cut short and printable', () => {
      const hostile = `\u00e9vil\t${'x'.repeat(200)}`;
      for (let i = 0; i < 50; i++) {
        logging.clientAddress(PEER, { 'x-forwarded-for': i === 0 ? hostile : `garbage-${i}` });
        logging.clientAddress(PEER, { forwarded: 'for=_hidden' });
      }
      expect(logged).toHaveLength(2);
      const [xff, forwarded] = logged;
      expect(xff?.obj).toMatchObject({ header: 'x-forwarded-for', proxy: PEER });
      expect(xff?.obj.value).toBe(`?vil?${'x'.repeat(59)}…`);
      expect(xff?.msg).not.toContain('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx');
      expect(forwarded?.obj).toMatchObject({ header: 'forwarded', value: '_hidden', proxy: PEER });
    });

    it('quotes the value with a secret in it redacted before the cut', () => {
      const other = compileTrustProxy(['10.0.0.0/8'], { log, redact: (text) => redactor.redact(text) });
      // The cut at 64 falls 14 characters into the secret.
      other.clientAddress(PEER, { 'x-forwarded-for': `${'g'.repeat(50)}${secret}` });
      const warning = logged.at(-1);
      expect(warning?.obj.value).toBe(`${'g'.repeat(50)}****`);
      expect(JSON.stringify(warning)).not.toContain(secret.slice(0, 8));
    });

    it('is not logged for an untrusted peer or a usable header', () => {
      const before = logged.length;
      const quiet = compileTrustProxy(['10.0.0.0/8'], { log, redact: (text) => text });
      quiet.clientAddress('203.0.113.9', { 'x-forwarded-for': 'garbage' });
      quiet.clientAddress(PEER, { 'x-forwarded-for': '203.0.113.9' });
      expect(logged).toHaveLength(before);
    });
  });

  describe('two spellings of one address are one client (property)', () => {
    const v4 = fc.ipV4();
    const v6 = fc.ipV6().filter((text) => viaXff(text).includes(':'));
    const port = fc.integer({ min: 0, max: 65535 });

    /** Ways a proxy or a client may write an IPv4 address in X-Forwarded-For / Forwarded. */
    const v4Spellings = (ip: string, p: number): string[] => {
      const [a, b, c, d] = ip.split('.').map(Number) as [number, number, number, number];
      const hex = `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
      return [
        ip,
        `${ip}:${p}`,
        `::ffff:${ip}`,
        `::FFFF:${hex.toUpperCase()}`,
        `0:0:0:0:0:ffff:${ip}`,
        `[::ffff:${ip}]`,
        `[::ffff:${hex}]:${p}`,
      ];
    };
    const v6Spellings = (ip: string, p: number): string[] => {
      // From the canonical form, since ipaddr.js reads `::1.2.3.4` as mapped (this module does not).
      const address = ipaddr.IPv6.parse(viaXff(ip));
      const full = address.parts.map((part) => part.toString(16).padStart(4, '0')).join(':');
      return [
        ip,
        ip.toUpperCase(),
        full,
        address.toNormalizedString(),
        address.toRFC5952String(),
        `[${full}]`,
        `[${ip}]:${p}`,
      ];
    };

    const check = (spellings: string[]) => {
      const viaX = spellings.map((s) => viaXff(`198.51.100.77, ${s}`));
      const viaF = spellings.map((s) => viaForwarded(`for=198.51.100.77, for="${s}"`));
      const keys = new Set([...viaX, ...viaF].map(clientKeyFor));
      expect(new Set([...viaX, ...viaF]).size).toBe(1);
      expect(keys.size).toBe(1);
      expect(viaX[0]).not.toBe(PEER);
    };

    it('IPv4', () => {
      fc.assert(fc.property(v4, port, (ip, p) => check(v4Spellings(ip, p))));
    });

    it('IPv6', () => {
      fc.assert(fc.property(v6, port, (ip, p) => check(v6Spellings(ip, p))));
    });

    it('never throws, and gives either the peer or a canonical address (arbitrary headers)', () => {
      const text = fc.string({ unit: 'binary', maxLength: 80 });
      fc.assert(
        fc.property(text, text, (x, f) => {
          const client = proxies.clientAddress(PEER, { 'x-forwarded-for': x, forwarded: f });
          const parsed = ipaddr.parse(client);
          expect(client).toBe(
            parsed.kind() === 'ipv4' ? parsed.toString() : (parsed as ipaddr.IPv6).toRFC5952String(),
          );
        }),
      );
    });
  });
});

describe('one address for one request: resolveClientAddress and Fastify request.ip', () => {
  const trust = compileTrustProxy(['10.0.0.0/8']);
  const app = Fastify();
  installClientAddress(app, trust);
  app.get('/ip', async (request) => ({ ip: request.ip, lane: resolveClientAddress(request.raw, trust) }));
  afterAll(() => app.close());

  const seen = async (remoteAddress: string, headers: Record<string, string> = {}) => {
    const response = await app.inject({ method: 'GET', url: '/ip', remoteAddress, headers });
    const { ip, lane } = response.json() as { ip: string; lane: string };
    expect(ip).toBe(lane);
    return ip;
  };

  it('ignores forwarding headers from an untrusted peer', async () => {
    expect(await seen('203.0.113.9', { 'x-forwarded-for': '198.51.100.1' })).toBe('203.0.113.9');
    expect(await seen('203.0.113.9', { forwarded: 'for=198.51.100.1' })).toBe('203.0.113.9');
  });

  it('canonicalises what a trusted proxy forwards', async () => {
    expect(await seen('10.0.0.1', { 'x-forwarded-for': '198.51.100.1:4711' })).toBe('198.51.100.1');
    expect(await seen('10.0.0.1', { 'x-forwarded-for': '[2001:DB8::1]:4711' })).toBe('2001:db8::1');
    expect(await seen('10.0.0.1', { forwarded: 'for="[2001:db8::1]:4711"' })).toBe('2001:db8::1');
    expect(await seen('10.0.0.1', { 'x-forwarded-for': '1.1.1.1, 198.51.100.1, 10.0.0.2' })).toBe(
      '198.51.100.1',
    );
    expect(await seen('10.0.0.1', { 'x-forwarded-for': '010.0.0.1' })).toBe('10.0.0.1');
    expect(await seen('10.0.0.1')).toBe('10.0.0.1');
  });

  it('refuses to run beside Fastify’s own trustProxy', () => {
    const other = Fastify({ trustProxy: true });
    expect(() => installClientAddress(other, trust)).toThrow();
    void other.close();
  });
});
