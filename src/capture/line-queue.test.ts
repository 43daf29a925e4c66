import { describe, expect, it } from 'vitest';
import { LINE_CHUNK_BYTES, LineQueue } from './line-queue.js';

/** Reads the queue to its end in batches of up to `max` bytes: the lines, decoded, and the batches' sizes. */
function drain(queue: LineQueue, max: number): { text: string; batches: number[] } {
  let text = '';
  const batches: number[] = [];
  for (let batch = queue.peek(max, Infinity); batch !== undefined; batch = queue.peek(max, Infinity)) {
    text += batch.data.toString('utf8');
    batches.push(batch.count);
    queue.shift(batch.count);
  }
  return { text, batches };
}

describe('LineQueue', () => {
  it('keeps lines in order, as UTF-8, and counts lines and bytes', () => {
    const queue = new LineQueue();
    const lines = ['{"a":1}\n', '{"b":"Grüße 😀"}\n', '{"c":""}\n'];
    for (const line of lines) expect(queue.push(line)).toBe(Buffer.byteLength(line));
    expect(queue.count).toBe(3);
    expect(queue.bytes).toBe(Buffer.byteLength(lines.join('')));
    expect(drain(queue, 1024)).toEqual({ text: lines.join(''), batches: [3] });
    expect([queue.count, queue.bytes]).toEqual([0, 0]);
  });

  it('hands out whole lines only, up to the batch size; a longer first line alone when allowed', () => {
    const queue = new LineQueue();
    for (const n of [10, 10, 30, 10]) queue.push(`${'x'.repeat(n - 1)}\n`);
    expect(queue.peek(25, Infinity)?.count).toBe(2);
    queue.shift(2);
    // The 30-byte line: too long for the batch, but the first may go alone up to `firstMax`.
    expect(queue.peek(25, 29)).toBeUndefined();
    expect(queue.peek(25, 30)?.data.length).toBe(30);
    queue.shift(1);
    expect(queue.peek(25, Infinity)?.data.toString()).toBe(`${'x'.repeat(9)}\n`);
  });

  it('starts a new buffer for a line that does not fit, never splitting one (text beyond ASCII included)', () => {
    const queue = new LineQueue();
    const filler = `${'a'.repeat(LINE_CHUNK_BYTES - 12)}\n`;
    // 8 characters that fit the room left by their count, but not by their 20 bytes.
    const wide = 'ééééé😀\n';
    expect(wide.length).toBeLessThan(12);
    expect(Buffer.byteLength(wide)).toBeGreaterThan(11);
    const lines = [filler, wide, '{"after":1}\n'];
    for (const line of lines) queue.push(line);
    const { text, batches } = drain(queue, LINE_CHUNK_BYTES);
    expect(text).toBe(lines.join(''));
    expect(batches).toEqual([1, 2]);
  });

  it('writes a line given in parts as the line joined, whole in one buffer', () => {
    const queue = new LineQueue();
    const filler = `${'a'.repeat(LINE_CHUNK_BYTES - 37)}\n`;
    queue.push(filler);
    const parts = ['{"p":', '"ééé😀"', ',"m":1}\n'];
    expect(queue.push(parts)).toBe(Buffer.byteLength(parts.join('')));
    // 11 bytes left, and a line of 11 characters in 13 bytes: its last part does not fit.
    expect(LINE_CHUNK_BYTES - Buffer.byteLength(filler + parts.join(''))).toBe(11);
    const wide = ['{"p":', '"éé"', '}\n'];
    expect([wide.join('').length, Buffer.byteLength(wide.join(''))]).toEqual([11, 13]);
    expect(queue.push(wide)).toBe(13);
    queue.push(['{"after":', '1', '}\n']);
    expect(queue.count).toBe(4);
    const { text, batches } = drain(queue, LINE_CHUNK_BYTES);
    expect(text).toBe(filler + parts.join('') + wide.join('') + '{"after":1}\n');
    expect(batches).toEqual([2, 2]);
  });

  it('gives a line longer than a buffer a buffer of its own', () => {
    const queue = new LineQueue();
    const long = `${'ü'.repeat(LINE_CHUNK_BYTES)}\n`;
    const lines = ['{"before":1}\n', long, '{"after":1}\n'];
    for (const line of lines) queue.push(line);
    expect(drain(queue, LINE_CHUNK_BYTES)).toEqual({ text: lines.join(''), batches: [1, 1, 1] });
  });

  it('takes a long line, or one beyond ASCII that does not fit, after every line was written', () => {
    const queue = new LineQueue();
    queue.push('{"first":1}\n');
    expect(drain(queue, LINE_CHUNK_BYTES).batches).toEqual([1]);
    const long = `${'c'.repeat(LINE_CHUNK_BYTES + 10)}\n`;
    queue.push(long);
    expect(drain(queue, LINE_CHUNK_BYTES)).toEqual({ text: long, batches: [1] });
    // Fits the emptied buffer by its characters, not by its bytes.
    const wide = `${'é'.repeat(LINE_CHUNK_BYTES / 2 + 10)}\n`;
    queue.push(wide);
    expect(drain(queue, LINE_CHUNK_BYTES)).toEqual({ text: wide, batches: [1] });
  });

  it('shifts across buffers and clears, reusing its buffers for what comes next', () => {
    const queue = new LineQueue();
    const line = `${'b'.repeat(1023)}\n`;
    const total = Math.ceil((3 * LINE_CHUNK_BYTES) / line.length);
    for (let i = 0; i < total; i++) queue.push(line);
    queue.shift(total - 5);
    expect([queue.count, queue.bytes]).toEqual([5, 5 * line.length]);
    expect(queue.clear()).toBe(5);
    expect(queue.peek(LINE_CHUNK_BYTES, Infinity)).toBeUndefined();
    queue.push('{"again":1}\n');
    expect(drain(queue, LINE_CHUNK_BYTES).text).toBe('{"again":1}\n');
  });
});
