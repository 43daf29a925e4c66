import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import {
  askAgent,
  askResponsesAgent,
  CODEX_TOOLS,
  SHELL_TOOL,
  type AgentSide,
} from './helpers/shell-agents.js';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';

/**
 * The dangerous-command guard with parallel tool calls: the fake provider's `shell-calls` model answers one
 * call of the offered shell tool per line of the user's text. The condemned first call is replaced, and the
 * kept second one must reach the agent as a well-formed call — for an OpenAI stream, renumbered from index
 * 0, or the SDK's assembly of the answer fails.
 */
const KEY = 'guardrails-parallel-key-0123456789';
let provider: FakeProvider;
let proxy: ProxyProcess;

beforeAll(async () => {
  provider = await startFakeProvider();
  proxy = await startProxyProcess(['--default-backend', 'openai'], {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    OPENAI_API_KEY: 'sk-openai-guard-test',
    OPENAI_API_BASE_URL: provider.baseUrls.openai,
    ANTHROPIC_API_KEY: 'sk-ant-guard-test',
    ANTHROPIC_API_BASE_URL: provider.baseUrls.anthropic,
    GEMINI_API_KEY: 'AIzaGuardTest0123456789',
    GEMINI_API_BASE_URL: provider.baseUrls.gemini,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await provider?.close();
});

const SIDES: AgentSide[] = ['openai', 'anthropic', 'gemini'];
const MODEL: Record<AgentSide, string> = {
  openai: 'openai:gpt-shell-calls',
  anthropic: 'anthropic:claude-shell-calls',
  gemini: 'gemini:gemini-shell-calls',
};
const TOOL_TURN: Record<AgentSide, string> = { openai: 'tool_calls', anthropic: 'tool_use', gemini: 'STOP' };
const STEER =
  '[proxy: dangerous command] I was about to run `git push --force`, but the proxy stopped it ' +
  '(git-push-force): a force push rewrites the remote branch and can destroy other people’s work. ' +
  'I will not run it. If it is really needed, the user can run it themselves.';

describe('dangerous-command guard, parallel tool calls', () => {
  for (const client of SIDES) {
    for (const backend of SIDES) {
      for (const stream of [false, true]) {
        it(`${client} client → ${backend} backend${stream ? ', streamed' : ''}: the kept call stays whole`, async () => {
          const answer = await askAgent(client, {
            url: proxy.url,
            key: KEY,
            model: MODEL[backend],
            command: 'git push --force\nnpm test',
            stream,
          });
          expect(answer).toEqual({
            text: STEER,
            calls: [{ name: SHELL_TOOL[client], command: 'npm test' }],
            finish: TOOL_TURN[client],
          });
        });
      }
    }
  }

  for (const stream of [false, true]) {
    it(`Responses client passed through${stream ? ', streamed' : ''}: the kept call stays whole`, async () => {
      const answer = await askResponsesAgent({
        url: proxy.url,
        key: KEY,
        model: 'openai:gpt-shell-calls',
        input: 'git push --force\nnpm test',
        tools: CODEX_TOOLS,
        stream,
      });
      expect(answer).toEqual({ text: STEER, calls: [{ name: 'exec_command', command: 'npm test' }] });
    });
  }

  it('a kept call before the condemned one keeps its place (OpenAI stream, same protocol)', async () => {
    const answer = await askAgent('openai', {
      url: proxy.url,
      key: KEY,
      model: MODEL.openai,
      command: 'npm test\ngit push --force\nls',
      stream: true,
    });
    expect(answer).toEqual({
      text: STEER,
      calls: [
        { name: 'shell', command: 'npm test' },
        { name: 'shell', command: 'ls' },
      ],
      finish: 'tool_calls',
    });
  });
});
