/**
 * The real coding agents, installed at their pinned versions (scripts/agents/), driven through the built proxy
 * with authentication on (the proxy key is the agent's API key) to the fake provider, which answers the
 * first turn with a shell call of `echo hi` and the second with `Tool said: <result>`. Each agent runs
 * offline in a throw-away home with its telemetry and update checks off (scripts/agents/index.mjs).
 *
 * PAIRS is the set of (agent, backend) pairs that work today: the same protocol on both sides, and Claude
 * Code and Gemini CLI translated to other backends (test/conformance/ shows every recorded request on
 * every backend); Codex through the Responses front-end, passed through to the openai backend (which
 * speaks it), translated to a chat-completions one (openrouter) and to an Anthropic one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { REGISTRY_SINK, runAgent, type AgentName } from '../../scripts/agents/index.mjs';
import { startFakeProvider, type FakeProvider, type RecordedRequest } from '../fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';

type Backend = 'openai' | 'anthropic' | 'gemini' | 'openrouter';

const PAIRS: Array<{ agent: AgentName; backend: Backend }> = [
  { agent: 'claude', backend: 'anthropic' },
  { agent: 'claude', backend: 'openai' },
  { agent: 'claude', backend: 'gemini' },
  { agent: 'gemini', backend: 'gemini' },
  { agent: 'gemini', backend: 'openai' },
  { agent: 'opencode', backend: 'openai' },
  { agent: 'codex', backend: 'openai' },
  { agent: 'codex', backend: 'openrouter' },
  { agent: 'codex', backend: 'anthropic' },
];

const KEY = 'agents-proxy-key-0123456789abcdef';
const PROVIDER_KEYS = {
  openai: 'sk-agents-openai-provider-key',
  anthropic: 'sk-ant-agents-provider-key',
  gemini: 'AIzaAgentsProviderKey0123456789',
};

/** Where an agent's protocol lives on the proxy, as the root its base URL is built on. */
const PROXY_PREFIX: Record<string, string> = { claude: '/anthropic', gemini: '', opencode: '', codex: '' };

/** Per backend protocol: where its chat calls arrive, and the text of the tool result a call ends with. */
const BACKENDS: Record<
  Exclude<Backend, 'openrouter'> | 'responses',
  { path: RegExp; toolResult: (body: unknown) => string | null }
> = {
  // The openai backend speaks the Responses API too: Codex's requests pass through to it.
  responses: {
    path: /^\/v1\/responses$/,
    toolResult: (body) => {
      const last = (body as { input: Array<Record<string, unknown>> }).input.at(-1);
      return last?.type === 'function_call_output' ? textOf(last.output) : null;
    },
  },
  anthropic: {
    path: /^\/v1\/messages(\?|$)/,
    toolResult: (body) => {
      const last = (body as { messages: Array<{ content: unknown }> }).messages.at(-1);
      const blocks = Array.isArray(last?.content) ? (last.content as Array<Record<string, unknown>>) : [];
      const result = blocks.find((b) => b.type === 'tool_result');
      return result ? textOf(result.content) : null;
    },
  },
  gemini: {
    path: /^\/v1beta\/models\/[^/]+:(streamGenerateContent|generateContent)/,
    toolResult: (body) => {
      const last = (body as { contents: Array<{ parts?: Array<Record<string, unknown>> }> }).contents.at(-1);
      const part = last?.parts?.find((p) => p.functionResponse);
      return part ? JSON.stringify((part.functionResponse as { response: unknown }).response) : null;
    },
  },
  openai: {
    path: /^\/v1\/chat\/completions$/,
    toolResult: (body) => {
      const last = (body as { messages: Array<{ role: string; content: unknown }> }).messages.at(-1);
      return last?.role === 'tool' ? textOf(last.content) : null;
    },
  },
};

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content))
    return content.map((c) => textOf((c as { text?: unknown }).text ?? '')).join('');
  return '';
}

/** `echo hi`'s output, as a word: what the second turn must carry back. */
const ECHOED = /(^|[^a-z])hi([^a-z]|$)/;

let provider: FakeProvider | undefined;
let proxy: ProxyProcess | undefined;

afterEach(async () => {
  await proxy?.stop();
  await provider?.close();
  proxy = undefined;
  provider = undefined;
});

describe.each(PAIRS)('$agent through the proxy to the $backend backend', ({ agent, backend }) => {
  // Each agent takes 2 s to 15 s on a quiet machine; the margins are for a loaded one.
  it('completes a shell tool round trip', { timeout: 90_000 }, async () => {
    provider = await startFakeProvider({ keys: PROVIDER_KEYS });
    proxy = await startProxyProcess(['--default-backend', backend], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      OPENAI_API_KEY: PROVIDER_KEYS.openai,
      OPENAI_API_BASE_URL: provider.baseUrls.openai,
      ANTHROPIC_API_KEY: PROVIDER_KEYS.anthropic,
      ANTHROPIC_API_BASE_URL: provider.baseUrls.anthropic,
      GEMINI_API_KEY: PROVIDER_KEYS.gemini,
      GEMINI_API_BASE_URL: provider.baseUrls.gemini,
      // A chat-completions backend (no Responses API): Codex's requests are translated to it.
      OPENROUTER_API_KEY: PROVIDER_KEYS.openai,
      OPENROUTER_API_BASE_URL: provider.baseUrls.openai,
    });

    const result = await runAgent(agent, {
      root: `${proxy.url}${PROXY_PREFIX[agent]}`,
      apiKey: KEY,
      // Package look-ups (opencode's plugin) go to the provider's 404, not through the proxy's auth.
      sinkRoot: provider.url,
      deadlineMs: 60_000,
    });
    const report = `exit ${result.code}, timed out ${result.timedOut}\n${result.stdout}\n${result.stderr.slice(-3000)}`;
    expect(result.timedOut, report).toBe(false);
    expect(result.code, report).toBe(0);
    // The provider's answer to the second turn, shown by the agent.
    expect(result.stdout, report).toContain('Tool said: ');

    const side =
      agent === 'codex' && backend === 'openai' ? 'responses' : backend === 'openrouter' ? 'openai' : backend;
    const chats: RecordedRequest[] = provider.requests.filter((r) => BACKENDS[side].path.test(r.url));
    // Everything that reached the provider went through the proxy to this backend's chat route.
    expect(provider.requests.filter((r) => !r.url.startsWith(REGISTRY_SINK))).toEqual(chats);
    const results = chats.map((r) => BACKENDS[side].toolResult(r.body));
    // The last call is the second turn: it carries the result of `echo hi`, and an earlier call had none.
    expect(results.at(-1), report).toMatch(ECHOED);
    expect(results.slice(0, -1)).toContain(null);
  });
});
