import { describe, expect, it } from 'vitest';
import { parseMonitorLine } from './redis-monitor.js';

describe('parseMonitorLine', () => {
  it('reads the source and every argument as Redis quotes them', () => {
    expect(parseMonitorLine('+1796641152.341521 [0 127.0.0.1:45242] "get" "alice\\x00s1"')).toEqual({
      source: '127.0.0.1:45242',
      args: ['get', 'alice\u0000s1'],
    });
    expect(parseMonitorLine('+1.0 [0 lua] "set" "a \\"b\\" \\\\ \\n" "\\xc3\\xa9"')).toEqual({
      source: 'lua',
      args: ['set', 'a "b" \\ \n', 'é'],
    });
    expect(parseMonitorLine('+OK')).toBeNull();
  });
});
