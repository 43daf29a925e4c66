import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { CidrMatcher, clientKeyFor, compileTrustProxy, normalizeClientKey } from './client-address.js';

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

describe('compileTrustProxy', () => {
  it('trusts exactly the listed proxies', () => {
    const trust = compileTrustProxy(['10.0.0.0/8', 'loopback']);
    expect(trust('10.9.9.9', 0)).toBe(true);
    expect(trust('127.0.0.1', 0)).toBe(true);
    expect(trust('203.0.113.9', 0)).toBe(false);
    expect(compileTrustProxy([])('10.0.0.1', 0)).toBe(false);
  });

  it('names an invalid entry', () => {
    expect(() => compileTrustProxy(['10.0.0.0/8', 'proxy.internal'])).toThrow(/"proxy\.internal"/);
  });

  describe('with Fastify', () => {
    const app = Fastify({ trustProxy: compileTrustProxy(['10.0.0.0/8']) });
    app.get('/ip', async (request) => ({ ip: request.ip }));
    afterAll(() => app.close());

    const ipSeenBy = async (remoteAddress: string, forwardedFor?: string): Promise<string> => {
      const headers = forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor };
      const response = await app.inject({ method: 'GET', url: '/ip', remoteAddress, headers });
      return (response.json() as { ip: string }).ip;
    };

    it('ignores X-Forwarded-For from an untrusted peer', async () => {
      expect(await ipSeenBy('203.0.113.9', '198.51.100.1')).toBe('203.0.113.9');
      expect(await ipSeenBy('203.0.113.9', '10.0.0.5, 198.51.100.1')).toBe('203.0.113.9');
    });

    it('takes the right-most untrusted address behind trusted proxies', async () => {
      expect(await ipSeenBy('10.0.0.1', '198.51.100.1')).toBe('198.51.100.1');
      expect(await ipSeenBy('10.0.0.1', '1.1.1.1, 198.51.100.1, 10.0.0.2')).toBe('198.51.100.1');
      expect(await ipSeenBy('10.0.0.1')).toBe('10.0.0.1');
    });
  });
});
