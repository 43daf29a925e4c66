import { Readable } from 'node:stream';
import type { ModelInfo } from '../protocols/canonical.js';
import type { Backend, BackendCall, UpstreamResponse } from './types.js';

export const MOCK_MODEL = 'mock-model';

type Message = { role?: unknown; content?: unknown };

/** The text of the last user message, whatever content shape (string or parts) the client used. */
function lastUserText(body: Record<string, unknown>): string {
  const messages = Array.isArray(body.messages) ? (body.messages as Message[]) : [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (message?.role !== 'user') continue;
    if (typeof message.content === 'string') return message.content;
    if (Array.isArray(message.content)) {
      return message.content
        .map((part: { type?: unknown; text?: unknown }) =>
          part?.type === 'text' && typeof part.text === 'string' ? part.text : '',
        )
        .join('');
    }
  }
  return '';
}

function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/** Splits text into word-sized pieces (keeping the spaces), so a streamed echo arrives in several chunks. */
function pieces(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [''];
}

/**
 * The embedded `mock` backend (README, Quick start): answers in-process, with no network and no key, by
 * echoing the last user message. It speaks the OpenAI wire format; other front-ends reach it through
 * translation.
 */
export class MockBackend implements Backend {
  readonly name = 'mock';
  readonly protocol = 'openai' as const;
  readonly missingCredential = null;
  readonly credentialName = null;
  private counter = 0;

  /** In-process: nothing goes on a wire but what the client sent that the pipeline allowed. */
  headersFor(headers: BackendCall['headers']): Readonly<Record<string, string>> {
    return headers ?? {};
  }

  chat(call: BackendCall): Promise<UpstreamResponse> {
    const text = lastUserText(call.body);
    const id = `chatcmpl-mock-${++this.counter}`;
    const created = Math.floor(Date.now() / 1000);
    const model = call.model || MOCK_MODEL;
    const usage = {
      prompt_tokens: estimateTokens(JSON.stringify(call.body.messages ?? '')),
      completion_tokens: estimateTokens(text),
      total_tokens: 0,
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const chunks: string[] = call.stream
      ? [
          ...pieces(text).map((piece, index) =>
            sse({
              id,
              object: 'chat.completion.chunk',
              created,
              model,
              choices: [
                {
                  index: 0,
                  delta: index === 0 ? { role: 'assistant', content: piece } : { content: piece },
                  finish_reason: null,
                },
              ],
            }),
          ),
          sse({
            id,
            object: 'chat.completion.chunk',
            created,
            model,
            choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
            usage,
          }),
          'data: [DONE]\n\n',
        ]
      : [
          JSON.stringify({
            id,
            object: 'chat.completion',
            created,
            model,
            choices: [
              {
                index: 0,
                message: { role: 'assistant', content: text },
                finish_reason: 'stop',
                logprobs: null,
              },
            ],
            usage,
          }),
        ];
    const body = Readable.from(
      chunks.map((c) => Buffer.from(c)),
      { objectMode: false },
    );
    return Promise.resolve({
      status: 200,
      headers: { 'content-type': call.stream ? 'text/event-stream' : 'application/json' },
      body,
      dispose: () => body.destroy(),
    });
  }

  listModels(): Promise<ModelInfo[]> {
    return Promise.resolve([{ id: MOCK_MODEL, ownedBy: 'llm-interactive-proxy' }]);
  }
}

function sse(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}
