import { describe, expect, it } from 'vitest';
import { LABEL_PATTERN, parseExpiresAt } from './key-attributes.js';

describe('parseExpiresAt', () => {
  it.each([
    ['2027-01-01T00:00:00Z', Date.UTC(2027, 0, 1)],
    ['2027-01-01T09:30:00+02:00', Date.UTC(2027, 0, 1, 7, 30)],
    ['2027-01-01T00:00Z', Date.UTC(2027, 0, 1)],
    ['2027-01-01T00:00:00.250Z', Date.UTC(2027, 0, 1, 0, 0, 0, 250)],
    ['2027-01-01', Date.UTC(2027, 0, 1)],
    ['2028-02-29', Date.UTC(2028, 1, 29)],
  ])('reads %s', (text, ms) => {
    expect(parseExpiresAt(text)).toBe(ms);
  });

  it.each(['2027-01-01T00:00:00', '2027-13-01', '2027-02-29', '2027-1-1', 'soon', '1767225600000'])(
    'refuses %s',
    (text) => {
      expect(parseExpiresAt(text)).toBeNull();
    },
  );
});

describe('LABEL_PATTERN', () => {
  it('takes letters, digits, ".", "_" and "-", starting with a letter or digit, up to 64', () => {
    for (const label of ['team-a', 'A.b_c', '7', 'x'.repeat(64)])
      expect(LABEL_PATTERN.test(label)).toBe(true);
    for (const label of ['', '-a', 'a b', 'a,b', 'x'.repeat(65), 'é'])
      expect(LABEL_PATTERN.test(label)).toBe(false);
  });
});
