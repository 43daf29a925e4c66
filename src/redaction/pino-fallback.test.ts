import { describe, expect, it } from 'vitest';
import { WITHHELD, lineRedactor } from './pino.js';
import { Redactor } from './redactor.js';

describe('lineRedactor when the redactor fails', () => {
  it('writes a line saying one was withheld, never the raw line, and does not throw', () => {
    const broken = Object.create(Redactor.prototype) as Redactor;
    broken.redact = () => {
      throw new Error('redactor failure');
    };
    const line = '{"level":30,"msg":"secret-value-0123456789"}\n';
    const out = lineRedactor(() => broken)(line);
    expect(out).not.toContain('secret-value');
    expect(out.endsWith('\n')).toBe(true);
    expect(JSON.parse(out)).toMatchObject({ level: 50, msg: WITHHELD });
  });
});
