import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ProxyMetrics } from '../observability/metrics.js';
import { createAccessRecorder, type AccessEntry } from './access-log.js';

/** A recorder of each kind over the same entries, and the lines each wrote. */
function recorders() {
  const pinoLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      pinoLines.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = pino({ level: 'info', base: undefined }, sink);
  const templateLines: string[] = [];
  return {
    viaPino: createAccessRecorder(logger, new ProxyMetrics()),
    viaTemplate: createAccessRecorder(logger, new ProxyMetrics(), (line) => templateLines.push(line)),
    pinoLines,
    templateLines,
  };
}

const base: AccessEntry = {
  id: '0cd37158-84c7-4c8f-a041-3abf12f6a905',
  method: 'POST',
  url: '/v1/chat/completions',
  status: 200,
  route: '/v1/chat/completions',
  state: { start: 1000, backendMs: 1.5, backend: 'openai', model: 'gpt-4o-mini' },
  keyName: 'team',
  client: '127.0.0.1',
};

const entries: Array<[string, AccessEntry]> = [
  ['a full entry', base],
  ['no state, key or client', { ...base, state: null, keyName: null, client: undefined, status: 401 }],
  ['a query string (never logged)', { ...base, url: '/v1beta/models/x:generateContent?key=abc&alt=sse' }],
  [
    'characters JSON must escape',
    {
      ...base,
      url: '/v1/"quoted"\\back\u0001\ttab\u2028sep\ud800lone',
      state: { start: 1000, backendMs: 0, backend: 'gemini', model: 'model "x"\n' },
      keyName: 'ünïcödé ключ',
    },
  ],
  [
    'a state with no backend chosen',
    { ...base, state: { start: 1000, backendMs: 0, backend: null, model: null } },
  ],
  [
    'a stream continued by another element',
    {
      ...base,
      state: {
        start: 1000,
        backendMs: 0,
        backend: 'anthropic',
        model: 'claude-b',
        attempts: [
          { element: 'openai:gpt-a', status: 200, outcome: 'ok', ms: 3 },
          { element: 'gemini:gem-c', status: 400, outcome: 'continue_failed', ms: 1 },
          { element: 'anthropic:claude-b', status: 200, outcome: 'continued', ms: 2 },
        ],
      },
    },
  ],
];

describe('access line', () => {
  it('names every element that wrote to a continued answer, and none for an answer not continued', () => {
    const r = recorders();
    r.viaTemplate(entries.at(-1)![1], 1012);
    const ok = { element: 'openai:gpt-a', status: 200, outcome: 'ok', ms: 3 };
    r.viaTemplate({ ...base, state: { ...base.state!, attempts: [ok] } }, 1012);
    const [continued, plain] = r.templateLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(continued?.answered_by).toBe('openai:gpt-a|anthropic:claude-b');
    expect(continued?.backend).toBe('anthropic');
    expect(plain).not.toHaveProperty('answered_by');
  });

  it.each(entries)('the template writes what pino writes: %s', (_name, entry) => {
    const r = recorders();
    r.viaPino(entry, 1012.3456789);
    r.viaTemplate(entry, 1012.3456789);
    expect(r.pinoLines).toHaveLength(1);
    expect(r.templateLines).toHaveLength(1);
    // Identical but for the clock reading.
    const withoutTime = (line: string) => line.replace(/"time":\d+,/, '"time":0,');
    expect(withoutTime(r.templateLines[0]!)).toBe(withoutTime(r.pinoLines[0]!));
    expect(r.templateLines[0]!.endsWith('}\n')).toBe(true);
    const parsed = JSON.parse(r.templateLines[0]!) as Record<string, unknown>;
    expect(parsed.msg).toBe('request');
    expect(parsed.duration_ms).toBe(entry.state ? 12.346 : 0);
    expect(String(parsed.path)).not.toContain('?');
  });
});
