import { describe, expect, it } from 'vitest';
import { Redactor } from '../redaction/redactor.js';
import { UNREDACTED_ERROR_WITHHELD, redactedErrorText } from './fatal.js';

const SECRET = 'fatal-canary-key-Zq7xW2vB9nL4';
const PROVIDER = 'sk-proj-FatalCanaryProviderKey0123456789';
const redactor = new Redactor([SECRET, PROVIDER]);

describe('redactedErrorText', () => {
  it('gives the stack and the fields of an error with every secret masked', () => {
    const error = Object.assign(new Error(`upstream refused ${SECRET}`), {
      status: 401,
      body: { detail: `Incorrect API key provided: ${PROVIDER}` },
      cause: new Error(`caused by ${SECRET}`),
    });
    const text = redactedErrorText(error, () => redactor);
    expect(text).toMatch(/^Error: upstream refused \*\*\*\*\n {4}at /);
    expect(text).toContain('status: 401');
    expect(text).toContain('Incorrect API key provided: sk-proj-****');
    expect(text).toContain('caused by ****');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(PROVIDER);
  });

  it('redacts before formatting: a secret at the end of a very long field is not cut in half', () => {
    const error = Object.assign(new Error('long'), { detail: `${'x'.repeat(20_000)} ${SECRET}` });
    const text = redactedErrorText(error, () => redactor);
    expect(text).not.toContain(SECRET.slice(0, 10));
    expect(text).toContain('x ****');
  });

  it('handles thrown values that are not errors', () => {
    expect(redactedErrorText(`raw ${SECRET}`, () => redactor)).toBe('raw ****');
    expect(redactedErrorText({ key: SECRET, n: 1 }, () => redactor)).toBe("{ key: '****', n: 1 }");
    expect(redactedErrorText(undefined, () => redactor)).toBe('undefined');
  });

  it('withholds everything when the redactor fails, or the error cannot be read', () => {
    const broken = () => {
      throw new Error(`redactor broke on ${SECRET}`);
    };
    expect(redactedErrorText(new Error(SECRET), broken)).toBe(UNREDACTED_ERROR_WITHHELD);
    const failing = Object.create(Error.prototype, {
      stack: {
        get() {
          throw new Error(SECRET);
        },
      },
    }) as Error;
    expect(redactedErrorText(failing, () => redactor)).toBe(UNREDACTED_ERROR_WITHHELD);
  });
});
