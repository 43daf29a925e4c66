/**
 * Reasoning signatures through the running proxy for clients other than Anthropic's (README, "Reasoning
 * between families"): the official `openai` SDK (chat completions, whose only carrier is the tool call id, and
 * the Responses API's `encrypted_content`) and `@google/genai` in three-turn thinking tool loops. The fake
 * provider's `thinking` models sign their reasoning and check, as the real APIs do, that it comes back as
 * given: Gemini's `thoughtSignature` on the replayed function call, Anthropic's signature byte for byte with
 * its thinking text unchanged. A changed carrier in a streamed request is dropped and logged, never forwarded.
 */
import { GoogleGenAI, type Content, type Part } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { backendsAt } from './reliability/support.js';

const KEY = 'reasoning-clients-proxy-key-0123456789';
const STATE_SECRET = 'reasoning-clients-state-secret-0123456789abcdef';
const SENTINEL = 'skip_thought_signature_validator';
/** What separates a tool call id from the signatures it carries. */
const MARK = '__lip1_';
const CARRIER = /^(.+)__lip1_[A-Za-z0-9_-]+_[A-Za-z0-9_-]{43}$/;

let upstream: FakeProvider;
let proxy: ProxyProcess;

beforeAll(async () => {
  upstream = await startFakeProvider();
  proxy = await startProxyProcess(['--default-backend', 'openai'], {
    ...backendsAt(upstream.url, KEY),
    PROXY_STATE_SECRET: STATE_SECRET,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
});

type Body = Record<string, unknown>;

/** Runs `turn` and returns what it answered with the body the backend received for it. */
async function recorded<T>(turn: () => Promise<T>): Promise<{ answer: T; request: Body }> {
  const before = upstream.requests.length;
  const answer = await turn();
  expect(upstream.requests.length).toBe(before + 1);
  return { answer, request: upstream.requests[before]?.body as Body };
}

/**
 * A three-turn tool loop with thinking: a question (the model calls the tool), the tool's result (the model
 * answers), a second question (a call again) and its result; every turn replays the whole history.
 */
async function toolLoop<Turn, Answer>(
  ask: (history: Turn[]) => Promise<Answer>,
  first: Turn,
  replay: (answer: Answer) => Turn[],
  result: (answer: Answer, text: string) => Turn,
  question: Turn,
) {
  const history: Turn[] = [first];
  const answers: Answer[] = [];
  const requests: Body[] = [];
  const step = async (next: (answer: Answer) => Turn) => {
    const { answer, request } = await recorded(() => ask(history));
    answers.push(answer);
    requests.push(request);
    history.push(...replay(answer), next(answer));
  };
  await step((a) => result(a, 'sunny'));
  await step(() => question);
  await step((a) => result(a, 'rainy'));
  const last = await recorded(() => ask(history));
  answers.push(last.answer);
  requests.push(last.request);
  return { answers, requests };
}

// --- the openai SDK, chat completions ------------------------------------------------------------------------

const openai = () => new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 });
type ChatTurn = OpenAI.Chat.ChatCompletionMessageParam;
type ChatAnswer = { message: OpenAI.Chat.ChatCompletionMessage; finish: string };

const CHAT_TOOLS: OpenAI.Chat.ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'lookup',
      description: 'Looks things up',
      parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
    },
  },
];

async function askChat(model: string, messages: ChatTurn[], stream: boolean): Promise<ChatAnswer> {
  const params = { model, messages, tools: CHAT_TOOLS, reasoning_effort: 'low' as const };
  const completion = stream
    ? await openai()
        .chat.completions.stream({ ...params, stream: true })
        .finalChatCompletion()
    : await openai().chat.completions.create(params);
  const choice = completion.choices[0] as OpenAI.Chat.ChatCompletion.Choice;
  return { message: choice.message, finish: choice.finish_reason };
}

/** What clients such as opencode and the Vercel AI SDK replay: the text and the calls, not `reasoning_content`. */
const chatReplay = ({ message }: ChatAnswer): ChatTurn[] => [
  {
    role: 'assistant',
    content: message.content,
    ...(message.tool_calls ? { tool_calls: message.tool_calls } : {}),
  },
];

function chatResult({ message }: ChatAnswer, text: string): ChatTurn {
  const call = message.tool_calls?.[0];
  if (call === undefined) throw new Error(`no tool call in ${JSON.stringify(message)}`);
  return { role: 'tool', tool_call_id: call.id, content: text };
}

const chatLoop = (model: string, stream: boolean) =>
  toolLoop<ChatTurn, ChatAnswer>(
    (history) => askChat(model, history, stream),
    { role: 'user', content: 'Weather in Oslo?' },
    chatReplay,
    chatResult,
    { role: 'user', content: 'And in Bergen?' },
  );

const callIds = (answers: ChatAnswer[]) =>
  answers.flatMap((a) => (a.message.tool_calls ?? []).map((c) => c.id));

type GeminiContent = { role: string; parts: Array<Record<string, unknown>> };
const modelTurns = (body: Body) => (body.contents as GeminiContent[]).filter((c) => c.role === 'model');
type AnthropicTurn = { role: string; content: unknown };
const assistantTurns = (body: Body) =>
  (body.messages as AnthropicTurn[])
    .filter((m) => m.role === 'assistant')
    .map((m) => m.content as Array<Record<string, unknown>>);

describe.each([
  ['whole', false],
  ['streamed', true],
])('the openai SDK (chat completions), a tool loop with thinking (%s)', (_, stream) => {
  it('to a Gemini backend: the thought signature rides on the tool call id and comes back on the call', async () => {
    const { answers, requests } = await chatLoop('gemini:gemini-3-thinking', stream);
    expect(answers.map((a) => a.finish)).toEqual(['tool_calls', 'stop', 'tool_calls', 'stop']);
    // The client sees its call ids with the carrier after the mark; the backend never does.
    const ids = callIds(answers);
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(id).toMatch(CARRIER);
    const issued = [...upstream.issuedSignatures];
    const turns = modelTurns(requests[3] as Body);
    expect(turns).toHaveLength(3);
    const calls = turns.map((t) => t.parts.find((p) => p.functionCall));
    expect(calls[0]?.thoughtSignature).toBe(issued.at(-4));
    expect(calls[2]?.thoughtSignature).toBe(issued.at(-2));
    const sent = JSON.stringify(requests);
    expect(sent).not.toContain(MARK);
    expect(sent).not.toContain('lip1.');
    expect(sent).not.toContain(SENTINEL);
  });

  it('to an Anthropic backend: thinking comes back byte for byte, text and signature, thinking kept on', async () => {
    const { answers, requests } = await chatLoop('anthropic:claude-thinking', stream);
    expect(answers.map((a) => a.finish)).toEqual(['tool_calls', 'stop', 'tool_calls', 'stop']);
    const ids = callIds(answers);
    for (const id of ids) expect(id).toMatch(CARRIER);
    const issued = [...upstream.issuedSignatures];
    // Turn 4 replays three assistant turns: the two calls' turns start with their thinking, as given.
    const replayed = assistantTurns(requests[3] as Body);
    expect(replayed).toHaveLength(3);
    expect(replayed[0]?.[0]).toEqual({
      type: 'thinking',
      thinking: 'Thinking about Weather in Oslo?.',
      signature: issued.at(-4),
    });
    expect(replayed[2]?.[0]).toEqual({
      type: 'thinking',
      thinking: 'Thinking about And in Bergen?.',
      signature: issued.at(-2),
    });
    // The ids the backend sees are its own, on the call and on the result.
    const bare = ids.map((id) => CARRIER.exec(id)?.[1]);
    expect(replayed[2]?.[1]).toMatchObject({ type: 'tool_use', id: bare[1] });
    const lastUser = (requests[3]?.messages as AnthropicTurn[]).at(-1)?.content as Body[];
    expect(lastUser[0]).toMatchObject({ type: 'tool_result', tool_use_id: bare[1] });
    expect(requests[3]?.thinking).toEqual({ type: 'enabled', budget_tokens: expect.any(Number) });
    expect(JSON.stringify(requests)).not.toContain(MARK);
  });
});

describe('the openai SDK switching to an OpenAI backend mid-loop', () => {
  it('the carrier comes off the ids passed through, on the call and on the result', async () => {
    const history: ChatTurn[] = [{ role: 'user', content: 'Weather in Oslo?' }];
    const first = await askChat('gemini:gemini-3-thinking', history, false);
    const id = first.message.tool_calls?.[0]?.id as string;
    expect(id).toMatch(CARRIER);
    history.push(...chatReplay(first), chatResult(first, 'sunny'));
    const { answer, request } = await recorded(() => askChat('openai:gpt-5-thinking', history, true));
    expect(answer.finish).toBe('stop');
    const messages = request.messages as Body[];
    const bare = CARRIER.exec(id)?.[1];
    expect((messages[1]?.tool_calls as Body[])[0]?.id).toBe(bare);
    expect(messages[2]).toEqual({ role: 'tool', tool_call_id: bare, content: 'sunny' });
    expect(JSON.stringify(request)).not.toContain(MARK);
  });
});

// --- @google/genai to an Anthropic backend -------------------------------------------------------------------

const gemini = () => new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: proxy.url } });

async function askGemini(model: string, contents: Content[], stream: boolean): Promise<Content> {
  const params = {
    model,
    contents,
    config: {
      tools: [
        {
          functionDeclarations: [
            {
              name: 'lookup',
              description: 'Looks things up',
              parametersJsonSchema: {
                type: 'object',
                properties: { query: { type: 'string' } },
                required: ['query'],
              },
            },
          ],
        },
      ],
      thinkingConfig: { includeThoughts: true, thinkingBudget: 2048 },
    },
  };
  if (!stream) {
    const answer = await gemini().models.generateContent(params);
    return answer.candidates?.[0]?.content as Content;
  }
  // Gemini CLI keeps a streamed turn as the parts of its chunks, in order.
  const parts: Part[] = [];
  for await (const chunk of await gemini().models.generateContentStream(params))
    parts.push(...(chunk.candidates?.[0]?.content?.parts ?? []));
  return { role: 'model', parts };
}

function geminiResult(answer: Content, text: string): Content {
  const call = answer.parts?.find((p) => p.functionCall)?.functionCall;
  if (call === undefined) throw new Error(`no function call in ${JSON.stringify(answer)}`);
  return {
    role: 'user',
    parts: [{ functionResponse: { id: call.id, name: call.name, response: { output: text } } }],
  };
}

describe.each([
  ['whole', false],
  ['streamed', true],
])('@google/genai, a tool loop with thinking (%s)', (_, stream) => {
  it('to an Anthropic backend: the wrapped signature comes back as Anthropic gave it', async () => {
    const { answers, requests } = await toolLoop<Content, Content>(
      (history) => askGemini('anthropic:claude-thinking', history, stream),
      { role: 'user', parts: [{ text: 'Weather in Oslo?' }] },
      (answer) => [answer],
      geminiResult,
      { role: 'user', parts: [{ text: 'And in Bergen?' }] },
    );
    expect(answers.map((a) => a.parts?.some((p) => p.functionCall) ?? false)).toEqual([
      true,
      false,
      true,
      false,
    ]);
    const signatures = answers[0]?.parts?.flatMap((p) => (p.thoughtSignature ? [p.thoughtSignature] : []));
    expect(signatures?.every((s) => s.startsWith('lip1.anthropic.'))).toBe(true);
    const issued = [...upstream.issuedSignatures];
    const replayed = assistantTurns(requests[3] as Body);
    expect(replayed.map((turn) => turn[0])).toEqual([
      { type: 'thinking', thinking: 'Thinking about Weather in Oslo?.', signature: issued.at(-4) },
      { type: 'thinking', thinking: 'Thinking about the tool result.', signature: issued.at(-3) },
      { type: 'thinking', thinking: 'Thinking about And in Bergen?.', signature: issued.at(-2) },
    ]);
    expect(requests[3]?.thinking).toEqual({ type: 'enabled', budget_tokens: 2048 });
    expect(JSON.stringify(requests)).not.toContain('lip1.');
  });
});

// --- the openai SDK, Responses API, to an Anthropic backend --------------------------------------------------

type Item = OpenAI.Responses.ResponseInputItem;

async function askResponses(
  model: string,
  input: Item[],
  stream: boolean,
): Promise<OpenAI.Responses.Response> {
  const params = {
    model,
    input,
    store: false,
    include: ['reasoning.encrypted_content' as const],
    tools: [
      {
        type: 'function' as const,
        name: 'lookup',
        description: 'Looks things up',
        strict: false,
        parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
      },
    ],
  };
  if (stream) return openai().responses.stream(params).finalResponse();
  return openai().responses.create(params);
}

function responsesResult(answer: OpenAI.Responses.Response, text: string): Item {
  const call = answer.output.find((o) => o.type === 'function_call');
  if (call?.type !== 'function_call') throw new Error(`no call in ${JSON.stringify(answer.output)}`);
  return { type: 'function_call_output', call_id: call.call_id, output: text };
}

describe.each([
  ['whole', false],
  ['streamed', true],
])('the openai SDK (Responses API), a tool loop with thinking (%s)', (_, stream) => {
  it('to an Anthropic backend: encrypted_content carries the signature back', async () => {
    const { answers, requests } = await toolLoop<Item, OpenAI.Responses.Response>(
      (history) => askResponses('anthropic:claude-thinking', history, stream),
      { role: 'user', content: 'Weather in Oslo?' },
      (answer) => answer.output as Item[],
      responsesResult,
      { role: 'user', content: 'And in Bergen?' },
    );
    expect(answers.map((a) => a.output.some((o) => o.type === 'function_call'))).toEqual([
      true,
      false,
      true,
      false,
    ]);
    const reasoning = answers[0]?.output.find((o) => o.type === 'reasoning');
    expect(reasoning?.type === 'reasoning' && reasoning.encrypted_content).toMatch(/^lip1\.anthropic\./);
    const issued = [...upstream.issuedSignatures];
    const replayed = assistantTurns(requests[3] as Body);
    expect(replayed.map((turn) => turn[0])).toEqual([
      { type: 'thinking', thinking: 'Thinking about Weather in Oslo?.', signature: issued.at(-4) },
      { type: 'thinking', thinking: 'Thinking about the tool result.', signature: issued.at(-3) },
      { type: 'thinking', thinking: 'Thinking about And in Bergen?.', signature: issued.at(-2) },
    ]);
    expect(JSON.stringify(requests)).not.toContain('lip1.');
  });
});

// --- a changed carrier in a streamed request ------------------------------------------------------------------

describe('a changed carrier in a streamed request', () => {
  const dropLines = () =>
    proxy
      .stdout()
      .split('\n')
      .filter((l) => l.includes('Reasoning signature dropped'));

  it('streams the answer, never reaches the backend, and is logged once without its value', async () => {
    const model = 'gemini:gemini-3-thinking';
    const history: ChatTurn[] = [{ role: 'user', content: 'Weather in Oslo?' }];
    const first = await askChat(model, history, true);
    const id = first.message.tool_calls?.[0]?.id as string;
    expect(id).toMatch(CARRIER);
    // One byte of the carrier's payload changed.
    const at = id.indexOf(MARK) + MARK.length + 2;
    const forged = id.slice(0, at) + (id[at] === 'A' ? 'B' : 'A') + id.slice(at + 1);
    const calls = first.message.tool_calls?.map((c) => ({ ...c, id: forged }));
    history.push(
      { role: 'assistant', content: first.message.content, tool_calls: calls },
      { role: 'tool', tool_call_id: forged, content: 'sunny' },
    );
    const dropsBefore = dropLines().length;
    const chunks: string[] = [];
    const { answer, request } = await recorded(async () => {
      const s = await openai().chat.completions.create({
        model,
        messages: history,
        tools: CHAT_TOOLS,
        stream: true,
      });
      for await (const chunk of s) chunks.push(chunk.choices[0]?.delta?.content ?? '');
      return chunks.join('');
    });
    expect(answer).toBe('Tool said: {"output":"sunny"}');
    expect(chunks.length).toBeGreaterThan(1);
    // What reached Gemini: the bare id, no carrier, and the documented sentinel instead of the signature.
    const sent = JSON.stringify(request);
    expect(sent).not.toContain(MARK);
    expect(sent).not.toContain(forged.slice(forged.indexOf(MARK)));
    const call = modelTurns(request)[0]?.parts.find((p) => p.functionCall);
    expect(call?.thoughtSignature).toBe(SENTINEL);
    await expect.poll(() => dropLines().length).toBe(dropsBefore + 1);
    const line = JSON.parse(dropLines().at(-1) as string) as Body;
    expect(line).toMatchObject({ at: 'messages[1].content[0].id', reason: 'tampered' });
    expect(proxy.stdout()).not.toContain(STATE_SECRET);
    expect(proxy.stdout()).not.toContain(MARK);
  });
});
