import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

/**
 * Model names are the clients' own text (README, Teams: usage): a key holder sending a new model name per
 * request — the embedded mock answers any — must not grow /metrics, /admin/usage or the proxy's memory with
 * them. Names the configuration knows (here a priced one and a route's) always count under their own
 * name; others under their own name up to a cap (200 per process), then as `other`. Counted by label values,
 * never by bytes or time.
 */
const CLIENT_KEY = 'cardinality-client-key-0123456789abcdef';
const ADMIN_KEY = 'cardinality-admin-key-0123456789abcdefg';
/** Distinct names sent: well past the cap. */
const NAMES = 1_000;
const CAP = 200;

let dir: string;
let proxy: ProxyProcess;

const start = () =>
  startProxyProcess(
    ['--config', join(dir, 'config.yaml'), '--usage-file', join(dir, 'usage.jsonl'), '--log-level', 'info'],
    { LLM_INTERACTIVE_PROXY_API_KEY: CLIENT_KEY, LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY },
  );

async function chat(model: string): Promise<void> {
  const res = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

async function admin(path: string): Promise<string> {
  const res = await fetch(`${proxy.url}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  expect(res.status).toBe(200);
  return res.text();
}

/** The `model` label values of `llm_proxy_tokens_total` for the mock backend's input tokens. */
async function metricModels(): Promise<Map<string, number>> {
  const models = new Map<string, number>();
  for (const line of (await admin('/metrics')).split('\n')) {
    const match =
      /^llm_proxy_tokens_total\{key="env",backend="mock",model="([^"]*)",direction="input"\} (\d+)/.exec(
        line,
      );
    if (match) models.set(match[1]!, Number(match[2]));
  }
  return models;
}

interface ModelGroup {
  model: string;
  requests: number;
}

async function usageModels(): Promise<ModelGroup[]> {
  return (JSON.parse(await admin('/admin/usage?group_by=model')) as { groups: ModelGroup[] }).groups;
}

/** Waits until /admin/usage counts `requests` requests (usage settles once each answer has ended). */
async function settled(requests: number): Promise<ModelGroup[]> {
  let groups: ModelGroup[] = [];
  for (let tries = 0; tries < 100; tries++) {
    groups = await usageModels();
    if (groups.reduce((sum, g) => sum + g.requests, 0) >= requests) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return groups;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lip-cardinality-'));
  writeFileSync(
    join(dir, 'config.yaml'),
    [
      'routes:',
      '  coder: {chain: ["mock:routed-model"]}',
      'prices:',
      '  "mock:priced-model": {input: 1, output: 1}',
      '',
    ].join('\n'),
  );
  proxy = await start();
  // A few at a time, as a client looping over names would.
  let next = 0;
  const worker = async () => {
    while (next < NAMES) await chat(`mock:client-chosen-${next++}`);
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  // Names the configuration knows, sent after the cap is reached.
  await chat('mock:priced-model');
  await chat('coder');
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('client-chosen model names', () => {
  it('count under their own name up to the cap, then as `other`, in /admin/usage', async () => {
    const groups = await settled(NAMES + 2);
    const mock = groups.filter((g) => g.model.startsWith('mock:'));
    const chosen = mock.filter((g) => g.model.startsWith('mock:client-chosen-'));
    expect(chosen.length).toBe(CAP);
    expect(chosen.every((g) => g.requests === 1)).toBe(true);
    expect(mock.find((g) => g.model === 'mock:other')?.requests).toBe(NAMES - CAP);
    // Known names stand under their own, whatever came first.
    expect(mock.find((g) => g.model === 'mock:priced-model')?.requests).toBe(1);
    expect(mock.find((g) => g.model === 'mock:routed-model')?.requests).toBe(1);
    expect(mock.length).toBe(CAP + 3);
  });

  it('give /metrics a bounded set of model label values', async () => {
    const models = await metricModels();
    expect(models.size).toBe(CAP + 3);
    expect([...models.keys()].filter((m) => m.startsWith('client-chosen-')).length).toBe(CAP);
    expect(models.has('other')).toBe(true);
    expect(models.has('priced-model')).toBe(true);
    expect(models.has('routed-model')).toBe(true);
  });

  it('log the missing price once per label: never once per name', () => {
    const warnings = proxy
      .stdout()
      .split('\n')
      .filter((line) => line.includes('No price for this model'));
    // The admitted names, `other` and the route's unpriced model.
    expect(warnings.length).toBe(CAP + 2);
  });

  it('keep every name in the usage file (the record), and stay bounded when it is replayed', async () => {
    const lines = readFileSync(join(dir, 'usage.jsonl'), 'utf8').trim().split('\n');
    const named = new Set(lines.map((line) => (JSON.parse(line) as { model: string }).model));
    expect(named.size).toBe(NAMES + 2);
    expect(await proxy.stop()).toBe(0);
    proxy = await start();
    const mock = (await settled(NAMES + 2)).filter((g) => g.model.startsWith('mock:'));
    expect(mock.length).toBe(CAP + 3);
    expect(mock.reduce((sum, g) => sum + g.requests, 0)).toBe(NAMES + 2);
    expect(mock.find((g) => g.model === 'mock:priced-model')?.requests).toBe(1);
  });
});
