import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';

/**
 * A Responses client's history translated for a backend of another protocol (README, "Responses API"), with
 * the official `openai` SDK: what an OpenAI Responses backend made earlier in the session, after the user
 * switched models, must reach the next backend whole.
 */
const KEY = 'responses-history-key-0123456789';
let provider: FakeProvider;
let proxy: ProxyProcess;
let dir: string;

beforeAll(async () => {
  provider = await startFakeProvider();
  dir = mkdtempSync(path.join(tmpdir(), 'responses-history-'));
  const config = path.join(dir, 'config.yaml');
  // A chat-completions server: Responses requests to it are translated.
  writeFileSync(
    config,
    `backends:\n  chat:\n    type: openai\n    base_url: ${provider.baseUrls.openai}\n    api_key_env: OPENAI_API_KEY\n`,
  );
  proxy = await startProxyProcess(['--config', config], {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    OPENAI_API_KEY: 'sk-openai-history-test',
    OPENAI_API_BASE_URL: provider.baseUrls.openai,
    ANTHROPIC_API_KEY: 'sk-ant-history-test',
    ANTHROPIC_API_BASE_URL: provider.baseUrls.anthropic,
    GEMINI_API_KEY: 'AIzaHistoryTest0123456789',
    GEMINI_API_BASE_URL: provider.baseUrls.gemini,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await provider?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const client = () => new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 });

type Translated = 'chat' | 'anthropic' | 'gemini';
const MODEL: Record<Translated, string> = {
  chat: 'chat:gpt-4o-mini',
  anthropic: 'anthropic:claude-mock-1',
  gemini: 'gemini:gemini-mock-flash',
};
const ACTION = { type: 'exec' as const, command: ['bash', '-lc', 'ls'], env: {} };
const ARGUMENTS = { type: 'exec', command: ['bash', '-lc', 'ls'], env: {} };

/** The call and its result as the backend received them, in its own protocol. */
const RECEIVED_TURNS: Record<Translated, unknown[]> = {
  chat: [
    { role: 'user', content: 'List the files.' },
    {
      role: 'assistant',
      content: null,
      tool_calls: [
        {
          id: 'call_ls',
          type: 'function',
          function: { name: 'local_shell', arguments: JSON.stringify(ARGUMENTS) },
        },
      ],
    },
    { role: 'tool', tool_call_id: 'call_ls', content: 'README.md' },
  ],
  anthropic: [
    { role: 'user', content: [{ type: 'text', text: 'List the files.' }] },
    {
      role: 'assistant',
      content: [{ type: 'tool_use', id: 'call_ls', name: 'local_shell', input: ARGUMENTS }],
    },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_ls', content: 'README.md' }] },
  ],
  gemini: [
    { role: 'user', parts: [{ text: 'List the files.' }] },
    { role: 'model', parts: [{ functionCall: { name: 'local_shell', args: ARGUMENTS } }] },
    {
      role: 'user',
      parts: [{ functionResponse: { name: 'local_shell', response: { output: 'README.md' } } }],
    },
  ],
};

/** The tool result as the fake provider reads it (Gemini's is an object). */
const RESULT_TEXT: Record<Translated, string> = {
  chat: 'README.md',
  anthropic: 'README.md',
  gemini: '{"output":"README.md"}',
};

/** The turns of the request the backend last received. */
function receivedTurns(backend: Translated): unknown {
  const body = provider.requests.at(-1)!.body as Record<string, unknown>;
  return backend === 'gemini' ? body.contents : body.messages;
}

describe('Responses history translated', () => {
  for (const backend of ['chat', 'anthropic', 'gemini'] as const) {
    it(`${backend}: a local_shell call and its output made by a Responses backend`, async () => {
      const { data, response } = await client()
        .responses.create({
          model: MODEL[backend],
          store: false,
          tools: [{ type: 'local_shell' }],
          input: [
            { role: 'user', content: 'List the files.' },
            {
              type: 'local_shell_call',
              id: 'lsh_1',
              call_id: 'call_ls',
              status: 'completed',
              action: ACTION,
            },
            { type: 'local_shell_call_output', id: 'lsh_1', output: 'README.md' },
          ],
        })
        .withResponse();
      // The backend cannot run the hosted tool: dropped with notice, the request goes on.
      expect(response.headers.get('x-proxy-dropped')).toBe('tools[].local_shell');
      // The fake provider answers a tool result with what it read in it.
      expect(data.output_text).toBe(`Tool said: ${RESULT_TEXT[backend]}`);
      expect(receivedTurns(backend)).toMatchObject(RECEIVED_TURNS[backend]);
    });
  }
});

describe('Responses history: messages in a row', () => {
  /** Two user messages in a row as each backend received them: apart, never glued into one text. */
  const RECEIVED: Record<Translated, unknown[]> = {
    // A blank line between them: one string, the content shape every OpenAI-compatible server takes.
    chat: [{ role: 'user', content: 'hello\n\nnext' }],
    anthropic: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'hello' },
          { type: 'text', text: 'next' },
        ],
      },
    ],
    gemini: [{ role: 'user', parts: [{ text: 'hello' }, { text: 'next' }] }],
  };

  for (const backend of ['chat', 'anthropic', 'gemini'] as const) {
    it(`${backend}: two user messages keep their texts apart`, async () => {
      await client().responses.create({
        model: MODEL[backend],
        store: false,
        input: [
          { role: 'user', content: 'hello' },
          { role: 'user', content: 'next' },
        ],
      });
      expect(receivedTurns(backend)).toEqual(RECEIVED[backend]);
    });
  }

  it('chat: one user message is still a plain string', async () => {
    await client().responses.create({ model: MODEL.chat, store: false, input: 'hello' });
    expect(receivedTurns('chat')).toEqual([{ role: 'user', content: 'hello' }]);
  });
});
