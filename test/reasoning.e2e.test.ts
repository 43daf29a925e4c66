/**
 * Reasoning between families through the running proxy, with the official Anthropic SDK as the client
 * (README, "Reasoning between families"): a tool loop with thinking to an OpenAI, a Gemini and an Anthropic
 * backend, and one conversation that switches family mid-session. The fake provider's `thinking` models sign
 * their reasoning and check, as the real APIs do, that a signature comes back byte for byte (Anthropic's
 * thinking blocks, Gemini's `thoughtSignature` on the replayed function call). A wrap that was changed is
 * dropped and logged, never forwarded.
 */
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { backendsAt } from './reliability/support.js';

const KEY = 'reasoning-proxy-key-0123456789';
const STATE_SECRET = 'reasoning-state-secret-0123456789abcdef';
const SENTINEL = 'skip_thought_signature_validator';

let upstream: FakeProvider;
let proxy: ProxyProcess;

beforeAll(async () => {
  upstream = await startFakeProvider();
  proxy = await startProxyProcess(['--default-backend', 'anthropic'], {
    ...backendsAt(upstream.url, KEY),
    PROXY_STATE_SECRET: STATE_SECRET,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
});

const client = () => new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: KEY, maxRetries: 0 });

const TOOLS: Anthropic.Tool[] = [
  {
    name: 'lookup',
    description: 'Looks things up',
    input_schema: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
  },
];

type Turn = Anthropic.MessageParam;

/** One call, whole or streamed (the SDK assembles the stream's thinking, signature and tool blocks). */
async function ask(model: string, messages: Turn[], stream: boolean): Promise<Anthropic.Message> {
  const params = {
    model,
    max_tokens: 4096,
    thinking: { type: 'enabled' as const, budget_tokens: 2048 },
    tools: TOOLS,
    messages,
  };
  if (stream) return client().messages.stream(params).finalMessage();
  return client().messages.create(params);
}

/** The tool result that answers a turn's tool call. */
function resultFor(answer: Anthropic.Message, text: string): Turn {
  const call = answer.content.find((b) => b.type === 'tool_use');
  if (call?.type !== 'tool_use') throw new Error(`no tool call in ${JSON.stringify(answer.content)}`);
  return { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: text }] };
}

const thinkingOf = (answer: Anthropic.Message) =>
  answer.content.filter((b): b is Anthropic.ThinkingBlock => b.type === 'thinking');

/**
 * A three-turn tool loop with thinking, each turn sent to the model `models[i]`: a question (the model calls
 * the tool), the tool's result (the model answers), a second question (a call again) and its result. Every
 * turn replays the whole history, thinking blocks and signatures included, as Claude Code does.
 */
async function toolLoop(models: string[], stream: boolean) {
  const history: Turn[] = [{ role: 'user', content: 'Weather in Oslo?' }];
  const answers: Anthropic.Message[] = [];
  const requests: Array<Record<string, unknown>> = [];
  const step = async (i: number, next: (answer: Anthropic.Message) => Turn) => {
    const before = upstream.requests.length;
    const answer = await ask(models[i] as string, history, stream);
    requests.push(upstream.requests[before]?.body as Record<string, unknown>);
    answers.push(answer);
    history.push({ role: 'assistant', content: answer.content });
    history.push(next(answer));
  };
  await step(0, (a) => resultFor(a, 'sunny'));
  await step(1, () => ({ role: 'user', content: 'And in Bergen?' }));
  await step(2, (a) => resultFor(a, 'rainy'));
  const before = upstream.requests.length;
  answers.push(await ask(models[3] as string, history, stream));
  requests.push(upstream.requests[before]?.body as Record<string, unknown>);
  return { answers, requests, history };
}

type GeminiContent = { role: string; parts: Array<Record<string, unknown>> };
const modelTurns = (body: Record<string, unknown>) =>
  (body.contents as GeminiContent[]).filter((c) => c.role === 'model');

describe.each([
  ['whole', false],
  ['streamed', true],
])('a tool loop with thinking from an Anthropic client (%s)', (_, stream) => {
  it('to an OpenAI backend: reasoning_content reaches the client as thinking and goes back', async () => {
    const { answers, requests } = await toolLoop(Array(4).fill('openai:gpt-5-thinking'), stream);
    expect(answers.map((a) => a.stop_reason)).toEqual(['tool_use', 'end_turn', 'tool_use', 'end_turn']);
    const [first] = thinkingOf(answers[0] as Anthropic.Message);
    expect(first?.thinking).toBe('Thinking about Weather in Oslo?.');
    // OpenAI chat has no signature: the client gets the proxy's seal of the family, to give back.
    expect(first?.signature).toMatch(/^lip1\.openai\.\.[A-Za-z0-9_-]{43}$/);
    // Each later turn gives OpenAI its own reasoning back as reasoning_content.
    const assistants = (requests[3]?.messages as Array<Record<string, unknown>>).filter(
      (m) => m.role === 'assistant',
    );
    const given = answers.slice(0, 3).map((a) =>
      thinkingOf(a)
        .map((b) => b.thinking)
        .join(''),
    );
    expect(given[0]).toBe('Thinking about Weather in Oslo?.');
    expect(assistants.map((m) => m.reasoning_content)).toEqual(given);
    expect(JSON.stringify(requests)).not.toContain('lip1.');
  });

  it('to a Gemini backend: the thought signature comes back on the replayed function call', async () => {
    const { answers, requests } = await toolLoop(Array(4).fill('gemini:gemini-3-thinking'), stream);
    expect(answers.map((a) => a.stop_reason)).toEqual(['tool_use', 'end_turn', 'tool_use', 'end_turn']);
    const signatures = thinkingOf(answers[0] as Anthropic.Message).map((b) => b.signature);
    expect(signatures.every((s) => s.startsWith('lip1.gemini.'))).toBe(true);
    // Turn 4 replays three model turns: each call, and the text, with the signature Gemini gave it.
    const issued = [...upstream.issuedSignatures];
    const turns = modelTurns(requests[3] as Record<string, unknown>);
    expect(turns).toHaveLength(3);
    const call = turns[0]?.parts.find((p) => p.functionCall);
    expect(call?.thoughtSignature).toBe(issued.at(-4));
    expect(turns[0]?.parts[0]).toEqual({ text: 'Thinking about Weather in Oslo?.', thought: true });
    expect(turns[2]?.parts.find((p) => p.functionCall)?.thoughtSignature).toBe(issued.at(-2));
    expect(JSON.stringify(requests)).not.toContain('lip1.');
    expect(JSON.stringify(requests)).not.toContain(SENTINEL);
  });

  it('to an Anthropic backend: signatures go back byte for byte', async () => {
    const { answers, requests } = await toolLoop(Array(4).fill('anthropic:claude-thinking'), stream);
    expect(answers.map((a) => a.stop_reason)).toEqual(['tool_use', 'end_turn', 'tool_use', 'end_turn']);
    const given = answers.slice(0, 3).map((a) => thinkingOf(a)[0]?.signature);
    expect(given.every((s) => upstream.issuedSignatures.has(s as string))).toBe(true);
    const replayed = (requests[3]?.messages as Array<{ role: string; content: unknown }>)
      .filter((m) => m.role === 'assistant')
      .map((m) => (m.content as Array<Record<string, unknown>>)[0]);
    expect(replayed.map((b) => b?.signature)).toEqual(given);
    expect(requests[3]?.thinking).toEqual({ type: 'enabled', budget_tokens: 2048 });
  });

  it('switching family mid-session: Gemini, then Anthropic, then Gemini again', async () => {
    const models = [
      'gemini:gemini-3-thinking',
      'anthropic:claude-thinking',
      'gemini:gemini-3-thinking',
      'gemini:gemini-3-thinking',
    ];
    const { answers, requests } = await toolLoop(models, stream);
    expect(answers.map((a) => a.stop_reason)).toEqual(['tool_use', 'end_turn', 'tool_use', 'end_turn']);
    // To Anthropic: Gemini's signatures never, and thinking off for a loop whose last turn lost its thinking.
    expect(JSON.stringify(requests[1])).not.toContain('lip1.');
    const toAnthropic = (requests[1]?.messages as Array<{ role: string; content: unknown }>)[1];
    expect(toAnthropic?.content).toEqual([
      {
        type: 'tool_use',
        id: expect.any(String),
        name: 'lookup',
        input: { query: 'Weather in Oslo?', units: 'metric' },
      },
    ]);
    expect(requests[1]).not.toHaveProperty('thinking');
    // Back to Gemini: its own signature on its call; Anthropic's turn has no Gemini signature to give.
    const issued = [...upstream.issuedSignatures];
    const turns = modelTurns(requests[3] as Record<string, unknown>);
    expect(turns[0]?.parts.find((p) => p.functionCall)?.thoughtSignature).toBe(issued.at(-4));
    expect(turns[1]?.parts).toEqual([{ text: 'Tool said: sunny' }]);
    expect(JSON.stringify(requests)).not.toContain('lip1.');
  });
});

describe('a changed signature', () => {
  it('is dropped and logged, never forwarded', async () => {
    const model = 'gemini:gemini-3-thinking';
    const history: Turn[] = [{ role: 'user', content: 'Weather in Oslo?' }];
    const first = await ask(model, history, false);
    const forged = first.content.map((b) => {
      if (b.type !== 'thinking' || !b.signature.split('.')[2]) return b;
      const mac = b.signature.split('.')[3] as string;
      const flipped = (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1);
      return { ...b, signature: [...b.signature.split('.').slice(0, 3), flipped].join('.') };
    });
    expect(forged).not.toEqual(first.content);
    history.push({ role: 'assistant', content: forged }, resultFor(first, 'sunny'));
    const before = upstream.requests.length;
    const answer = await ask(model, history, false);
    expect(answer.stop_reason).toBe('end_turn');
    const body = upstream.requests[before]?.body as Record<string, unknown>;
    // What reached Gemini: no wrap and no forged value; the call carries the documented sentinel instead.
    expect(JSON.stringify(body)).not.toContain('lip1.');
    const call = modelTurns(body)[0]?.parts.find((p) => p.functionCall);
    expect(call?.thoughtSignature).toBe(SENTINEL);
    await expect
      .poll(() => proxy.stdout())
      .toContain('Reasoning signature dropped: its wrap does not verify');
    const line = proxy
      .stdout()
      .split('\n')
      .find((l) => l.includes('Reasoning signature dropped'));
    expect(JSON.parse(line as string)).toMatchObject({ at: 'messages[1].content[1]', reason: 'tampered' });
    expect(proxy.stdout()).not.toContain(STATE_SECRET);
    expect(proxy.stdout()).not.toContain('lip1.');
  });

  it('on the same protocol is taken out of the body before it is passed through', async () => {
    const model = 'anthropic:claude-thinking';
    const wrapped = first(await ask('gemini:gemini-3-thinking', [{ role: 'user', content: 'Hi?' }], false));
    const history: Turn[] = [
      { role: 'user', content: 'Hi?' },
      {
        role: 'assistant',
        content: [{ type: 'thinking', thinking: 'x', signature: `${wrapped.slice(0, -2)}xx` }],
      },
      { role: 'user', content: 'Again?' },
    ];
    const before = upstream.requests.length;
    const answer = await ask(model, history, true);
    expect(answer.stop_reason).toBe('tool_use');
    // The assistant turn held only the changed wrap: it is left out whole.
    const body = upstream.requests[before]?.body as { messages: Array<{ role: string }> };
    expect(body.messages.map((m) => m.role)).toEqual(['user', 'user']);
    expect(JSON.stringify(body)).not.toContain('lip1.');
  });
});

/** The first thinking block's signature. */
function first(answer: Anthropic.Message): string {
  return thinkingOf(answer)[0]?.signature as string;
}
