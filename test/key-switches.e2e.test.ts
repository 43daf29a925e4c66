import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider, type RecordedRequest } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

/**
 * Per-key switches (README, "In-chat commands and sessions" and "Agent guardrails"): `commands: false` and
 * `guardrails: false` on a YAML key, `commands=false` / `guardrails=false` on a keys-file line, and on a
 * label's policy; each followed at the next key reload, without a restart.
 */
const ADMIN = 'switches-admin-key-0123456789abcdef';
const ALICE = 'switches-alice-key-0123456789abcd';
const BOB = 'switches-bob-key-0123456789abcdef';
const CAROL = 'switches-carol-key-0123456789abcd';
const DAVE = 'switches-dave-key-0123456789abcde';

let dir: string;
let keysFile: string;
let configFile: string;
let provider: FakeProvider;
let proxy: ProxyProcess;

const keysText = (bob: string, carol: string) => `alice:${ALICE}\nbob:${BOB}${bob}\ncarol:${CAROL}${carol}\n`;
const configText = (label: string) =>
  [
    'auth:',
    '  api_keys:',
    `    - {name: dave, key: ${DAVE}, commands: false, guardrails: false}`,
    '  policies:',
    `    no-guard: {${label}}`,
    '',
  ].join('\n');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lip-switches-'));
  keysFile = join(dir, 'keys.txt');
  configFile = join(dir, 'proxy.yaml');
  writeFileSync(keysFile, keysText(' commands=false', ' labels=no-guard'), { mode: 0o600 });
  writeFileSync(configFile, configText('guardrails: false'), { mode: 0o600 });
  provider = await startFakeProvider();
  proxy = await startProxyProcess(
    ['--api-keys-file', keysFile, '--config', configFile, '--default-backend', 'openai'],
    {
      LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN,
      OPENAI_API_KEY: 'sk-openai-switches-test',
      OPENAI_API_BASE_URL: provider.baseUrls.openai,
      ANTHROPIC_API_KEY: 'sk-ant-switches-test',
      ANTHROPIC_API_BASE_URL: provider.baseUrls.anthropic,
    },
  );
});

afterAll(async () => {
  await proxy?.stop();
  await provider?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function callsDuring(run: () => Promise<unknown>): Promise<RecordedRequest[]> {
  const before = provider.requests.length;
  await run();
  return provider.requests.slice(before);
}

/** `!/help` through the OpenAI SDK: whether the proxy answered it (no backend call) or the model did. */
async function help(key: string): Promise<'proxy' | 'model'> {
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: key, maxRetries: 0 });
  let text = '';
  const calls = await callsDuring(async () => {
    const res = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: '!/help' }],
    });
    text = res.choices[0]?.message.content ?? '';
  });
  if (calls.length === 0 && text.includes('!/set(model=backend:model)')) return 'proxy';
  expect(text).toBe('echo: !/help');
  return 'model';
}

/** A force push from Claude Code's `Bash` tool, streamed through the Anthropic SDK: steered or passed. */
async function forcePush(key: string): Promise<'steered' | 'passed'> {
  const client = new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: key, maxRetries: 0 });
  const message = await client.messages
    .stream({
      model: 'anthropic:claude-shell-call',
      max_tokens: 1000,
      messages: [{ role: 'user', content: 'git push --force origin main' }],
      tools: [
        {
          name: 'Bash',
          input_schema: {
            type: 'object',
            properties: { command: { type: 'string' } },
            required: ['command'],
          },
        },
      ],
    })
    .finalMessage();
  const calls = message.content.filter((b) => b.type === 'tool_use');
  if (calls.length === 0) {
    expect(message.content.map((b) => (b.type === 'text' ? b.text : '')).join('')).toContain(
      '[proxy: dangerous command]',
    );
    return 'steered';
  }
  expect(calls.map((b) => b.input)).toEqual([{ command: 'git push --force origin main' }]);
  return 'passed';
}

async function reload(): Promise<void> {
  const res = await fetch(`${proxy.url}/admin/reload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

const stateOf = async (key: string) => [await help(key), await forcePush(key)];

describe('per-key commands and guardrails switches', () => {
  it('follows the YAML key, the keys-file line and the label policy, and each change at a reload', async () => {
    expect(await stateOf(ALICE)).toEqual(['proxy', 'steered']);
    expect(await stateOf(BOB)).toEqual(['model', 'steered']);
    expect(await stateOf(CAROL)).toEqual(['proxy', 'passed']);
    expect(await stateOf(DAVE)).toEqual(['model', 'passed']);

    // Bob's line turns commands back on and the guard off; Carol leaves the label; the label now turns
    // commands off instead of the guard.
    writeFileSync(keysFile, keysText(' guardrails=false', ''));
    writeFileSync(configFile, configText('commands: false'));
    await reload();
    expect(await stateOf(ALICE)).toEqual(['proxy', 'steered']);
    expect(await stateOf(BOB)).toEqual(['proxy', 'passed']);
    expect(await stateOf(CAROL)).toEqual(['proxy', 'steered']);
    // Into the label: its policy now turns commands off.
    writeFileSync(keysFile, keysText(' guardrails=false', ' labels=no-guard'));
    await reload();
    expect(await stateOf(CAROL)).toEqual(['model', 'steered']);
    expect(await stateOf(DAVE)).toEqual(['model', 'passed']);
  });
});
