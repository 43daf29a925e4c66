import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider, type RecordedRequest } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { createSignatureSealer, signatureKey } from '../src/protocols/signatures.js';

/**
 * `continue_streams` for a cut stream the proxy TRANSLATED (README, Routes and failover): the translator
 * writes the next element's answer on with the encoder the client's stream already has, so an Anthropic
 * client reads one message and a Responses client one output item, its sequence numbers going on, with one
 * `response.completed`. The scorecard (test/reliability) covers chat streams passed through as they came;
 * the last block here a Responses stream passed through.
 */

const KEY = 'continuation-proxy-key-0123456789';
const STATE_SECRET = 'continuation-state-secret-0123456789abcdef';
const ADMIN_KEY = 'continuation-admin-key-0123456789ab';
/** The fake provider cuts a streamed answer into this many pieces; `reset-mid-stream` sends the first. */
const PIECES = 4;

let fake: FakeProvider;
let proxy: ProxyProcess;
let dir: string;

beforeAll(async () => {
  fake = await startFakeProvider({ chunks: PIECES });
  dir = mkdtempSync(path.join(tmpdir(), 'continuation-'));
  const config = path.join(dir, 'proxy.yaml');
  writeFileSync(
    config,
    [
      'resilience:',
      '  time_scale: 0.03',
      '  continue_streams: true',
      '  breaker: { failures: 1000 }',
      'backends:',
      ...['openai', 'anthropic', 'gemini'].map(
        (side) => `  ${side}: { prefill: ['*accepts-prefill*', '*declared*'] }`,
      ),
      '',
    ].join('\n'),
  );
  proxy = await startProxyProcess(
    ['--config', config, '--default-backend', 'openai', '--capture-file', path.join(dir, 'capture.jsonl')],
    {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
      OPENAI_API_KEY: 'sk-continuation-openai-0123456789',
      OPENAI_API_BASE_URL: fake.baseUrls.openai,
      ANTHROPIC_API_KEY: 'sk-ant-continuation-0123456789',
      ANTHROPIC_API_BASE_URL: fake.baseUrls.anthropic,
      GEMINI_API_KEY: 'AIzaContinuationKey0123456789abcd',
      GEMINI_API_BASE_URL: fake.baseUrls.gemini,
      PROXY_STATE_SECRET: STATE_SECRET,
    },
  );
});

afterAll(async () => {
  await proxy?.stop();
  await fake?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The fake's answer to `prompt`, and its first piece: what a client has when the stream is cut. */
function answerOf(prompt: string): { full: string; first: string } {
  const full = `echo: ${prompt}`;
  return { full, first: full.slice(0, Math.ceil(full.length / PIECES)) };
}

/** The calls the fake received for `model`. */
const callsFor = (since: number, model: string): RecordedRequest[] =>
  fake.requests.slice(since).filter((r) => r.model === model);

/** The last turn of a chat body (OpenAI `messages`, Anthropic `messages`): its role and its text. */
function lastTurn(call: RecordedRequest | undefined): { role: string; text: string } {
  const messages = (call?.body as { messages?: Array<{ role: string; content: unknown }> }).messages ?? [];
  const last = messages.at(-1);
  const content = last?.content;
  const text =
    typeof content === 'string'
      ? content
      : Array.isArray(content)
        ? content.map((part) => String((part as { text?: unknown }).text ?? '')).join('')
        : '';
  return { role: String(last?.role), text };
}

const anthropicClient = () =>
  new Anthropic({ apiKey: KEY, baseURL: `${proxy.url}/anthropic`, maxRetries: 0 });

describe('continue_streams on a translated stream', () => {
  it('an Anthropic client on an OpenAI element cut mid-text reads one whole message', async () => {
    const prompt = 'anthropic client, openai cut';
    const { full, first } = answerOf(prompt);
    const primary = 'fault-reset-mid-stream-ta1';
    const fallback = 'fault-accepts-prefill-ta1';
    const before = fake.requests.length;
    const stream = anthropicClient().messages.stream({
      model: `openai:${primary}|anthropic:${fallback}`,
      max_tokens: 256,
      messages: [{ role: 'user', content: prompt }],
    });
    let text = '';
    stream.on('text', (delta) => (text += delta));
    const message = await stream.finalMessage();
    expect(text).toBe(full);
    expect(message.content.map((block) => (block.type === 'text' ? block.text : block.type))).toEqual([full]);
    expect(message.stop_reason).toBe('end_turn');
    expect(callsFor(before, primary)).toHaveLength(1);
    const continued = callsFor(before, fallback);
    expect(continued).toHaveLength(1);
    // What the fallback was asked: the client's turn, then exactly what the client had read as the prefill.
    expect(lastTurn(continued[0])).toEqual({ role: 'assistant', text: first });
    expect(fake.inFlight()).toBe(0);
  });

  it('a Responses client (responses.stream) reads one output item, sequence numbers going on', async () => {
    const prompt = 'responses client, anthropic cut';
    const { full, first } = answerOf(prompt);
    const primary = 'fault-reset-mid-stream-tr1';
    const fallback = 'fault-accepts-prefill-tr1';
    const before = fake.requests.length;
    const client = new OpenAI({ apiKey: KEY, baseURL: `${proxy.url}/v1`, maxRetries: 0 });
    const stream = client.responses.stream({
      model: `anthropic:${primary}|openai:${fallback}`,
      input: prompt,
      store: false,
    });
    const events: Array<{ type: string; sequence_number: number; output_index?: number; item_id?: string }> =
      [];
    let text = '';
    for await (const event of stream) {
      events.push(event);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    const response = await stream.finalResponse();
    expect(text).toBe(full);
    expect(response.output_text).toBe(full);
    expect(response.status).toBe('completed');
    expect(response.output).toHaveLength(1);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events.filter((e) => e.type === 'response.completed')).toHaveLength(1);
    expect(events.at(-1)?.type).toBe('response.completed');
    expect(events.filter((e) => e.type === 'response.created')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'response.output_item.added')).toHaveLength(1);
    const deltas = events.filter((e) => e.type === 'response.output_text.delta');
    expect(deltas.length).toBeGreaterThan(1);
    expect(new Set(deltas.map((e) => `${e.output_index} ${e.item_id}`)).size).toBe(1);
    expect(deltas[0]?.output_index).toBe(0);
    expect(deltas[0]?.item_id).toBe(response.output[0]?.id);
    expect(callsFor(before, primary)).toHaveLength(1);
    const continued = callsFor(before, fallback);
    expect(continued).toHaveLength(1);
    // Continued through the element's chat door: the Responses API takes no prefill.
    expect(continued[0]?.url).toBe('/v1/chat/completions');
    expect(lastTurn(continued[0])).toEqual({ role: 'assistant', text: first });
    expect(fake.inFlight()).toBe(0);
  });

  it('a fallback declared but refusing the prefill: tried once, the client gets the original failure', async () => {
    const primary = 'fault-reset-mid-stream-ta2';
    const fallback = 'fault-rejects-prefill-declared-ta2';
    const before = fake.requests.length;
    const stream = anthropicClient().messages.stream({
      model: `openai:${primary}|anthropic:${fallback}`,
      max_tokens: 256,
      messages: [{ role: 'user', content: 'refused' }],
    });
    const error = await stream.finalMessage().then(
      () => null,
      (err: unknown) => err as Error,
    );
    expect(error?.message).toContain('Backend stream was interrupted');
    expect(error?.message).not.toMatch(/prefill/);
    expect(callsFor(before, primary)).toHaveLength(1);
    expect(callsFor(before, fallback)).toHaveLength(1);
  });

  it('a fallback not declared to take a prefill is never asked: the original failure', async () => {
    const primary = 'fault-reset-mid-stream-ta3';
    const fallback = 'fault-rejects-prefill-ta3';
    const before = fake.requests.length;
    const stream = anthropicClient().messages.stream({
      model: `openai:${primary}|anthropic:${fallback}`,
      max_tokens: 256,
      messages: [{ role: 'user', content: 'undeclared' }],
    });
    const error = await stream.finalMessage().then(
      () => null,
      (err: unknown) => err as Error,
    );
    expect(error?.message).toContain('Backend stream was interrupted');
    expect(callsFor(before, primary)).toHaveLength(1);
    expect(callsFor(before, fallback)).toHaveLength(0);
  });
});

/** The access lines and capture records of the request whose fallback was `model`. */
async function recordsOf(model: string): Promise<{
  access: Record<string, unknown>;
  captured: Array<{ backend: string; model: string; direction: string; metadata?: Record<string, unknown> }>;
}> {
  const accessLine = () =>
    proxy
      .stdout()
      .split('\n')
      .find((l) => l.includes('"msg":"request"') && l.includes(model));
  // The access line is written when the response closes, through the batched writer: waited for.
  while (accessLine() === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
  const access = JSON.parse(accessLine() ?? '{}') as Record<string, unknown>;
  const id = String(access.request_id);
  const read = async () =>
    (await readFile(path.join(dir, 'capture.jsonl'), 'utf8').catch(() => ''))
      .split('\n')
      .filter((l) => l.includes(`"${id}"`))
      .map((l) => JSON.parse(l) as Awaited<ReturnType<typeof recordsOf>>['captured'][number]);
  while (!(await read()).some((r) => r.model === model && r.direction === 'stream_end'))
    await new Promise((resolve) => setTimeout(resolve, 20));
  return { access, captured: await read() };
}

/** Today's usage by `backend:model` (README, Reading usage): requests and tokens of each. */
async function usageByModel(): Promise<Map<string, { requests: number; input: number; output: number }>> {
  const res = await fetch(`${proxy.url}/admin/usage?group_by=model`, {
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as {
    groups: Array<{ model: string; requests: number; tokens: { input: number; output: number } }>;
  };
  return new Map(
    body.groups.map((g) => [
      g.model,
      { requests: g.requests, input: g.tokens.input, output: g.tokens.output },
    ]),
  );
}

/**
 * One request, two answers: the cut one (no usage, and no policy reserved an estimate: nothing counted) and
 * the continuation's tokens (the fake counts characters: the prompt in, the rest of the answer out), not
 * as a request of its own.
 */
async function expectChargedOnce(primary: string, fallback: string, prompt: string): Promise<void> {
  const { full, first } = answerOf(prompt);
  const usage = await usageByModel();
  expect(usage.get(`openai:${primary}`)).toEqual({ requests: 1, input: 0, output: 0 });
  expect(usage.get(`anthropic:${fallback}`)).toEqual({
    requests: 0,
    input: prompt.length,
    output: full.length - first.length,
  });
}

/** An OpenAI client's stream to `primary`, failing over to `fallback` (the Anthropic backend). */
function chatStream(primary: string, fallback: string, prompt: string): Promise<Response> {
  return fetch(`${proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: `openai:${primary}|anthropic:${fallback}`,
      stream: true,
      messages: [{ role: 'user', content: prompt }],
    }),
  });
}

describe('a continued stream is charged once, with both answers', () => {
  it('passed through, continued from another protocol', async () => {
    const prompt = 'meter the passed through one';
    const primary = 'fault-reset-mid-stream-m1';
    const fallback = 'fault-accepts-prefill-m1';
    const res = await chatStream(primary, fallback, prompt);
    expect(await res.text()).toContain('data: [DONE]');
    await expectChargedOnce(primary, fallback, prompt);
  });

  it('translated, continued by the translator', async () => {
    const prompt = 'meter the translated one';
    const { full } = answerOf(prompt);
    const primary = 'fault-reset-mid-stream-m2';
    const fallback = 'fault-accepts-prefill-m2';
    const message = await anthropicClient()
      .messages.stream({
        model: `openai:${primary}|anthropic:${fallback}`,
        max_tokens: 256,
        messages: [{ role: 'user', content: prompt }],
      })
      .finalMessage();
    expect(message.content).toEqual([{ type: 'text', text: full }]);
    await expectChargedOnce(primary, fallback, prompt);
  });
});

describe('a continued stream keeps the history the first attempt sent', () => {
  it("a wrapped signature in the client's history reaches the continuing element too", async () => {
    // What the proxy gave a Gemini client for an Anthropic thinking block, sealed with PROXY_STATE_SECRET.
    const wrapped = createSignatureSealer(signatureKey(STATE_SECRET)).wrap({
      family: 'anthropic',
      value: 'anthropic-signature-bytes',
    });
    const primary = 'fault-reset-mid-stream-s1';
    const fallback = 'fault-accepts-prefill-s1';
    const since = fake.requests.length;
    const model = encodeURIComponent(`anthropic:${primary}|anthropic:${fallback}`);
    const res = await fetch(`${proxy.url}/v1beta/models/${model}:streamGenerateContent?alt=sse`, {
      method: 'POST',
      headers: { 'x-goog-api-key': KEY, 'content-type': 'application/json' },
      body: JSON.stringify({
        contents: [
          { role: 'user', parts: [{ text: 'first question' }] },
          {
            role: 'model',
            parts: [
              { text: 'thought it over', thought: true, thoughtSignature: wrapped },
              { text: 'first answer' },
            ],
          },
          { role: 'user', parts: [{ text: 'second question' }] },
        ],
      }),
    });
    expect(res.status).toBe(200);
    await res.text();
    const thinking = (call: RecordedRequest | undefined) =>
      (call?.body as { messages: Array<{ content: unknown }> }).messages[1]?.content;
    const expected = [
      { type: 'thinking', thinking: 'thought it over', signature: 'anthropic-signature-bytes' },
      { type: 'text', text: 'first answer' },
    ];
    expect(thinking(callsFor(since, primary)[0])).toEqual(expected);
    expect(thinking(callsFor(since, fallback)[0])).toEqual(expected);
  });
});

describe('a continued stream names every element that wrote to it', () => {
  it('passed through: the head names the first element; the access line and the capture both', async () => {
    const primary = 'fault-reset-mid-stream-h1';
    const fallback = 'fault-accepts-prefill-h1';
    const res = await chatStream(primary, fallback, 'who wrote this');
    const text = await res.text();
    expect(text).toContain('data: [DONE]');
    // Sent before the cut: they name the element that began the answer, and the attempts made by then.
    expect(res.headers.get('x-proxy-backend')).toBe('openai');
    expect(res.headers.get('x-proxy-model')).toBe(primary);
    expect(res.headers.get('x-proxy-attempts')).toBe('1');
    const { access, captured } = await recordsOf(fallback);
    expect(access.request_id).toBe(res.headers.get('x-request-id'));
    expect(access.backend).toBe('anthropic');
    expect(access.model).toBe(fallback);
    expect(access.answered_by).toBe(`openai:${primary}|anthropic:${fallback}`);
    expect(access.attempts).toMatch(
      new RegExp(`^openai:${primary} 200 ok \\d+ms; anthropic:${fallback} 200 continued \\d+ms$`),
    );
    const starts = captured.filter((r) => r.direction === 'stream_start' && r.model === fallback);
    // Each leg's stream opens when it is first read: in no set order.
    const legOf = (r: (typeof starts)[number]) => String(r.metadata?.leg);
    expect(starts.sort((a, b) => legOf(a).localeCompare(legOf(b))).map((r) => r.metadata)).toEqual(
      ['inbound', 'outbound'].map((leg) => ({
        status: 200,
        answered_by: [`openai:${primary}`, `anthropic:${fallback}`],
        leg,
      })),
    );
  });

  it('translated: the access line and the capture name both elements', async () => {
    const primary = 'fault-reset-mid-stream-h2';
    const fallback = 'fault-accepts-prefill-h2';
    const stream = anthropicClient().messages.stream({
      model: `gemini:${primary}|openai:${fallback}`,
      max_tokens: 256,
      messages: [{ role: 'user', content: 'who translated this' }],
    });
    expect((await stream.finalMessage()).stop_reason).toBe('end_turn');
    const { access, captured } = await recordsOf(fallback);
    expect(access.backend).toBe('openai');
    expect(access.answered_by).toBe(`gemini:${primary}|openai:${fallback}`);
    const starts = captured.filter((r) => r.direction === 'stream_start' && r.model === fallback);
    expect(starts.map((r) => r.metadata)).toEqual([
      { status: 200, answered_by: [`gemini:${primary}`, `openai:${fallback}`], leg: 'inbound' },
    ]);
  });
});

/**
 * A Responses stream the backend's Responses endpoint wrote and the proxy passed through as it came, cut
 * mid-text: continued by the next element (through its chat door: the Responses API takes no prefill), the
 * client reading one response — the backend's own ids, sequence numbers going on, one `response.completed`.
 */
describe('continue_streams on a Responses stream passed through', () => {
  type Event = {
    type: string;
    sequence_number: number;
    output_index?: number;
    item_id?: string;
    response?: { id: string; status: string; output: unknown[] };
  };
  const responsesClient = () => new OpenAI({ apiKey: KEY, baseURL: `${proxy.url}/v1`, maxRetries: 0 });

  /** What every continued Responses stream shows, however the SDK was asked for it. */
  function expectOneResponse(events: Event[], text: string, full: string): void {
    expect(text).toBe(full);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events.filter((e) => e.type === 'response.created')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'response.output_item.added')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'response.completed')).toHaveLength(1);
    expect(events.at(-1)?.type).toBe('response.completed');
    const deltas = events.filter((e) => e.type === 'response.output_text.delta');
    // The backend's own item id, from the first delta (the primary's) to the last (the continuation's).
    expect(new Set(deltas.map((e) => `${e.output_index} ${e.item_id}`))).toEqual(new Set(['0 msg_fake_1']));
    expect(events.filter((e) => e.type === 'error' || e.type === 'response.failed')).toEqual([]);
  }

  it('responses.stream: one response, its output the whole text, the usage the continuation’s', async () => {
    const prompt = 'passed-through responses cut';
    const { full, first } = answerOf(prompt);
    const primary = 'fault-reset-mid-stream-rp1';
    const fallback = 'fault-accepts-prefill-rp1';
    const before = fake.requests.length;
    const stream = responsesClient().responses.stream({
      model: `openai:${primary}|anthropic:${fallback}`,
      input: prompt,
      store: false,
    });
    const events: Event[] = [];
    let text = '';
    for await (const event of stream) {
      events.push(event as Event);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    const response = await stream.finalResponse();
    expectOneResponse(events, text, full);
    const created = events[0]?.response;
    expect(response.id).toBe(created?.id);
    expect(response.id).toMatch(/^resp_fake_\d+$/);
    expect(response.status).toBe('completed');
    expect(response.output_text).toBe(full);
    expect(response.output).toEqual([
      {
        id: 'msg_fake_1',
        type: 'message',
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: full, annotations: [], parsed: null }],
      },
    ]);
    // The cut element reported no usage; the continuation's: the prompt in, the rest of the text out.
    expect(response.usage).toMatchObject({
      input_tokens: prompt.length,
      output_tokens: full.length - first.length,
    });
    const cut = callsFor(before, primary);
    expect(cut.map((c) => c.url)).toEqual(['/v1/responses']);
    const continued = callsFor(before, fallback);
    expect(continued.map((c) => c.url)).toEqual(['/v1/messages']);
    expect(lastTurn(continued[0])).toEqual({ role: 'assistant', text: first });
    expect(fake.inFlight()).toBe(0);
  });

  it('responses.create({stream: true}): the same events, read one by one', async () => {
    const prompt = 'created stream, cut and continued';
    const { full, first } = answerOf(prompt);
    const primary = 'fault-reset-mid-stream-rp2';
    const fallback = 'fault-accepts-prefill-rp2';
    const before = fake.requests.length;
    const stream = await responsesClient().responses.create({
      model: `openai:${primary}|openai:${fallback}`,
      input: prompt,
      store: false,
      stream: true,
    });
    const events: Event[] = [];
    let text = '';
    for await (const event of stream) {
      events.push(event as Event);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    expectOneResponse(events, text, full);
    const completed = (events.at(-1) as unknown as OpenAI.Responses.ResponseCompletedEvent).response;
    expect(completed.status).toBe('completed');
    expect(
      completed.output.map((item) =>
        item.type === 'message' ? item.content.map((part) => ('text' in part ? part.text : '')) : [],
      ),
    ).toEqual([[full]]);
    expect(completed.usage).toMatchObject({
      input_tokens: prompt.length,
      output_tokens: full.length - first.length,
    });
    expect(callsFor(before, primary).map((c) => c.url)).toEqual(['/v1/responses']);
    const continued = callsFor(before, fallback);
    expect(continued.map((c) => c.url)).toEqual(['/v1/chat/completions']);
    expect(lastTurn(continued[0])).toEqual({ role: 'assistant', text: first });
  });

  it('no element can continue: the original failure, as `error` then `response.failed`', async () => {
    const prompt = 'passed-through responses, refused';
    const { first } = answerOf(prompt);
    const primary = 'fault-reset-mid-stream-rp3';
    const fallback = 'fault-rejects-prefill-declared-rp3';
    const model = `openai:${primary}|anthropic:${fallback}`;
    const before = fake.requests.length;
    const stream = await responsesClient().responses.create({
      model,
      input: prompt,
      store: false,
      stream: true,
    });
    const events: Event[] = [];
    for await (const event of stream) events.push(event as Event);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    expect(events.slice(-2).map((e) => e.type)).toEqual(['error', 'response.failed']);
    const error = { code: 'upstream_stream_error', message: "Backend 'openai' failed mid-stream" };
    expect(events.at(-2)).toEqual({
      type: 'error',
      sequence_number: events.length - 2,
      ...error,
      param: null,
    });
    const failed = events.at(-1)?.response as unknown as OpenAI.Responses.Response;
    expect(failed.id).toBe(events[0]?.response?.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toEqual(error);
    // Never presented as complete: failed, its output not repeated (the client has the text it read).
    expect(failed.output).toEqual([]);
    expect(
      events
        .filter((e) => e.type === 'response.output_text.delta')
        .map((e) => (e as unknown as { delta: string }).delta)
        .join(''),
    ).toBe(first);
    expect(callsFor(before, primary)).toHaveLength(1);
    expect(callsFor(before, fallback)).toHaveLength(1);
    // The SDK's stream helper rejects with the error event.
    const rejected = await responsesClient()
      .responses.stream({ model: `openai:${primary}`, input: prompt, store: false })
      .finalResponse()
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(rejected).toMatchObject({ type: 'error', ...error });
  });
});
