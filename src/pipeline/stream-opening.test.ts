import { describe, expect, it } from 'vitest';
import type { Protocol } from '../protocols/types.js';
import { MAX_OPENING_BYTES, StreamOpening } from './stream-opening.js';

const event = (data: unknown, name?: string) =>
  `${name === undefined ? '' : `event: ${name}\n`}data: ${JSON.stringify(data)}\n\n`;

/** What the opening says after each of `chunks`. */
function says(protocol: Protocol, chunks: string[]): string[] {
  const opening = new StreamOpening(protocol);
  return chunks.map((chunk) => {
    const said = opening.see(Buffer.from(chunk));
    return said.kind === 'error' ? `error ${said.error.status}` : said.kind;
  });
}

const MESSAGE_START = event(
  { type: 'message_start', message: { id: 'm', role: 'assistant', model: 'c', content: [], usage: {} } },
  'message_start',
);

describe('StreamOpening', () => {
  it("Anthropic: message_start and pings are no answer; a block's first delta is", () => {
    expect(
      says('anthropic', [
        MESSAGE_START,
        event({ type: 'ping' }, 'ping'),
        event(
          { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
          'content_block_start',
        ),
        event(
          { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi' } },
          'content_block_delta',
        ),
      ]),
    ).toEqual(['more', 'more', 'more', 'content']);
  });

  it('Anthropic: an error event before the answer is a failure with its status (overloaded: 529)', () => {
    expect(
      says('anthropic', [
        MESSAGE_START,
        event({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, 'error'),
      ]),
    ).toEqual(['more', 'error 529']);
  });

  it('OpenAI: a role chunk with empty content and comments wait; text, a tool call or a finish answer', () => {
    const chunk = (delta: unknown, finish: string | null = null) =>
      event({
        id: 'c',
        object: 'chat.completion.chunk',
        model: 'm',
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
    expect(
      says('openai', [
        ': keep-alive\n\n',
        chunk({ role: 'assistant', content: '' }),
        chunk({ content: 'Hi' }),
      ]),
    ).toEqual(['more', 'more', 'content']);
    expect(
      says('openai', [
        chunk({ tool_calls: [{ index: 0, id: 't', function: { name: 'f', arguments: '' } }] }),
      ]),
    ).toEqual(['content']);
    // An empty answer: its finish waits for the usage chunk or [DONE], which end it.
    expect(says('openai', [chunk({}, 'stop'), 'data: [DONE]\n\n'])).toEqual(['more', 'content']);
    expect(says('openai', [event({ error: { message: 'boom', type: 'server_error' } })])).toEqual([
      'error 500',
    ]);
  });

  it('Responses: response.created waits; response.failed is a failure', () => {
    const created = event(
      {
        type: 'response.created',
        sequence_number: 0,
        response: { id: 'r', status: 'in_progress', output: [] },
      },
      'response.created',
    );
    expect(
      says('responses', [
        created,
        event(
          {
            type: 'response.output_text.delta',
            sequence_number: 1,
            item_id: 'i',
            output_index: 0,
            content_index: 0,
            delta: 'Hi',
          },
          'response.output_text.delta',
        ),
      ]),
    ).toEqual(['more', 'content']);
    const failed = event(
      {
        type: 'response.failed',
        sequence_number: 1,
        response: { id: 'r', status: 'failed', error: { code: 'server_error', message: 'x' } },
      },
      'response.failed',
    );
    expect(says('responses', [created, failed])[1]).toMatch(/^error 5\d\d$/);
  });

  it('Gemini: the first candidate part answers', () => {
    expect(
      says('gemini', [event({ candidates: [{ content: { role: 'model', parts: [{ text: 'Hi' }] } }] })]),
    ).toEqual(['content']);
  });

  it('commits past the opening bound, whatever came', () => {
    const opening = new StreamOpening('anthropic');
    expect(opening.see(Buffer.from(`: ${'x'.repeat(MAX_OPENING_BYTES)}\n\n`)).kind).toBe('content');
  });

  it('at the end: an answer its end completes commits; an opening alone does not', () => {
    const finished = new StreamOpening('anthropic');
    finished.see(Buffer.from(MESSAGE_START));
    finished.see(
      Buffer.from(
        event(
          { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 0 } },
          'message_delta',
        ),
      ),
    );
    expect(finished.end().kind).toBe('content');
    const cut = new StreamOpening('anthropic');
    cut.see(Buffer.from(MESSAGE_START));
    expect(cut.end().kind).toBe('more');
  });
});
