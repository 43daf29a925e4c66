import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import {
  askAgent,
  askResponsesAgent,
  CODEX_TOOLS,
  SHELL_TOOL,
  type AgentAnswer,
  type AgentSide,
  type ResponsesAnswer,
} from './helpers/shell-agents.js';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';

/**
 * The dangerous-command guard (README, "Agent guardrails") through the real proxy: the fake provider's
 * `shell-call` model answers with a call of the offered shell tool whose command is the user's text; the
 * guard replaces a dangerous one by a steering text — same protocol and translated, streamed and not, in
 * every front-end — and lets a safe one through.
 */
const KEY = 'guardrails-proxy-key-0123456789';
let provider: FakeProvider;
let proxy: ProxyProcess;
let blocking: ProxyProcess;

beforeAll(async () => {
  provider = await startFakeProvider();
  const env = {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    OPENAI_API_KEY: 'sk-openai-guard-test',
    OPENAI_API_BASE_URL: provider.baseUrls.openai,
    ANTHROPIC_API_KEY: 'sk-ant-guard-test',
    ANTHROPIC_API_BASE_URL: provider.baseUrls.anthropic,
    GEMINI_API_KEY: 'AIzaGuardTest0123456789',
    GEMINI_API_BASE_URL: provider.baseUrls.gemini,
  };
  [proxy, blocking] = await Promise.all([
    startProxyProcess(['--default-backend', 'openai'], env),
    startProxyProcess(['--default-backend', 'openai', '--guardrails-action', 'block'], env),
  ]);
});

afterAll(async () => {
  await Promise.all([proxy?.stop(), blocking?.stop()]);
  await provider?.close();
});

type Side = AgentSide;
const SIDES: Side[] = ['openai', 'anthropic', 'gemini'];
const BACKEND_MODEL: Record<Side, string> = {
  openai: 'openai:gpt-shell-call',
  anthropic: 'anthropic:claude-shell-call',
  gemini: 'gemini:gemini-shell-call',
};
const TOOL = SHELL_TOOL;
const SCHEMA = { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] };

const ask = (
  client: Side,
  backend: Side,
  command: string,
  stream: boolean,
  url = proxy.url,
  model = BACKEND_MODEL[backend],
): Promise<AgentAnswer> => askAgent(client, { url, key: KEY, model, command, stream });

const TURN_END: Record<Side, string> = { openai: 'stop', anthropic: 'end_turn', gemini: 'STOP' };
const TOOL_TURN: Record<Side, string> = { openai: 'tool_calls', anthropic: 'tool_use', gemini: 'STOP' };

describe('dangerous-command guard', () => {
  for (const client of SIDES) {
    for (const backend of SIDES) {
      for (const stream of [false, true]) {
        it(`${client} client → ${backend} backend${stream ? ', streamed' : ''}: steers a force push, passes a push`, async () => {
          const steered = await ask(client, backend, 'git push --force origin main', stream);
          expect(steered.calls).toEqual([]);
          expect(steered.text).toContain(
            '[proxy: dangerous command] I was about to run `git push --force origin main`',
          );
          expect(steered.text).toContain('(git-push-force)');
          expect(steered.finish).toBe(TURN_END[client]);

          const passed = await ask(client, backend, 'git push origin main', stream);
          expect(passed.calls).toEqual([{ name: TOOL[client], command: 'git push origin main' }]);
          expect(passed.text).toBe('');
          expect(passed.finish).toBe(TOOL_TURN[client]);
        });
      }
    }
  }

  it('judges answers tried by failover too (a chain), same protocol and translated, streamed and not', async () => {
    for (const client of SIDES) {
      for (const stream of [false, true]) {
        const chain = `${BACKEND_MODEL.openai}|${BACKEND_MODEL.anthropic}`;
        const steered = await ask(client, 'openai', 'git push --force origin main', stream, proxy.url, chain);
        expect(steered.calls, `${client} ${stream}`).toEqual([]);
        expect(steered.text, `${client} ${stream}`).toContain('(git-push-force)');
        const passed = await ask(client, 'openai', 'git push origin main', stream, proxy.url, chain);
        expect(passed.calls, `${client} ${stream}`).toEqual([
          { name: TOOL[client], command: 'git push origin main' },
        ]);
      }
    }
  });

  it.each([
    'sudo  git  push -f',
    'bash -c "git push --force"',
    // How Codex runs every command (its argv ["bash", "-lc", …], joined).
    "bash -lc 'git push --force'",
    'env X=1 git push --force',
    'eval git push --force',
  ])('sees through %j', async (command) => {
    for (const client of SIDES) {
      const answer = await ask(client, client, command, true);
      expect(answer.calls).toEqual([]);
      expect(answer.text).toContain('(git-push-force)');
    }
  });

  it('refuses the answer with action block', async () => {
    await expect(ask('anthropic', 'anthropic', 'rm -rf /', false, blocking.url)).rejects.toMatchObject({
      status: 400,
    });
    await expect(ask('openai', 'anthropic', 'rm -rf ~', true, blocking.url)).rejects.toThrow(
      /Refused by the proxy's guard: `rm -rf ~` \(rm-rf-root\)/,
    );
    // Log lines are written in batches: wait for it.
    await expect
      .poll(() => blocking.stdout())
      .toContain('"action":"refuse","msg":"Dangerous command in a tool call stopped by the guard"');
    const fine = await ask('openai', 'openai', 'ls', false, blocking.url);
    expect(fine.calls).toEqual([{ name: 'shell', command: 'ls' }]);
  });

  it('steers rm -rf of the project root the agent states, by its absolute path, in every client', async () => {
    const prompts: Record<Side, string> = {
      // As Claude Code, Codex and the Gemini CLI state it (test/fixtures/clients).
      anthropic: 'Here is the environment:\n - Primary working directory: /home/dev/proj\n - Platform: linux',
      openai: '<environment_context>\n  <cwd>/home/dev/proj</cwd>\n</environment_context>',
      gemini: '- **Workspace Directories:**\n  - /home/dev/proj\n',
    };
    for (const client of SIDES) {
      const steered = await askAgent(client, {
        url: proxy.url,
        key: KEY,
        model: BACKEND_MODEL.openai,
        command: 'cd /home/dev/proj && rm -rf /home/dev/proj',
        stream: false,
        system: prompts[client],
      });
      expect(steered.calls, client).toEqual([]);
      expect(steered.text, client).toContain('but the proxy stopped it (rm-rf-root)');
      // Elsewhere, or without the prompt: the path is just a path.
      const passed = await askAgent(client, {
        url: proxy.url,
        key: KEY,
        model: BACKEND_MODEL.openai,
        command: 'rm -rf /home/dev/proj',
        stream: true,
      });
      expect(passed.calls, client).toEqual([{ name: TOOL[client], command: 'rm -rf /home/dev/proj' }]);
    }
  });

  it('leaves answers to requests without a shell tool alone', async () => {
    const c = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const res = await c.chat.completions.create({
      model: 'openai:gpt-shell-call',
      messages: [{ role: 'user', content: 'git push --force' }],
      tools: [{ type: 'function', function: { name: 'search', parameters: SCHEMA } }],
    });
    expect(res.choices[0]!.message.tool_calls?.[0]).toMatchObject({
      function: { name: 'search', arguments: '{"command":"git push --force"}' },
    });
  });
});

const FREEFORM_SHELL = [{ type: 'custom' as const, name: 'shell' }];

/** The Responses API through the proxy to the openai backend speaking it (Codex passed through). */
const askResponses = (
  command: string,
  stream: boolean,
  tools: OpenAI.Responses.Tool[] = CODEX_TOOLS,
  url = proxy.url,
): Promise<ResponsesAnswer> =>
  askResponsesAgent({ url, key: KEY, model: 'openai:gpt-shell-call', input: command, tools, stream });

describe('dangerous-command guard: logged and captured', () => {
  it('logs each stop (tool, action, key; never the command) and captures the answer the client got', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lip-guard-capture-'));
    const capturing = await startProxyProcess(
      ['--default-backend', 'openai', '--capture-file', join(dir, 'cap.jsonl')],
      {
        LLM_INTERACTIVE_PROXY_API_KEY: KEY,
        OPENAI_API_KEY: 'sk-openai-guard-test',
        OPENAI_API_BASE_URL: provider.baseUrls.openai,
      },
    );
    try {
      for (const stream of [false, true]) {
        const c = new OpenAI({
          baseURL: `${capturing.url}/v1`,
          apiKey: KEY,
          maxRetries: 0,
          defaultHeaders: { 'x-request-id': `guard-capture-${String(stream)}` },
        });
        const params = {
          model: BACKEND_MODEL.openai,
          messages: [{ role: 'user' as const, content: 'git push --force origin main' }],
          tools: [{ type: 'function' as const, function: { name: TOOL.openai, parameters: SCHEMA } }],
        };
        if (stream) {
          for await (const chunk of await c.chat.completions.create({ ...params, stream: true }))
            expect(chunk.choices[0]?.delta.tool_calls).toBeUndefined();
        } else {
          const res = await c.chat.completions.create(params);
          expect(res.choices[0]!.message.content).toContain('[proxy: dangerous command]');
        }
      }
      await expect
        .poll(() =>
          capturing.stdout().match(/"msg":"Dangerous command in a tool call stopped by the guard"/g),
        )
        .toHaveLength(2);
      const stops = capturing
        .stdout()
        .split('\n')
        .filter((line) => line.includes('stopped by the guard'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(stops.map((l) => [l.request_id, l.tool, l.action, l.key])).toEqual([
        ['guard-capture-false', 'shell', 'replace', 'env'],
        ['guard-capture-true', 'shell', 'replace', 'env'],
      ]);
      expect(capturing.stdout()).not.toContain('git push --force');
    } finally {
      expect(await capturing.stop()).toBe(0);
    }
    try {
      const events = readFileSync(join(dir, 'cap.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { request_id: string; direction: string; payload?: unknown });
      for (const stream of [false, true]) {
        const mine = events.filter((e) => e.request_id === `guard-capture-${String(stream)}`);
        // What the client got: the whole answer, or the stream's chunks (recorded as they were passed on).
        const sent = mine.filter((e) => e.direction === (stream ? 'stream_chunk' : 'outbound_response'));
        expect(sent.length, `stream=${String(stream)}`).toBeGreaterThan(0);
        expect(JSON.stringify(sent.map((e) => e.payload))).toContain(
          '[proxy: dangerous command] I was about to run `git push --force origin main`',
        );
      }
      // A whole answer's capture keeps what the backend said too: the call the guard stopped.
      const received = events.find(
        (e) => e.request_id === 'guard-capture-false' && e.direction === 'inbound_response',
      );
      expect(JSON.stringify(received?.payload)).toContain('git push --force origin main');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dangerous-command guard on Responses backends (Codex passed through)', () => {
  for (const stream of [false, true]) {
    for (const [kind, tools, name] of [
      ['function', CODEX_TOOLS, 'exec_command'],
      ['freeform', FREEFORM_SHELL, 'shell'],
    ] as const) {
      it(`${kind} tool${stream ? ', streamed' : ''}: steers a force push, passes a push`, async () => {
        const before = provider.requests.length;
        const steered = await askResponses('sudo  git  push -f origin main', stream, [...tools]);
        // Passed through: the provider was asked in the Responses API itself.
        expect(provider.requests.slice(before).map((r) => r.url)).toEqual(['/v1/responses']);
        expect(steered.calls).toEqual([]);
        expect(steered.text).toBe(
          '[proxy: dangerous command] I was about to run `sudo  git  push -f origin main`, but the proxy ' +
            'stopped it (git-push-force): a force push rewrites the remote branch and can destroy other ' +
            'people’s work. I will not run it. If it is really needed, the user can run it themselves.',
        );
        const passed = await askResponses('git push origin main', stream, [...tools]);
        expect(passed.calls).toEqual([{ name, command: 'git push origin main' }]);
        expect(passed.text).toBe('');
      });
    }
  }

  it('refuses the answer with action block, whole and streamed', async () => {
    await expect(askResponses('git push --force', false, CODEX_TOOLS, blocking.url)).rejects.toMatchObject({
      status: 400,
      code: 'dangerous_command',
    });
    await expect(askResponses('rm -rf /', true, CODEX_TOOLS, blocking.url)).rejects.toThrow(
      /Refused by the proxy's guard: `rm -rf \/` \(rm-rf-root\)/,
    );
  });
});

describe('dangerous-command guard on routed requests (failover)', () => {
  // The first element's prompt is too long for it (failover goes to the next at once), the second answers
  // with the shell call: the answer of the attempt that committed is judged, translated or not.
  const CHAIN: Record<Side, string> = {
    openai: 'openai:fault-context-length-exceeded|openai:gpt-shell-call',
    anthropic: 'anthropic:fault-context-length-exceeded|anthropic:claude-shell-call',
    gemini: 'gemini:fault-context-length-exceeded|gemini:gemini-shell-call',
  };

  async function askRouted(backend: Side, command: string, stream: boolean, url = proxy.url) {
    const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
    const params = {
      model: CHAIN[backend],
      messages: [{ role: 'user' as const, content: command }],
      tools: [{ type: 'function' as const, function: { name: TOOL.openai, parameters: SCHEMA } }],
    };
    const before = provider.requests.length;
    const res = stream
      ? await c.chat.completions.stream({ ...params, stream: true }).finalChatCompletion()
      : await c.chat.completions.create(params);
    return { res, tried: provider.requests.length - before };
  }

  for (const backend of SIDES) {
    for (const stream of [false, true]) {
      it(`openai client → ${backend} backend${stream ? ', streamed' : ''}: steered after a failover`, async () => {
        const { res, tried } = await askRouted(backend, 'git push --force origin main', stream);
        expect(tried).toBe(2);
        const m = res.choices[0]!.message;
        expect(m.tool_calls ?? []).toEqual([]);
        expect(m.content).toContain(
          '[proxy: dangerous command] I was about to run `git push --force origin main`',
        );
        expect(res.choices[0]!.finish_reason).toBe('stop');

        const passed = await askRouted(backend, 'git push origin main', stream);
        expect(
          passed.res.choices[0]!.message.tool_calls?.map((t) => t.type === 'function' && t.function.name),
        ).toEqual(['shell']);
      });
    }
  }

  it('refuses a routed answer with action block', async () => {
    await expect(askRouted('anthropic', 'git reset --hard', false, blocking.url)).rejects.toMatchObject({
      status: 400,
    });
    await expect(askRouted('openai', 'git reset --hard', true, blocking.url)).rejects.toThrow(
      /Refused by the proxy's guard: `git reset --hard` \(git-reset-hard\)/,
    );
  });
});

describe("dangerous-command guard on Codex's default model (its code cell, `exec`)", () => {
  // Codex's default model declares its tools in an `additional_tools` input item (no `tools` member) and runs
  // shell commands from JavaScript in its `exec` tool: the recorded request, with the user's text replaced.
  const recorded = JSON.parse(
    readFileSync(
      new URL('./fixtures/clients/codex-0.171.0-default/01-post-v1-responses.json', import.meta.url),
      'utf8',
    ),
  ) as { body: { input: Array<{ role?: string; content?: Array<{ text: string }> }> } };
  const codexTurn = (model: string, script: string, stream: boolean) => {
    const input = structuredClone(recorded.body.input);
    input.at(-1)!.content = [{ type: 'input_text', text: script } as { text: string }];
    return { ...recorded.body, model, input, stream, store: false };
  };
  const ask = async (model: string, script: string, stream: boolean, url = proxy.url) => {
    const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
    const body = codexTurn(
      model,
      script,
      stream,
    ) as unknown as OpenAI.Responses.ResponseCreateParamsNonStreaming;
    const res = stream
      ? await c.responses
          .stream(body as unknown as OpenAI.Responses.ResponseCreateParamsStreaming)
          .finalResponse()
      : await c.responses.create(body);
    return {
      text: res.output_text,
      calls: res.output.flatMap((item) => (item.type === 'custom_tool_call' ? [item.name] : [])),
    };
  };
  const DANGEROUS =
    'const r = await tools.exec_command({ cmd: "git reset --hard HEAD~3" });\ntext(r.output);';
  const SAFE = 'const r = await tools.exec_command({ cmd: "git status" });\ntext(r.output);';

  for (const [backend, model] of [
    ['openai (passed through)', 'openai:gpt-shell-call'],
    ['anthropic', 'anthropic:claude-shell-call'],
    ['gemini', 'gemini:gemini-shell-call'],
  ] as const) {
    for (const stream of [false, true]) {
      it(`${backend} backend${stream ? ', streamed' : ''}: steers a script running a hard reset, passes a safe one`, async () => {
        const steered = await ask(model, DANGEROUS, stream);
        expect(steered.calls).toEqual([]);
        expect(steered.text).toBe(
          '[proxy: dangerous command] I was about to run `git reset --hard HEAD~3`, but the proxy stopped it ' +
            '(git-reset-hard): a hard reset throws away uncommitted work. I will not run it. If it is really ' +
            'needed, the user can run it themselves.',
        );
        const passed = await ask(model, SAFE, stream);
        expect(passed.calls).toEqual(['exec']);
        expect(passed.text).toBe('');
      });
    }
  }

  it('refuses the answer with action block', async () => {
    await expect(ask('anthropic:claude-shell-call', DANGEROUS, false, blocking.url)).rejects.toMatchObject({
      status: 400,
      code: 'dangerous_command',
    });
  });
});

describe('the shell guard’s YAML block, guardrails.shell', () => {
  it('takes its tools and rules: a listed tool is read, its own rule steers, default rules off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lip-guard-yaml-'));
    const config = join(dir, 'proxy.yaml');
    writeFileSync(
      config,
      [
        'guardrails:',
        '  action: steer',
        '  shell:',
        '    tools: [run_in_terminal]',
        '    default_rules: false',
        '    rules:',
        '      - name: no-npm-publish',
        '        pattern: "^npm publish"',
        '        reason: publishing is done by the release pipeline',
        '',
      ].join('\n'),
    );
    const own = await startProxyProcess(['--config', config, '--default-backend', 'openai'], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      OPENAI_API_KEY: 'sk-openai-guard-test',
      OPENAI_API_BASE_URL: provider.baseUrls.openai,
    });
    try {
      const c = new OpenAI({ baseURL: `${own.url}/v1`, apiKey: KEY, maxRetries: 0 });
      const call = async (command: string) => {
        const res = await c.chat.completions.create({
          model: 'gpt-shell-call',
          messages: [{ role: 'user', content: command }],
          tools: [{ type: 'function', function: { name: 'run_in_terminal', parameters: SCHEMA } }],
        });
        return res.choices[0]!.message;
      };
      const steered = await call('npm publish --access public');
      expect(steered.tool_calls ?? []).toEqual([]);
      expect(steered.content).toContain(
        '[proxy: dangerous command] I was about to run `npm publish --access public`, but the proxy stopped it ' +
          '(no-npm-publish): publishing is done by the release pipeline.',
      );
      // The default rules are off: a force push is passed on.
      const passed = await call('git push --force origin main');
      expect(passed.tool_calls?.[0]).toMatchObject({
        function: { name: 'run_in_terminal', arguments: '{"command":"git push --force origin main"}' },
      });
    } finally {
      await own.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
