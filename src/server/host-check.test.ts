import { describe, expect, it } from 'vitest';
import { createHostCheck } from './host-check.js';

describe('createHostCheck', () => {
  it('accepts localhost and loopback addresses, with or without a port, in any case', () => {
    const check = createHostCheck('127.0.0.1', []);
    for (const host of [
      'localhost',
      'LOCALHOST:8000',
      '127.0.0.1',
      '127.0.0.1:8000',
      '127.8.9.10:1',
      '[::1]',
      '[::1]:8000',
      '[0:0:0:0:0:0:0:1]:8000',
      '[::ffff:127.0.0.1]:8000',
    ]) {
      expect(check(host), host).toBe(true);
    }
  });

  it('refuses other names, a missing Host, and addresses that only look local', () => {
    const check = createHostCheck('127.0.0.1', []);
    for (const host of [
      undefined,
      '',
      'evil.example',
      'evil.example:8000',
      'localhost.evil.example',
      '127.0.0.1.evil.example',
      '0.0.0.0:8000',
      '[::]:8000',
      '128.0.0.1',
      '10.0.0.1:8000',
      '[::2]:8000',
      '::1',
    ]) {
      expect(check(host), String(host)).toBe(false);
    }
  });

  it('accepts the bind address, but not a wildcard one', () => {
    expect(createHostCheck('192.168.1.5', [])('192.168.1.5:8000')).toBe(true);
    expect(createHostCheck('fd00::5', [])('[fd00::5]:8000')).toBe(true);
    expect(createHostCheck('0.0.0.0', [])('0.0.0.0:8000')).toBe(false);
    expect(createHostCheck('::', [])('[::]:8000')).toBe(false);
  });

  it('accepts allowed hosts: a bare name on any port, a name with a port on that port only', () => {
    const check = createHostCheck('127.0.0.1', [
      'Proxy.Internal',
      'box.lan:8443',
      'fd00::7',
      '[fd00::8]:9000',
    ]);
    expect(check('proxy.internal')).toBe(true);
    expect(check('PROXY.internal:8000')).toBe(true);
    expect(check('box.lan:8443')).toBe(true);
    expect(check('box.lan:8000')).toBe(false);
    expect(check('box.lan')).toBe(false);
    expect(check('[fd00::7]:1234')).toBe(true);
    expect(check('[fd00::8]:9000')).toBe(true);
    expect(check('[fd00::8]:9001')).toBe(false);
    expect(check('other.internal')).toBe(false);
  });

  it('remembers only accepted hosts: a refused one after an accepted one is still refused', () => {
    const check = createHostCheck('127.0.0.1', []);
    expect(check('localhost:8000')).toBe(true);
    expect(check('localhost:8000')).toBe(true);
    expect(check('evil.example:8000')).toBe(false);
    expect(check('evil.example:8000')).toBe(false);
  });
});
