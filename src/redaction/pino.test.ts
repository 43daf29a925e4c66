import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { redactingLoggerOptions } from './pino.js';
import { Redactor } from './redactor.js';

const PROXY_KEY = 'canary-proxy-key-7f3a9c';
const PROVIDER_KEY = 'sk-proj-CanaryProviderKey0123456789abcdef';
const GEMINI_KEY = 'AIzaSyCanary-0123456789abcdefghijklmnop';

function capturingLogger(getRedactor: () => Redactor): { logger: pino.Logger; lines: () => string[] } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = pino({ ...redactingLoggerOptions(getRedactor), level: 'trace' }, sink);
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== ''),
  };
}

describe('redactingLoggerOptions', () => {
  it('keeps secrets out of messages, fields, errors, URLs and headers of a real pino logger', () => {
    const redactor = new Redactor([PROXY_KEY, PROVIDER_KEY]);
    const { logger, lines } = capturingLogger(() => redactor);

    logger.info(`client sent ${PROXY_KEY}`);
    logger.warn({ providerKey: PROVIDER_KEY, nested: { list: [PROXY_KEY] } }, 'object fields');
    const upstream = new Error(`401 from upstream: Incorrect API key provided: ${PROVIDER_KEY}`);
    logger.error({ err: upstream }, 'backend failed');
    logger.info({
      req: { method: 'POST', url: `/v1beta/models/g:generateContent?key=${GEMINI_KEY}&alt=sse` },
    });
    logger.info({ req: { url: '/v1beta/models/g:generateContent?key=unknown-format-value' } });
    logger.info({
      headers: { authorization: 'Basic dXNlcjpwYXNz', 'x-api-key': 'opaque', host: 'localhost' },
    });
    logger.child({ key: PROXY_KEY }).debug('child bindings');

    const output = lines();
    expect(output).toHaveLength(7);
    const all = output.join('\n');
    for (const leaked of [
      PROXY_KEY,
      PROVIDER_KEY,
      GEMINI_KEY,
      'unknown-format-value',
      'dXNlcjpwYXNz',
      'opaque',
    ]) {
      expect(all).not.toContain(leaked);
    }
    const parsed = output.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed[0]!['msg']).toBe('client sent ****');
    expect(parsed[1]!['providerKey']).toBe('sk-proj-****');
    const err = parsed[2]!['err'] as { message: string; stack: string };
    expect(err.message).toBe('401 from upstream: Incorrect API key provided: sk-proj-****');
    expect(err.stack).toContain('sk-proj-****');
    expect(parsed[3]!['req']).toEqual({
      method: 'POST',
      url: '/v1beta/models/g:generateContent?key=****&alt=sse',
    });
    expect(parsed[5]!['headers']).toEqual({
      authorization: 'Basic ****',
      'x-api-key': '****',
      host: 'localhost',
    });
  });

  it('follows the redactor returned by the getter (key rotation)', () => {
    let redactor = new Redactor(['old-key-aaaa']);
    const { logger, lines } = capturingLogger(() => redactor);
    logger.info('new-key-bbbb');
    redactor = new Redactor(['new-key-bbbb']);
    logger.info('new-key-bbbb');
    const [before, after] = lines().map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(before).toBe('new-key-bbbb');
    expect(after).toBe('****');
  });
});
