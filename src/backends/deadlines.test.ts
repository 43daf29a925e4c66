import { describe, expect, it } from 'vitest';
import { Cancellation } from './cancel.js';
import { UpstreamDeadlines } from './deadlines.js';
import { StreamingAnswer, WholeAnswer } from './dispatch-answers.js';
import type { UpstreamResponse } from './types.js';

const SSE = [Buffer.from('content-type'), Buffer.from('text/event-stream')];
const JSON_HEAD = [Buffer.from('content-type'), Buffer.from('application/json')];

/** An answer wired to a deadline set whose sweeps the test drives by hand (`checkDeadline`). */
function call<T extends WholeAnswer>(make: (deadlines: UpstreamDeadlines, done: (r: unknown) => void) => T) {
  const deadlines = new UpstreamDeadlines(1000);
  const aborts: string[] = [];
  const outcomes: unknown[] = [];
  const answer = make(deadlines, (r) => outcomes.push(r));
  // The call starts its clock somewhere in [connectedFrom, connectedBy].
  const connectedFrom = Date.now();
  answer.onConnect((err) => aborts.push((err as { code?: string }).code ?? err.message));
  const connectedBy = Date.now();
  return { answer, aborts, outcomes, deadlines, connectedFrom, connectedBy };
}

const whole = (deadlines: UpstreamDeadlines, done: (r: unknown) => void) =>
  new WholeAnswer(new Cancellation(), 1 << 20, done, done, deadlines);
const streaming = (deadlines: UpstreamDeadlines, done: (r: unknown) => void) =>
  new StreamingAnswer(new Cancellation(), 1 << 20, done, done, deadlines);

describe('upstream deadlines', () => {
  it('end a call that gets no answer head within the timeout', () => {
    const { answer, aborts, deadlines, connectedFrom, connectedBy } = call(whole);
    expect(deadlines.watched).toBe(1);
    answer.checkDeadline(connectedFrom + 999, 1000);
    expect(aborts).toEqual([]);
    answer.checkDeadline(connectedBy + 1000, 1000);
    expect(aborts).toEqual(['UND_ERR_HEADERS_TIMEOUT']);
    expect(deadlines.watched).toBe(0);
  });

  it('count silence from the last sign of life, and call it a body timeout after the head', () => {
    const { answer, aborts } = call(whole);
    const start = Date.now();
    answer.onHeaders(200, JSON_HEAD);
    answer.checkDeadline(start + 900, 1000); // lively since the last sweep: silence counts from here
    answer.onData(Buffer.from('{'));
    answer.checkDeadline(start + 1800, 1000);
    answer.checkDeadline(start + 2700, 1000);
    expect(aborts).toEqual([]);
    answer.checkDeadline(start + 2800, 1000);
    expect(aborts).toEqual(['UND_ERR_BODY_TIMEOUT']);
  });

  it('stop watching a call once it completes', () => {
    const { answer, aborts, outcomes, deadlines } = call(whole);
    answer.onHeaders(200, JSON_HEAD);
    answer.onData(Buffer.from('{}'));
    answer.onComplete();
    expect(deadlines.watched).toBe(0);
    expect((outcomes[0] as UpstreamResponse).status).toBe(200);
    expect(aborts).toEqual([]);
  });

  it('do not blame the backend for a stream paused by a slow client', () => {
    const { answer, aborts, outcomes } = call(streaming);
    const start = Date.now();
    answer.onHeaders(200, SSE, () => undefined);
    const control = (outcomes[0] as UpstreamResponse).take!({
      write: () => false, // full at once
      end: () => undefined,
      fail: () => undefined,
    });
    expect(answer.onData(Buffer.from('data: 1\n\n'))).toBe(false);
    for (let t = 1; t <= 5; t++) answer.checkDeadline(start + t * 1000, 1000);
    expect(aborts).toEqual([]);
    control.resume(); // the client reads again; the backend stays silent from here on
    answer.checkDeadline(start + 5900, 1000);
    expect(aborts).toEqual([]);
    answer.checkDeadline(start + 6000, 1000);
    answer.checkDeadline(start + 7000, 1000); // over: no second abort
    expect(aborts).toEqual(['UND_ERR_BODY_TIMEOUT']);
  });

  it('sweep by themselves, and stop sweeping when nothing is in flight', async () => {
    const deadlines = new UpstreamDeadlines(40);
    const aborts: string[] = [];
    const answer = new WholeAnswer(
      new Cancellation(),
      1 << 20,
      () => undefined,
      () => undefined,
      deadlines,
    );
    answer.onConnect((err) => aborts.push((err as { code?: string }).code ?? ''));
    // However slow the machine, the sweep comes: waited for, not timed.
    await expect.poll(() => aborts.length, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
    expect(aborts).toEqual(['UND_ERR_HEADERS_TIMEOUT']);
    expect(deadlines.watched).toBe(0);
  });
});
