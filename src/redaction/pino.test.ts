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

  it('withholds the raw packet of a malformed request and any other bytes, whatever they hold', () => {
    const { logger, lines } = capturingLogger(() => new Redactor([PROXY_KEY]));
    // What Node's HTTP parser hands to 'clientError' (and Fastify logs at trace): the request's bytes,
    // credential headers included, with a key no redactor knows.
    const packet = Buffer.from(`GET / HTTP/1.1\r\nx-api-key: unknown-wrong-key-9f8e\r\nBad Header\r\n\r\n`);
    const parseError = Object.assign(new Error('Parse Error: Invalid header token'), {
      code: 'HPE_INVALID_HEADER_TOKEN',
      rawPacket: packet,
      response: { body: new Uint8Array([1, 2, 3]), status: 400 },
    });
    const wrapped = new Error('wrapped', { cause: parseError });
    logger.trace({ err: parseError }, 'client error');
    logger.debug({ err: wrapped, chunk: Buffer.from('unknown-wrong-key-9f8e') }, 'other bytes');

    const all = lines().join('\n');
    expect(all).not.toContain('unknown-wrong-key-9f8e');
    expect(all).not.toMatch(/"data":\[/);
    const [first, second] = lines().map((line) => JSON.parse(line) as { err: unknown; chunk: unknown });
    expect(first!.err).toMatchObject({
      code: 'HPE_INVALID_HEADER_TOKEN',
      rawPacket: `[${packet.length} bytes withheld]`,
      response: { body: '[3 bytes withheld]', status: 400 },
    });
    expect(second!.chunk).toBe('[22 bytes withheld]');
    // The logged error itself is left as it was.
    expect(parseError.rawPacket).toBe(packet);
    expect(parseError.response.body).toBeInstanceOf(Uint8Array);
  });
});
