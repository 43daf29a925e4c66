import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

/**
 * The model lists as a key may use them (README, "Teams"): a key with an allow-list sees only the models and
 * route names it lets through, in every protocol's list; a key without one sees everything.
 */
const LIMITED = 'lists-limited-key-0123456789abcd';
const FREE = 'lists-free-key-0123456789abcdefg';
const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

let dir: string;
let provider: FakeProvider;
let proxy: ProxyProcess;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lip-model-lists-'));
  const configFile = join(dir, 'lists.yaml');
  writeFileSync(
    configFile,
    [
      'auth:',
      '  api_keys:',
      `    - {name: limited, sha256: ${sha256(LIMITED)}, models: ["openai:gpt-4o*", "coder"]}`,
      `    - {name: free, key: ${FREE}}`,
      'routes:',
      '  coder: {chain: [openai:gpt-4o]}',
      '  writer: {chain: [openai:o3]}',
      '',
    ].join('\n'),
  );
  provider = await startFakeProvider({
    models: {
      openai: {
        object: 'list',
        data: ['gpt-4o', 'gpt-4o-mini', 'o3'].map((id) => ({
          id,
          object: 'model',
          created: 1,
          owned_by: 'x',
        })),
      },
    },
  });
  proxy = await startProxyProcess(['--config', configFile, '--default-backend', 'openai'], {
    OPENAI_API_KEY: 'sk-lists-upstream-0123456789',
    OPENAI_API_BASE_URL: provider.baseUrls.openai,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await provider?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function openaiIds(key: string): Promise<string[]> {
  const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: key, maxRetries: 0 });
  const ids: string[] = [];
  for await (const model of client.models.list()) ids.push(model.id);
  return ids;
}

describe('model lists filtered by the key’s allow-list', () => {
  it('OpenAI: the allowed models and route names only; everything for a key without a list', async () => {
    expect(await openaiIds(LIMITED)).toEqual(['coder', 'gpt-4o', 'gpt-4o-mini']);
    expect(await openaiIds(FREE)).toEqual(['coder', 'writer', 'gpt-4o', 'gpt-4o-mini', 'o3']);
  });

  it('Anthropic: the same list in its shape', async () => {
    const client = new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: LIMITED, maxRetries: 0 });
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(['coder', 'gpt-4o', 'gpt-4o-mini']);
  });

  it('Gemini: the same list in its shape', async () => {
    const client = new GoogleGenAI({ apiKey: LIMITED, httpOptions: { baseUrl: proxy.url } });
    const names: string[] = [];
    for await (const model of await client.models.list()) names.push(model.name ?? '');
    expect(names).toEqual(['models/coder', 'models/gpt-4o', 'models/gpt-4o-mini']);
  });
});

describe('one model by its id, as the SDKs retrieve it', () => {
  it('OpenAI: models.retrieve gives the list’s entry; a model outside the allow-list is 404', async () => {
    const limited = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: LIMITED, maxRetries: 0 });
    expect(await limited.models.retrieve('gpt-4o-mini')).toMatchObject({
      id: 'gpt-4o-mini',
      object: 'model',
    });
    expect(await limited.models.retrieve('coder')).toMatchObject({ id: 'coder' });
    const hidden = await limited.models.retrieve('o3').catch((e: unknown) => e);
    expect(hidden).toBeInstanceOf(OpenAI.NotFoundError);
    expect((hidden as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    const free = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: FREE, maxRetries: 0 });
    expect(await free.models.retrieve('o3')).toMatchObject({ id: 'o3' });
  });

  it('Anthropic: models.retrieve in its shape', async () => {
    const client = new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: LIMITED, maxRetries: 0 });
    expect(await client.models.retrieve('gpt-4o')).toMatchObject({ type: 'model', id: 'gpt-4o' });
    await expect(client.models.retrieve('o3')).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it('Gemini: models.get in its shape, with or without the models/ prefix', async () => {
    const client = new GoogleGenAI({ apiKey: LIMITED, httpOptions: { baseUrl: proxy.url } });
    expect(await client.models.get({ model: 'gpt-4o' })).toMatchObject({ name: 'models/gpt-4o' });
    expect(await client.models.get({ model: 'models/coder' })).toMatchObject({ name: 'models/coder' });
    await expect(client.models.get({ model: 'o3' })).rejects.toMatchObject({ status: 404 });
  });
});
