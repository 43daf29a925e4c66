import { readFileSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import fc from 'fast-check';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startFakeProvider, type FakeProvider, type RecordedRequest } from './fake-provider/index.mjs';

/**
 * Sessions and in-chat commands (README, "In-chat commands") through the real proxy, driven by the three
 * official SDKs: a command-only message is answered by the proxy in the client's protocol and never reaches
 * a backend; settings stay in their (key, session id); command text never reaches a backend later.
 */
const ALICE = 'sessions-alice-key-0123456789';
const BOB = 'sessions-bob-key-0123456789ab';

let provider: FakeProvider;
let proxy: ProxyProcess;
let plain: ProxyProcess;

function providerEnv(p: FakeProvider): Record<string, string> {
  return {
    OPENAI_API_KEY: 'sk-openai-sessions-test',
    OPENAI_API_BASE_URL: p.baseUrls.openai,
    ANTHROPIC_API_KEY: 'sk-ant-sessions-test',
    ANTHROPIC_API_BASE_URL: p.baseUrls.anthropic,
    GEMINI_API_KEY: 'AIzaSessionsTest0123456789',
    GEMINI_API_BASE_URL: p.baseUrls.gemini,
  };
}

beforeAll(async () => {
  provider = await startFakeProvider();
  const env = { ...providerEnv(provider), API_KEYS: `${ALICE},${BOB}` };
  [proxy, plain] = await Promise.all([
    startProxyProcess(['--default-backend', 'openai'], env),
    startProxyProcess(['--default-backend', 'openai', '--disable-commands'], env),
  ]);
});

afterAll(async () => {
  await Promise.all([proxy?.stop(), plain?.stop()]);
  await provider?.close();
});

const openai = (key: string, session?: string, url = proxy.url) =>
  new OpenAI({
    baseURL: `${url}/v1`,
    apiKey: key,
    maxRetries: 0,
    defaultHeaders: session === undefined ? {} : { 'x-session-id': session },
  });

async function say(client: OpenAI, text: string, stream = false): Promise<string> {
  if (!stream) {
    const res = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: text }],
    });
    return res.choices[0]?.message.content ?? '';
  }
  let out = '';
  const s = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: text }],
    stream: true,
  });
  for await (const chunk of s) out += chunk.choices[0]?.delta.content ?? '';
  return out;
}

/** The chat calls the provider received while `run` ran. */
async function callsDuring(run: () => Promise<unknown>): Promise<RecordedRequest[]> {
  const before = provider.requests.length;
  await run();
  return provider.requests.slice(before);
}

describe('commands answered by the proxy', () => {
  it('answers !/help in every protocol, streamed and not, and calls no backend', async () => {
    const calls = await callsDuring(async () => {
      for (const stream of [false, true]) {
        expect(await say(openai(ALICE, 'help-1'), '!/help', stream)).toContain('!/set(model=backend:model)');

        const anthropic = new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: ALICE, maxRetries: 0 });
        const params = {
          model: 'claude-x',
          max_tokens: 100,
          messages: [{ role: 'user' as const, content: '!/help' }],
        };
        const text = stream
          ? (await anthropic.messages.stream(params).finalMessage()).content
          : (await anthropic.messages.create(params)).content;
        expect(text[0]?.type === 'text' ? text[0].text : '').toContain('!/oneoff(backend:model)');

        const gemini = new GoogleGenAI({ apiKey: ALICE, httpOptions: { baseUrl: proxy.url } });
        const request = { model: 'gemini-2.0-flash', contents: '!/help' };
        let gText = '';
        if (stream) {
          for await (const chunk of await gemini.models.generateContentStream(request))
            gText += chunk.text ?? '';
        } else {
          gText = (await gemini.models.generateContent(request)).text ?? '';
        }
        expect(gText).toContain('!/session');
      }
    });
    expect(calls).toEqual([]);
  });

  it('answers a malformed command with the valid forms, and never a 5xx under fuzz', async () => {
    const reply = await say(openai(ALICE, 'bad-1'), '!/set(colour=red)');
    expect(reply).toContain("!/set cannot set 'colour' (model, temperature or reasoning)");
    expect(reply).toContain('!/unset(model)');

    const calls = await callsDuring(async () => {
      await fc.assert(
        fc.asyncProperty(fc.string({ maxLength: 40 }), async (tail) => {
          const res = await fetch(`${proxy.url}/v1/chat/completions`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${ALICE}`,
              'content-type': 'application/json',
              'x-session-id': 'fuzz',
            },
            body: JSON.stringify({
              model: 'gpt-4o-mini',
              messages: [{ role: 'user', content: `!/${tail}` }],
            }),
          });
          await res.arrayBuffer();
          expect(res.status).toBe(200);
        }),
        { numRuns: 150 },
      );
    });
    // Only a command followed by text goes on; the text after it is all the backend sees.
    for (const call of calls) {
      const messages = (call.body as { messages: Array<{ content: string }> }).messages;
      expect(messages.at(-1)?.content.startsWith('!/')).toBe(false);
    }
  });
});

/** A command-only message (or commands and text) in each front-end's request, whole or streamed. */
const FRONT_ENDS: Record<string, (text: string, stream: boolean) => { path: string; body: object }> = {
  openai: (text, stream) => ({
    path: '/v1/chat/completions',
    body: { model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: text }] },
  }),
  responses: (text, stream) => ({
    path: '/v1/responses',
    body: { model: 'gpt-4o-mini', stream, store: false, input: [{ role: 'user', content: text }] },
  }),
  anthropic: (text, stream) => ({
    path: '/anthropic/v1/messages',
    body: { model: 'claude-x', max_tokens: 64, stream, messages: [{ role: 'user', content: text }] },
  }),
  gemini: (text, stream) => ({
    path: `/v1beta/models/gemini-2.0-flash:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`,
    body: { contents: [{ role: 'user', parts: [{ text }] }] },
  }),
};

/** Malformed (and some valid) commands: known and unknown names, arguments bad, empty or unclosed. */
const commandText = fc.oneof(
  fc.string({ maxLength: 40 }).map((tail) => `!/${tail}`),
  fc
    .tuple(
      fc.array(
        fc
          .tuple(
            fc.constantFrom('help', 'set', 'unset', 'oneoff', 'route', 'session', '', 'sett', 'HELP', 'x'),
            fc.option(
              fc.oneof(
                fc.string({ maxLength: 30 }),
                fc.constantFrom(
                  'model=',
                  'temperature=9',
                  'temperature=0.5',
                  'reasoning=max',
                  'reasoning=low',
                  'model=a b',
                  'model=nobackend:x',
                  'model, temperature',
                  '(',
                  ')',
                ),
              ),
              { nil: undefined },
            ),
            fc.boolean(),
          )
          .map(
            ([name, args, closed]) => `!/${name}${args === undefined ? '' : `(${args}${closed ? ')' : ''}`}`,
          ),
        { minLength: 1, maxLength: 3 },
      ),
      fc.constantFrom('', ' and go on', '\n\ntell me more'),
    )
    .map(([commands, rest]) => commands.join(' ') + rest),
);

/** Alice's request to a front-end's path, in the session named: what every front-end reads for its key. */
const postAsAlice = (path: string, body: string, session: string) =>
  fetch(`${proxy.url}${path}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${ALICE}`,
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      'x-session-id': session,
    },
    body,
  });

describe('malformed commands through every front-end', () => {
  it('never yield a 5xx, whole or streamed, in the OpenAI, Responses, Anthropic and Gemini APIs', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...Object.keys(FRONT_ENDS)),
        fc.boolean(),
        commandText,
        async (front, stream, text) => {
          seen.add(`${front}:${String(stream)}`);
          const { path, body } = FRONT_ENDS[front]!(text, stream);
          const res = await postAsAlice(path, JSON.stringify(body), `fuzz-${front}`);
          const answer = await res.text();
          expect(res.status, `${front} stream=${String(stream)} ${JSON.stringify(text)}: ${answer}`).toBe(
            200,
          );
          if (stream) expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
          else expect(() => JSON.parse(answer) as unknown).not.toThrow();
        },
      ),
      { numRuns: 200 },
    );
    // Every front-end was tried, whole and streamed.
    expect(seen.size).toBe(8);
  });

  it('reads a command whose slash the JSON escapes (`!\\/help`) in every front-end, whole and streamed', async () => {
    const calls = await callsDuring(async () => {
      for (const front of Object.keys(FRONT_ENDS)) {
        for (const stream of [false, true]) {
          const { path, body } = FRONT_ENDS[front]!('!/help', stream);
          // Valid JSON for `!/help`, as PHP's json_encode and some Java encoders write it.
          const raw = JSON.stringify(body).replaceAll('/', '\\/');
          expect(raw).toContain('"!\\/help"');
          const res = await postAsAlice(path, raw, `escaped-${front}`);
          const answer = await res.text();
          expect(res.status, `${front} stream=${String(stream)}: ${answer}`).toBe(200);
          expect(res.headers.get('content-type')).toMatch(
            stream ? /^text\/event-stream/ : /^application\/json/,
          );
          expect(answer, `${front} stream=${String(stream)}`).toContain('!/set(model=backend:model)');
        }
      }
    });
    // Answered by the proxy each time: no backend saw the command.
    expect(calls).toEqual([]);
  });

  it('answers a chain without an element (`|`) with the valid forms, never a 503 (a fuzz find)', async () => {
    for (const text of ['!/oneoff(|) and go on', '!/set(model=|)', '!/oneoff(||)']) {
      const { path, body } = FRONT_ENDS.openai!(text, false);
      const res = await fetch(`${proxy.url}${path}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${ALICE}`,
          'content-type': 'application/json',
          'x-session-id': 'bars',
        },
        body: JSON.stringify(body),
      });
      const answer = (await res.json()) as { choices: Array<{ message: { content: string } }> };
      expect(res.status, text).toBe(200);
      expect(answer.choices[0]!.message.content, text).toMatch(/^!\/(oneoff|set): '\|+' names no model/);
    }
    // The same chain as a request's own model: the client's mistake, a 400 naming the field.
    const res = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ALICE}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: '|', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: {
        message: "Model '|' names no backend model in its chain",
        type: 'invalid_request_error',
        code: 'invalid_request',
        param: 'model',
      },
    });
  });
});

describe('session settings', () => {
  it('switches the model for one session only: not another session, not another key', async () => {
    expect(await say(openai(ALICE, 'switch-1'), '!/set(model=anthropic:claude-switched)')).toBe(
      'Set for this session: model=anthropic:claude-switched.',
    );
    const calls = await callsDuring(async () => {
      expect(await say(openai(ALICE, 'switch-1'), 'first')).toBe('echo: first');
      await say(openai(ALICE, 'switch-2'), 'second');
      await say(openai(BOB, 'switch-1'), 'third');
      await say(openai(ALICE, 'switch-1'), 'fourth', true);
    });
    expect(calls.map((c) => [c.url, (c.body as { model: string }).model])).toEqual([
      ['/v1/messages', 'claude-switched'],
      ['/v1/chat/completions', 'gpt-4o-mini'],
      ['/v1/chat/completions', 'gpt-4o-mini'],
      ['/v1/messages', 'claude-switched'],
    ]);
    expect(await say(openai(ALICE, 'switch-1'), '!/session')).toBe(
      "This session's settings:\n  model: anthropic:claude-switched",
    );
    await say(openai(ALICE, 'switch-1'), '!/unset(model)');
    const after = await callsDuring(() => say(openai(ALICE, 'switch-1'), 'fifth'));
    expect(after.map((c) => c.url)).toEqual(['/v1/chat/completions']);
  });

  it('!/oneoff changes exactly one request', async () => {
    await say(openai(ALICE, 'oneoff-1'), '!/oneoff(gemini:gemini-oneoff)');
    const calls = await callsDuring(async () => {
      await say(openai(ALICE, 'oneoff-1'), 'a');
      await say(openai(ALICE, 'oneoff-1'), 'b');
    });
    expect(calls.map((c) => c.url)).toEqual([
      '/v1beta/models/gemini-oneoff:generateContent',
      '/v1/chat/completions',
    ]);
  });

  it('refuses a model of a backend that is not configured, changing nothing', async () => {
    const reply = await say(openai(ALICE, 'nobackend'), '!/set(model=openrouter:some-model)');
    expect(reply).toContain("!/set: Backend 'openrouter' is not configured");
    expect(await say(openai(ALICE, 'nobackend'), '!/session')).toBe(
      "This session has no settings: the client's own choices apply.",
    );
  });

  it('applies temperature and sends the text after the commands, and strips commands from history', async () => {
    const client = openai(ALICE, 'temp-1');
    const calls = await callsDuring(async () => {
      expect(await say(client, '!/set(temperature=0.5)   hello there')).toBe('echo: hello there');
      await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [
          { role: 'user', content: '!/set(temperature=0.5)   hello there' },
          { role: 'assistant', content: 'echo: hello there' },
          { role: 'user', content: '!/set(temperature=0.3)' },
          { role: 'assistant', content: 'Set for this session: temperature=0.3.' },
          { role: 'user', content: [{ type: 'text', text: 'and now?' }] },
        ],
      });
    });
    expect(calls.map((c) => c.body)).toEqual([
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }], temperature: 0.5 },
      {
        model: 'gpt-4o-mini',
        messages: [
          { role: 'user', content: 'hello there' },
          { role: 'assistant', content: 'echo: hello there' },
          { role: 'user', content: [{ type: 'text', text: 'and now?' }] },
        ],
        temperature: 0.5,
      },
    ]);
  });

  it('sends the parts after a command-only part on to the model, and keeps the parts before it', async () => {
    const calls = await callsDuring(async () => {
      const res = await openai(ALICE, 'parts-1').chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: '!/set(temperature=1.1)' },
              { type: 'text', text: 'what now' },
            ],
          },
        ],
      });
      expect(res.choices[0]?.message.content).toBe('echo: what now');
      // Claude Code's reminders come before the user's words: kept, and a command alone is still answered.
      const anthropic = new Anthropic({
        baseURL: `${proxy.url}/anthropic`,
        apiKey: ALICE,
        maxRetries: 0,
        defaultHeaders: { 'x-session-id': 'parts-2' },
      });
      const reminder = { type: 'text' as const, text: '<system-reminder>be brief</system-reminder>' };
      const ask = (content: Anthropic.ContentBlockParam[]) =>
        anthropic.messages.create({
          model: 'anthropic:claude-x',
          max_tokens: 100,
          messages: [{ role: 'user', content }],
        });
      const alone = await ask([
        reminder,
        { type: 'text', text: '!/set(temperature=0.2)' },
        { type: 'text', text: ' ' },
      ]);
      expect(alone.content).toEqual([{ type: 'text', text: 'Set for this session: temperature=0.2.' }]);
      await ask([reminder, { type: 'text', text: '!/session' }, { type: 'text', text: 'and then?' }]);
    });
    expect(calls.map((c) => c.body)).toEqual([
      {
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: [{ type: 'text', text: 'what now' }] }],
        temperature: 1.1,
      },
      {
        model: 'claude-x',
        max_tokens: 100,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: '<system-reminder>be brief</system-reminder>' },
              { type: 'text', text: 'and then?' },
            ],
          },
        ],
        temperature: 0.2,
      },
    ]);
  });

  it('maps !/set(reasoning=…) onto each protocol’s own field', async () => {
    const anthropic = new Anthropic({
      baseURL: `${proxy.url}/anthropic`,
      apiKey: ALICE,
      maxRetries: 0,
      defaultHeaders: { 'x-session-id': 'reason-a' },
    });
    const ask = (content: string) =>
      anthropic.messages.create({
        model: 'anthropic:claude-r',
        max_tokens: 100,
        messages: [{ role: 'user', content }],
      });
    await ask('!/set(reasoning=medium)');
    const gemini = new GoogleGenAI({
      apiKey: ALICE,
      httpOptions: { baseUrl: proxy.url, headers: { 'x-session-id': 'reason-g' } },
    });
    const gask = (contents: string) => gemini.models.generateContent({ model: 'gemini:gemini-r', contents });
    await gask('!/set(reasoning=off)');
    const calls = await callsDuring(async () => {
      await ask('think');
      await gask('quick');
    });
    expect(calls[0]?.body).toEqual({
      model: 'claude-r',
      max_tokens: 13312,
      messages: [{ role: 'user', content: 'think' }],
      thinking: { type: 'enabled', budget_tokens: 12288 },
    });
    expect((calls[1]?.body as { generationConfig: unknown }).generationConfig).toEqual({
      thinkingConfig: { thinkingBudget: 0 },
    });
  });

  describe('!/set(reasoning=…) reaches every backend from every client, by the one reasoning table', () => {
    /**
     * One request per client protocol, each with a temperature, an output limit and a reasoning control of
     * its own that the session's setting replaces; the backend is the model's prefix.
     */
    const requests: Record<string, (model: string) => { path: string; body: Record<string, unknown> }> = {
      openai: (model) => ({
        path: '/v1/chat/completions',
        body: {
          model,
          temperature: 0.5,
          max_tokens: 1000,
          reasoning_effort: 'minimal',
          messages: [{ role: 'user', content: 'think' }],
        },
      }),
      responses: (model) => ({
        path: '/v1/responses',
        body: {
          model,
          temperature: 0.5,
          max_output_tokens: 1000,
          reasoning: { effort: 'minimal' },
          store: false,
          input: 'think',
        },
      }),
      anthropic: (model) => ({
        path: '/anthropic/v1/messages',
        body: { model, temperature: 0.5, max_tokens: 1000, messages: [{ role: 'user', content: 'think' }] },
      }),
      gemini: (model) => ({
        path: `/v1beta/models/${model}:generateContent`,
        body: {
          contents: [{ role: 'user', parts: [{ text: 'think' }] }],
          generationConfig: {
            temperature: 0.5,
            maxOutputTokens: 1000,
            thinkingConfig: { thinkingBudget: 512 },
          },
        },
      }),
    };
    /** What each backend protocol received that reasoning touches. */
    const reasoningOf = (call: RecordedRequest): Record<string, unknown> => {
      const b = call.body as Record<string, unknown>;
      if (call.url.startsWith('/v1beta/')) return b.generationConfig as Record<string, unknown>;
      if (call.url.endsWith('/messages'))
        return { max_tokens: b.max_tokens, temperature: b.temperature, thinking: b.thinking };
      if (call.url.endsWith('/responses'))
        return { max_output_tokens: b.max_output_tokens, temperature: b.temperature, reasoning: b.reasoning };
      return {
        max_tokens: b.max_completion_tokens ?? b.max_tokens,
        temperature: b.temperature,
        reasoning_effort: b.reasoning_effort,
      };
    };
    const received = async (session: string, from: string, model: string) => {
      const { path, body } = requests[from]!(model);
      const calls = await callsDuring(async () => {
        const res = await fetch(`${proxy.url}${path}`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${ALICE}`,
            'content-type': 'application/json',
            'x-session-id': session,
          },
          body: JSON.stringify(body),
        });
        expect(res.status, `${from} → ${model}: ${await res.text()}`).toBe(200);
      });
      const chat = calls.filter((c) => c.method === 'POST');
      expect(chat).toHaveLength(1);
      return reasoningOf(chat[0]!);
    };
    const set = async (session: string, level: string) => {
      const calls = await callsDuring(() => say(openai(ALICE, session), `!/set(reasoning=${level})`));
      expect(calls).toEqual([]);
    };
    const BACKENDS = ['anthropic:claude-r', 'gemini:gemini-r', 'openai:gpt-r'] as const;

    /**
     * What `backend` gets at `level` from a client of `from`: the table's budget (README, "Reasoning
     * controls"), or its word, whatever the client spoke. Anthropic takes thinking only above the budget
     * and without a temperature other than 1; the OpenAI backend speaks Responses to a Responses client.
     */
    const expected = (level: 'low' | 'high' | 'off', backend: (typeof BACKENDS)[number], from: string) => {
      const budget = { low: 4096, high: 24576, off: 0 }[level];
      const on = level !== 'off';
      if (backend === 'anthropic:claude-r') {
        return on
          ? {
              max_tokens: budget + 1024,
              temperature: undefined,
              thinking: { type: 'enabled', budget_tokens: budget },
            }
          : { max_tokens: 1000, temperature: 0.5, thinking: undefined };
      }
      if (backend === 'gemini:gemini-r')
        return { temperature: 0.5, maxOutputTokens: 1000, thinkingConfig: { thinkingBudget: budget } };
      return from === 'responses'
        ? { max_output_tokens: 1000, temperature: 0.5, reasoning: on ? { effort: level } : undefined }
        : { max_tokens: 1000, temperature: 0.5, reasoning_effort: on ? level : undefined };
    };

    it.each(['high', 'low', 'off'] as const)('reasoning=%s', async (level) => {
      const session = `reason-all-${level}`;
      await set(session, level);
      for (const from of Object.keys(requests)) {
        for (const backend of BACKENDS) {
          // A Gemini path names its model in the URL, its `:` escaped.
          const got = await received(
            session,
            from,
            from === 'gemini' ? backend.replace(':', '%3A') : backend,
          );
          expect.soft(got, `${from} client → ${backend}`).toEqual(expected(level, backend, from));
        }
      }
    });
  });

  it('sends the same-protocol request as its bytes when a session has nothing to change', async () => {
    const raw = '{"model":"gpt-4o-mini",  "messages":[{"role":"user","content":"bytes as sent"}]}';
    const calls = await callsDuring(async () => {
      const res = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${ALICE}`,
          'content-type': 'application/json',
          'x-session-id': 'quiet',
        },
        body: raw,
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    });
    expect(calls[0]?.headers['content-length']).toBe(String(Buffer.byteLength(raw)));
  });
});

describe("Claude Code 2.1's recorded requests", () => {
  interface Recorded {
    headers: Record<string, string>;
    body: { messages: Array<{ role: string; content: Array<{ type: string; text?: string }> }> };
  }
  const recorded = (n: number) =>
    JSON.parse(
      readFileSync(
        new URL(`./fixtures/clients/claude-2.1.332/0${n}-post-v1-messages.json`, import.meta.url),
        'utf8',
      ),
    ) as Recorded;

  /** Recorded request `n` (its first user message's own text replaced by `text`), as Claude Code sends it. */
  async function claudeCode(n: number, text?: string): Promise<{ status: number; body: string }> {
    const { headers, body } = recorded(n);
    if (text !== undefined) {
      const part = body.messages[0]!.content.find((p) => p.text === 'Run echo hi')!;
      part.text = text;
    }
    const sent: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers))
      if (name !== 'x-api-key' && name !== 'accept-encoding') sent[name] = value;
    const res = await fetch(`${proxy.url}/anthropic/v1/messages`, {
      method: 'POST',
      headers: { ...sent, 'x-api-key': ALICE },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.text() };
  }

  it('answers !/help typed before its environment message, and applies !/set to its next request', async () => {
    // The user's words are the second text of the first message; a `system` message follows it.
    expect(recorded(1).body.messages.map((m) => m.role)).toEqual(['user', 'system']);
    const local = await callsDuring(async () => {
      const help = await claudeCode(1, '!/help');
      expect(help.status).toBe(200);
      expect(help.body).toContain('!/set(model=backend:model)');
      const set = await claudeCode(1, '!/set(model=anthropic:claude-recorded)');
      expect(set.body).toContain('Set for this session: model=anthropic:claude-recorded.');
    });
    expect(local).toEqual([]);
    // Its next request (the tool result going back), same session header: the session's model.
    const calls = await callsDuring(async () => expect((await claudeCode(2)).status).toBe(200));
    expect(calls.map((c) => [c.url, (c.body as { model: string }).model])).toEqual([
      ['/v1/messages', 'claude-recorded'],
    ]);
  });
});

describe('--disable-commands', () => {
  it('passes a message that starts with the prefix to the model as it is', async () => {
    const calls = await callsDuring(async () => {
      expect(await say(openai(ALICE, undefined, plain.url), '!/help')).toBe('echo: !/help');
    });
    expect(calls).toHaveLength(1);
  });
});

describe('loop guard', () => {
  const tools = [
    {
      type: 'function' as const,
      function: {
        name: 'Bash',
        parameters: { type: 'object', properties: { command: { type: 'string' } } },
      },
    },
  ];

  it('steers an agent repeating one tool call on the 7th repeat, counts anew after the user speaks, and refuses the run going on past the warning', async () => {
    const client = openai(ALICE, 'loop-1');
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'make the tests pass' }];
    /** One agent turn: the model's answer appended, a tool call run (always failing the same way). */
    const turn = async () => {
      const res = await client.chat.completions.create({ model: 'tool-loop', tools, messages });
      const message = res.choices[0]!.message;
      messages.push(message);
      const call = message.tool_calls?.[0];
      if (call === undefined) return false;
      messages.push({ role: 'tool', tool_call_id: call.id, content: '1 test failed' });
      return true;
    };
    /** The agent's turns until the model (or the proxy) answers without a tool call; that answer. */
    const untilAnswer = async () => {
      while (await turn()) {
        if (messages.length > 80) throw new Error('the loop was never stopped');
      }
      return messages.at(-1)!.content as string;
    };
    let answer = '';
    const calls = await callsDuring(async () => {
      answer = await untilAnswer();
    });
    expect(calls).toHaveLength(7);
    expect(answer).toContain('[proxy: tool-call loop] This conversation has made the same tool call 7 times');

    // The user asks it to go on: a new run, forwarded until it too repeats 7 times — steered, not refused.
    messages.push({ role: 'user', content: 'go on' });
    const more = await callsDuring(async () => {
      answer = await untilAnswer();
    });
    expect(more).toHaveLength(7);
    expect(answer).toContain('[proxy: tool-call loop] This conversation has made the same tool call 7 times');

    // An agent that calls on past the warning, without the user: the same run, refused.
    const last = messages.at(-3) as OpenAI.ChatCompletionAssistantMessageParam;
    messages.push(last, { role: 'tool', tool_call_id: last.tool_calls![0]!.id, content: '1 test failed' });
    const refused = await callsDuring(async () => {
      await expect(turn()).rejects.toMatchObject({ status: 400, code: 'tool_loop' });
    });
    expect(refused).toEqual([]);
  });

  it('forwards the next question once the model answered and the user moved on from a loop', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'do it' }];
    for (let i = 0; i < 7; i++) {
      messages.push(
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: `call_${i}`,
              type: 'function',
              function: { name: 'Bash', arguments: '{"command":"ls -la"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: `call_${i}`, content: `total ${i}` },
      );
    }
    messages.push(
      { role: 'assistant', content: 'All done: the directory is empty.' },
      { role: 'user', content: 'thanks. now explain what a monad is' },
    );
    const client = openai(ALICE, 'loop-2');
    let reply = '';
    const calls = await callsDuring(async () => {
      const res = await client.chat.completions.create({ model: 'gpt-4o-mini', tools, messages });
      reply = res.choices[0]!.message.content ?? '';
    });
    expect(calls).toHaveLength(1);
    expect(reply).not.toContain('[proxy: tool-call loop]');
  });
});
