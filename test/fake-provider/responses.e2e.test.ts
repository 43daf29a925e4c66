/**
 * The fake provider's minimal Responses API (`/v1/responses`, what Codex speaks), read by the official
 * `openai` SDK: a shell tool round trip, streamed and whole, assembles into the same Response.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './index.mjs';

const KEY = 'sk-fake-responses-key';
let provider: FakeProvider;
let client: OpenAI;

beforeAll(async () => {
  provider = await startFakeProvider({ keys: { openai: KEY } });
  client = new OpenAI({ baseURL: provider.baseUrls.openai, apiKey: KEY, maxRetries: 0 });
});
afterAll(() => provider.close());

const tools: OpenAI.Responses.Tool[] = [
  { type: 'function', name: 'view_image', parameters: { type: 'object' }, strict: false },
  { type: 'function', name: 'exec_command', parameters: { type: 'object' }, strict: false },
];
const call = {
  type: 'function_call' as const,
  call_id: 'call_fake_1',
  name: 'exec_command',
  arguments: '{"cmd":"echo hi"}',
};

describe('the fake provider speaks the Responses API', () => {
  it('calls the offered shell tool, streamed, with the events the SDK assembles', async () => {
    const stream = client.responses.stream({ model: 'gpt-5.5', input: 'Run echo hi', tools });
    const types: string[] = [];
    stream.on('event', (event) => types.push(event.type));
    const response = await stream.finalResponse();
    expect(response.status).toBe('completed');
    // `parsed_arguments` is the SDK's own addition to a streamed call.
    expect(response.output).toEqual([
      { id: 'fc_fake_1', status: 'completed', ...call, parsed_arguments: null },
    ]);
    expect(new Set(types)).toEqual(
      new Set([
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.function_call_arguments.delta',
        'response.function_call_arguments.done',
        'response.output_item.done',
        'response.completed',
      ]),
    );
  });

  it('answers the tool result with text, streamed and whole alike', async () => {
    const input: OpenAI.Responses.ResponseInput = [
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Run echo hi' }] },
      call,
      { type: 'function_call_output', call_id: 'call_fake_1', output: 'hi\n' },
    ];
    const streamed = await client.responses.stream({ model: 'gpt-5.5', input, tools }).finalResponse();
    const whole = await client.responses.create({ model: 'gpt-5.5', input, tools });
    expect(streamed.output_text).toBe('Tool said: hi\n');
    expect(whole.output_text).toBe('Tool said: hi\n');
    const message = {
      id: 'msg_fake_1',
      type: 'message',
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text: 'Tool said: hi\n', annotations: [] }],
    };
    expect(whole.output).toEqual([message]);
    expect(streamed.output).toMatchObject([message]); // the SDK adds `parsed` to a streamed text part
    expect(whole.usage).toEqual({
      input_tokens: 0,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: 14,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 14,
    });
  });

  it('refuses a wrong key and a body without input, in the OpenAI envelope', async () => {
    const wrong = new OpenAI({ baseURL: provider.baseUrls.openai, apiKey: 'sk-wrong', maxRetries: 0 });
    await expect(wrong.responses.create({ model: 'gpt-5.5', input: 'x' })).rejects.toMatchObject({
      status: 401,
    });
    const res = await fetch(`${provider.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-5.5' }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: {
        message: "Missing required parameter: 'input'.",
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    });
  });
});
