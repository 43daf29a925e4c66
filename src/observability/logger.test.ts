import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Redactor } from '../redaction/redactor.js';
import { createLogger } from './logger.js';

const SECRET = 'sk-proj-LoggerTestSecret0123456789abcdef';

function sink() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('createLogger: pre-formatted info lines', () => {
  it('are redacted like every other line and reach the destination', async () => {
    const out = sink();
    const redactor = new Redactor([SECRET]);
    const log = await createLogger({
      level: 'info',
      format: 'json',
      redactor: () => redactor,
      stdout: out.stream,
      isTTY: false,
    });
    expect(log.writeInfoLine).not.toBeNull();
    log.writeInfoLine!(`{"level":30,"model":"${SECRET}","msg":"request"}\n`);
    log.logger.info({ model: SECRET }, 'through pino');
    await log.flush();
    expect(out.text()).not.toContain(SECRET);
    const lines = out
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; model: string });
    expect(lines.map((l) => l.msg)).toEqual(['request', 'through pino']);
    expect(lines[0]!.model).toBe(lines[1]!.model);
  });

  it('are not written when the level is above info', async () => {
    for (const level of ['warn', 'silent']) {
      const out = sink();
      const log = await createLogger({
        level,
        format: 'json',
        redactor: () => new Redactor([]),
        stdout: out.stream,
        isTTY: false,
      });
      log.writeInfoLine!('{"level":30,"msg":"request"}\n');
      await log.flush();
      expect(out.text()).toBe('');
    }
  });

  it('warn lines too: redacted, written at warn and below, not above', async () => {
    for (const [level, written] of [
      ['info', true],
      ['warn', true],
      ['error', false],
      ['silent', false],
    ] as const) {
      const out = sink();
      const log = await createLogger({
        level,
        format: 'json',
        redactor: () => new Redactor([SECRET]),
        stdout: out.stream,
        isTTY: false,
      });
      log.writeWarnLine!(`{"level":40,"path":"/${SECRET}","msg":"failed"}\n`);
      await log.flush();
      expect(out.text()).not.toContain(SECRET);
      expect(out.text().includes('"msg":"failed"')).toBe(written);
    }
  });

  it('are left to pino when lines are formatted for a terminal', async () => {
    const out = sink();
    const log = await createLogger({
      level: 'info',
      format: 'pretty',
      redactor: () => new Redactor([]),
      stdout: out.stream,
      isTTY: false,
    });
    expect(log.writeInfoLine).toBeNull();
    expect(log.writeWarnLine).toBeNull();
  });
});
