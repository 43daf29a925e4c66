import { describe, expect, it } from 'vitest';
import { TRUSTED_IP_GRANT } from '../auth/gate.js';
import { isOperatorRoute, operatorRefusal } from './operator-access.js';

describe('isOperatorRoute', () => {
  it.each([
    ['/admin/auth/blocks', true],
    ['/admin/auth/blocks/*', true],
    ['/admin/reload', true],
    ['/admin/usage', true],
    ['/metrics', true],
    ['/internal/health', true],
    ['/health', false],
    ['/v1/models', false],
    ['/administrator', false],
    ['/metrics/extra', false],
    [undefined, false],
  ])('%s -> %s', (url, expected) => {
    expect(isOperatorRoute(url)).toBe(expected);
  });
});

describe('operatorRefusal', () => {
  const admin = { keyName: 'ops', role: 'admin', expiresAtMs: null, hashed: false } as const;
  const client = { keyName: 'dev', role: 'client', expiresAtMs: null, hashed: false } as const;

  it('lets only the admin role in, and says when no admin key exists', () => {
    expect(operatorRefusal(admin, true)).toBeNull();
    expect(operatorRefusal(client, true)?.code).toBe('admin_key_required');
    expect(operatorRefusal(client, false)?.code).toBe('admin_key_not_configured');
    expect(operatorRefusal(admin, false)?.code).toBe('admin_key_not_configured');
  });

  it('tells a trusted address that sent no key so, rather than blaming a key it never sent', () => {
    const refusal = operatorRefusal(TRUSTED_IP_GRANT, true);
    expect(refusal?.code).toBe('admin_key_required');
    expect(refusal?.message).toContain('this request sent none: a trusted address (--trusted-ip)');
    expect(operatorRefusal(client, true)?.message).toContain('the key is valid for proxy traffic only');
  });
});
