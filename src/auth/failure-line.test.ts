import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { failureMessage, failureObject, formatFailureLine, type FailureFields } from './failure-line.js';

/** The line pino writes for the same warning, as the gate logged it before the template. */
function viaPino(fields: FailureFields): string {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  pino({ level: 'info', base: undefined }, sink).warn(failureObject(fields), failureMessage(fields.reason));
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

const base: FailureFields = {
  method: 'POST',
  path: '/v1/chat/completions',
  clientAddress: '203.0.113.9',
  reason: 'invalid',
  credentialSource: 'authorization',
  counted: true,
};

const cases: Array<[string, FailureFields]> = [
  ['a counted failure', base],
  ['no credential, not counted', { ...base, reason: 'missing', credentialSource: null, counted: false }],
  [
    'an IPv6 client and a query credential',
    { ...base, clientAddress: '2001:db8::1', credentialSource: 'query' },
  ],
  [
    'characters JSON must escape, and a cut path',
    { ...base, method: 'GE"T', path: '/v1/"quoted"\\back\u0001\ttab\u2028sep\ud800lone…' },
  ],
];

describe('formatFailureLine', () => {
  it.each(cases)('writes what pino writes: %s', (_name, fields) => {
    const withoutTime = (line: string) => line.replace(/"time":\d+,/, '"time":0,');
    const line = formatFailureLine(fields, 1_700_000_000_000);
    expect(withoutTime(line)).toBe(withoutTime(viaPino(fields)));
    expect(line.startsWith('{"level":40,"time":1700000000000,')).toBe(true);
    expect(line.endsWith('}\n')).toBe(true);
  });

  it('says counted:false only for an uncounted failure', () => {
    expect(JSON.parse(formatFailureLine(base, 1))).not.toHaveProperty('counted');
    expect(JSON.parse(formatFailureLine({ ...base, counted: false }, 1)).counted).toBe(false);
  });
});
