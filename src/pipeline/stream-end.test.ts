import { describe, expect, it } from 'vitest';
import { FinishWatch } from './stream-end.js';

const created = 'event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\n';
const delta =
  'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":1}\n\n';
const completed = `event: response.completed\ndata: {"type":"response.completed","sequence_number":2,"response":{"text":"${'x'.repeat(2000)}"}}\n\n`;

describe('FinishWatch (Responses)', () => {
  it('knows a stream finished by its last event name, however chunks cut it, bytes or text', () => {
    const whole = created + delta + completed;
    for (const cut of [5, created.length + 3, created.length + delta.length + 10, whole.length - 100]) {
      for (const asText of [false, true]) {
        const watch = new FinishWatch('responses');
        for (const piece of [whole.slice(0, cut), whole.slice(cut, cut + 7), whole.slice(cut + 7)])
          watch.see(asText ? piece : Buffer.from(piece));
        expect(watch.missingEnd('b'), `cut at ${cut}`).toBeNull();
      }
    }
  });

  it('reads the last event name of a final event longer than the tail kept, through many small chunks', () => {
    const long = `event: response.completed\ndata: {"type":"response.completed","sequence_number":2,"response":{"text":"${'y'.repeat(30_000)}"}}\n\n`;
    const whole = created + delta + long;
    // Pieces of 7 and 13 bytes: the trims (every 32 chunks) fall at every offset of the `event:` lines.
    for (const size of [7, 13, 1000]) {
      for (const start of [0, 3]) {
        const watch = new FinishWatch('responses');
        watch.see(Buffer.from(whole.slice(0, start)));
        for (let at = start; at < whole.length; at += size)
          watch.see(Buffer.from(whole.slice(at, at + size)));
        expect(watch.missingEnd('b'), `pieces of ${size} from ${start}`).toBeNull();
      }
    }
  });

  it('tells a stream cut inside a long event from a finished one, however it was chunked', () => {
    // The last event line names a delta; the completed event's name only appears in its text.
    const longDelta = `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":1,"delta":"${'event: response.completed '.repeat(1000)}`;
    for (const size of [7, 13, 1000]) {
      const watch = new FinishWatch('responses');
      const whole = created + longDelta;
      for (let at = 0; at < whole.length; at += size) watch.see(Buffer.from(whole.slice(at, at + size)));
      const owed = watch.missingEnd('b') ?? '';
      expect(JSON.parse(owed.split('data: ')[1]!), `pieces of ${size}`).toMatchObject({
        type: 'error',
        code: 'upstream_incomplete',
      });
      expect(watch.cutShort).toBe(true);
    }
  });

  it('owes a numbered error event to a stream cut short, one past the last number sent', () => {
    const watch = new FinishWatch('responses');
    watch.see(Buffer.from(created));
    watch.see(Buffer.from(delta));
    expect(watch.nextSequence()).toBe(2);
    const owed = watch.missingEnd('b') ?? '';
    expect(JSON.parse(owed.split('data: ')[1]!)).toEqual({
      type: 'error',
      code: 'upstream_incomplete',
      message: "Backend 'b' ended the stream before the answer was finished",
      param: null,
      sequence_number: 2,
    });
    expect(new FinishWatch('responses').nextSequence()).toBe(0);
    expect(new FinishWatch('openai').nextSequence()).toBeUndefined();
  });
});
