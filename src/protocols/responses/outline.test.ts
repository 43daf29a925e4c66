import { describe, expect, it } from 'vitest';
import { ResponsesOutline } from './outline.js';

/** A Responses event as the backend writes it. */
const sse = (data: Record<string, unknown>) =>
  `event: ${String(data.type)}\ndata: ${JSON.stringify(data)}\n\n`;

const RESPONSE = {
  id: 'resp_1',
  object: 'response',
  created_at: 1,
  status: 'in_progress',
  model: 'm',
  output: [],
};

/** The opening of a text answer and its first delta, cut anywhere (`at`): as a backend's chunks arrive. */
function opened(outline: ResponsesOutline, at = 37): void {
  const text = [
    sse({ type: 'response.created', sequence_number: 0, response: RESPONSE }),
    sse({ type: 'response.in_progress', sequence_number: 1, response: RESPONSE }),
    sse({
      type: 'response.output_item.added',
      sequence_number: 2,
      output_index: 0,
      item: { id: 'msg_1', type: 'message', status: 'in_progress', role: 'assistant', content: [] },
    }),
    sse({
      type: 'response.content_part.added',
      sequence_number: 3,
      item_id: 'msg_1',
      output_index: 0,
      content_index: 0,
      part: { type: 'output_text', text: '', annotations: [] },
    }),
    sse({
      type: 'response.output_text.delta',
      sequence_number: 4,
      item_id: 'msg_1',
      output_index: 0,
      content_index: 0,
      delta: 'Hello, ',
    }),
  ].join('');
  const bytes = Buffer.from(text);
  outline.see(bytes.subarray(0, at));
  outline.see(bytes.subarray(at));
}

const events = (text: string) =>
  text
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>);

describe('ResponsesOutline', () => {
  it('reads a text answer cut mid-way, across chunk boundaries: its text is continuable', () => {
    for (const at of [1, 37, 200, 400]) {
      const outline = new ResponsesOutline();
      opened(outline, at);
      expect(outline.continuableText).toBe('Hello, ');
      expect(outline.nextSequence).toBe(5);
    }
  });

  it('a tool call, a closed part or a finished stream cannot be continued', () => {
    const call = new ResponsesOutline();
    call.see(sse({ type: 'response.created', sequence_number: 0, response: RESPONSE }));
    call.see(
      sse({
        type: 'response.output_item.added',
        sequence_number: 1,
        output_index: 0,
        item: { id: 'fc_1', type: 'function_call', arguments: '' },
      }),
    );
    expect(call.continuableText).toBeNull();
    const closed = new ResponsesOutline();
    opened(closed);
    closed.see(
      sse({
        type: 'response.output_text.done',
        sequence_number: 5,
        output_index: 0,
        content_index: 0,
        text: 'Hello, ',
      }),
    );
    expect(closed.continuableText).toBeNull();
    const finished = new ResponsesOutline();
    opened(finished);
    finished.see(sse({ type: 'error', sequence_number: 5, code: 'x', message: 'y', param: null }));
    expect(finished.continuableText).toBeNull();
  });

  it('fails as a translated stream does: error, then response.failed, its output not repeated', () => {
    const outline = new ResponsesOutline();
    opened(outline);
    const info = { status: 502, code: 'upstream_stream_error', message: 'broke' };
    expect(events(outline.failed(info))).toEqual([
      { type: 'error', sequence_number: 5, code: 'upstream_stream_error', message: 'broke', param: null },
      {
        type: 'response.failed',
        sequence_number: 6,
        response: {
          ...RESPONSE,
          status: 'failed',
          error: { code: 'upstream_stream_error', message: 'broke' },
          incomplete_details: null,
          output: [],
          usage: null,
        },
      },
    ]);
    // Read only up to its opening (a stream that is not continued), numbered as the caller says.
    const light = new ResponsesOutline(false);
    opened(light);
    expect(light.continuableText).toBeNull();
    expect(events(light.failed(info, 5)).map((e) => [e.type, e.sequence_number])).toEqual([
      ['error', 5],
      ['response.failed', 6],
    ]);
    // Before any response.created the client has no response to fail: the error event alone.
    expect(events(new ResponsesOutline().failed(info)).map((e) => e.type)).toEqual(['error']);
  });

  it('read only to its opening, finds the same response in bytes however they are cut', () => {
    // A comment, an event that is not JSON and one whose `response` is no object come first.
    const text =
      ': keep-alive\n\n' +
      'event: response.created\ndata: {"type":"response.created","response":\n\n' +
      sse({ type: 'response.created', sequence_number: 0, response: 'no object' }) +
      sse({ type: 'response.created', sequence_number: 1, response: { ...RESPONSE, model: 'é' } }) +
      sse({ type: 'response.in_progress', sequence_number: 2, response: { ...RESPONSE, id: 'later' } }) +
      sse({ type: 'response.output_text.delta', sequence_number: 3, delta: 'x' });
    const info = { status: 502, code: 'upstream_stream_error', message: 'broke' };
    const fromText = new ResponsesOutline(false);
    fromText.see(text);
    expect(fromText.response).toEqual({ ...RESPONSE, model: 'é' });
    const want = fromText.failed(info, 9);
    const bytes = Buffer.from(text);
    for (let a = 0; a <= bytes.length; a += 7) {
      for (const b of [a, Math.min(bytes.length, a + 1), Math.min(bytes.length, a + 150)]) {
        const outline = new ResponsesOutline(false);
        outline.see(bytes.subarray(0, a));
        outline.see(new Uint8Array(bytes.subarray(a, b)));
        outline.see(bytes.subarray(b));
        expect(outline.failed(info, 9), `${a} ${b}`).toBe(want);
      }
    }
  });

  it('writes a continuation on as the rest of the same response', () => {
    const outline = new ResponsesOutline();
    opened(outline);
    const encoder = outline.continuation();
    const out = [
      encoder.encode({ type: 'start', inputTokens: 9 }),
      encoder.encode({ type: 'text', text: 'world' }),
      encoder.encode({ type: 'text', text: '!' }),
      encoder.encode({ type: 'finish', stopReason: 'end_turn', usage: { inputTokens: 9, outputTokens: 2 } }),
    ].join('');
    expect(encoder.done).toBe(true);
    const written = events(out);
    expect(written.map((e) => [e.type, e.sequence_number])).toEqual([
      ['response.output_text.delta', 5],
      ['response.output_text.delta', 6],
      ['response.output_text.done', 7],
      ['response.content_part.done', 8],
      ['response.output_item.done', 9],
      ['response.completed', 10],
    ]);
    expect(written[0]).toMatchObject({ item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'world' });
    const message = {
      id: 'msg_1',
      type: 'message',
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text: 'Hello, world!', annotations: [] }],
    };
    expect(written[5]?.response).toEqual({
      ...RESPONSE,
      status: 'completed',
      error: null,
      incomplete_details: null,
      output: [message],
      usage: {
        input_tokens: 9,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 2,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 11,
      },
    });
    expect(encoder.encode({ type: 'text', text: 'late' })).toBe('');
  });

  it('a continuation the output limit stops inside a tool call ends in error and response.failed', () => {
    const outline = new ResponsesOutline();
    opened(outline);
    const encoder = outline.continuation();
    const out =
      encoder.encode({ type: 'tool_call_start', index: 0, id: 'call_1', name: 'write_file' }) +
      encoder.encode({ type: 'tool_call_delta', index: 0, arguments: '{"content":"line one\\nline tw' }) +
      encoder.encode({ type: 'finish', stopReason: 'max_tokens' });
    const written = events(out);
    expect(written.map((e) => [e.type, e.sequence_number])).toEqual([
      ['response.output_item.added', 5],
      ['response.function_call_arguments.delta', 6],
      ['error', 7],
      ['response.failed', 8],
    ]);
    expect(written[2]).toMatchObject({
      code: 'upstream_incomplete',
      message:
        "Backend reached its output token limit inside a tool call's arguments: the call is incomplete",
    });
    expect([encoder.done, encoder.failed]).toEqual([true, true]);
  });

  it('a continuation that breaks ends in error and response.failed, numbered on', () => {
    const outline = new ResponsesOutline();
    opened(outline);
    const encoder = outline.continuation();
    const out =
      encoder.encode({ type: 'text', text: 'wor' }) +
      encoder.encode({ type: 'error', error: { status: 502, code: 'upstream_interrupted', message: 'cut' } });
    expect(events(out).map((e) => [e.type, e.sequence_number])).toEqual([
      ['response.output_text.delta', 5],
      ['error', 6],
      ['response.failed', 7],
    ]);
  });
});
