import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/config-error.js';
import { ConfigSchema } from '../config/schema.js';
import type { HttpBackend } from './http-backend.js';
import { UpstreamHttp } from './http.js';
import { connectionLimits, createBackendRegistry } from './registry.js';

const upstream = new UpstreamHttp({ timeoutMs: 1_000 });
const configWith = (backends: Record<string, unknown>) => ConfigSchema.parse({ backends });

describe('backends.<name>.max_connections', () => {
  it('is read for custom and built-in backends alike', () => {
    const config = configWith({
      local: { base_url: 'http://127.0.0.1:1/v1', max_connections: 3 },
      openai: { max_connections: 500 },
      plain: { base_url: 'http://127.0.0.1:2/v1' },
    });
    expect(connectionLimits(config)).toEqual({ local: 3, openai: 500 });
    const registry = createBackendRegistry(config, {}, upstream);
    expect(registry.resolve('local:m').backend.name).toBe('local');
    expect(registry.resolve('plain:m').backend.protocol).toBe('openai');
  });

  it('is one of the few fields a built-in backend takes, and a custom backend needs its base_url', () => {
    expect(() =>
      createBackendRegistry(configWith({ openai: { base_url: 'http://x' } }), {}, upstream),
    ).toThrow(
      'backends.openai: "openai" is a built-in backend; choose another name (a built-in backend takes only max_connections, prefill, api_key_envs)',
    );
    expect(() => createBackendRegistry(configWith({ mock: { max_connections: 2 } }), {}, upstream)).toThrow(
      /"mock" is a built-in backend/,
    );
    expect(() => createBackendRegistry(configWith({ foo: { max_connections: 2 } }), {}, upstream)).toThrow(
      'backends.foo.base_url: required for a custom backend',
    );
  });

  it('is a whole number from 1 up', () => {
    expect(() => configWith({ foo: { base_url: 'http://x', max_connections: 0 } })).toThrow();
    expect(() => configWith({ foo: { base_url: 'http://x', max_connections: 1.5 } })).toThrow();
  });
});

describe('key pools of a backend with a Responses door', () => {
  it('one pool for both doors: a key refused at the Responses door is counted under the backend', () => {
    const config = configWith({
      compat: {
        base_url: 'http://127.0.0.1:3/v1',
        type: 'openai',
        api_key_envs: ['COMPAT_KEY_A', 'COMPAT_KEY_B'],
        responses: true,
      },
    });
    const env = {
      OPENAI_API_KEY: 'sk-registry-pool-0',
      OPENAI_API_KEY_1: 'sk-registry-pool-1',
      COMPAT_KEY_A: 'sk-compat-a',
      COMPAT_KEY_B: 'sk-compat-b',
    };
    const registry = createBackendRegistry(config, env, upstream);
    for (const [name, keys] of [
      ['openai', ['OPENAI_API_KEY', 'OPENAI_API_KEY_1']],
      ['compat', ['COMPAT_KEY_A', 'COMPAT_KEY_B']],
    ] as const) {
      const chat = registry.get(name) as HttpBackend;
      const responses = chat.speaking('responses') as HttpBackend;
      expect(responses).not.toBe(chat);
      expect(responses.keyPool).not.toBeNull();
      expect(responses.keyPool).toBe(chat.keyPool);
      // A 401 at the Responses door, a 429 at the chat door: one pool, counted once each.
      responses.keyPool?.report(0, 401, null);
      chat.keyPool?.report(1, 429, 5);
      expect(registry.keyLeaves().filter((l) => l.backend === name)).toEqual([
        { backend: name, key: keys[0], out: 1, resting: 0 },
        { backend: name, key: keys[1], out: 0, resting: 1 },
      ]);
      expect(registry.keyPools()[name]).toEqual([
        { key: keys[0], state: 'out' },
        { key: keys[1], state: 'resting' },
      ]);
    }
  });
});

describe('backends.<built-in>.api_key_envs', () => {
  const pooled = configWith({
    openai: { api_key_envs: ['OPENAI_KEY_A', 'OPENAI_KEY_B'], max_connections: 4 },
  });
  const keysOf = (registry: ReturnType<typeof createBackendRegistry>, name: string) =>
    (registry.get(name) as HttpBackend).keyPool?.keys.map((k) => k.name);

  it('is the built-in backend’s whole pool: OPENAI_API_KEY is in it only if listed', () => {
    const registry = createBackendRegistry(
      pooled,
      { OPENAI_API_KEY: 'sk-unlisted', OPENAI_KEY_A: 'sk-a', OPENAI_KEY_B: 'sk-b' },
      upstream,
    );
    expect(keysOf(registry, 'openai')).toEqual(['OPENAI_KEY_A', 'OPENAI_KEY_B']);
    const chat = registry.get('openai') as HttpBackend;
    expect((chat.speaking('responses') as HttpBackend).keyPool).toBe(chat.keyPool);
    expect(registry.configuredNames()).toContain('openai');
  });

  it('with none of its vars set, the backend is not configured and the error names them', () => {
    const registry = createBackendRegistry(pooled, { OPENAI_API_KEY: 'sk-unlisted' }, upstream);
    expect(() => registry.resolve('openai:gpt-4o')).toThrow(
      "Backend 'openai' is not configured: set OPENAI_KEY_A, OPENAI_KEY_B in the proxy's environment",
    );
  });

  it('beside a numbered var it leaves out, refuses to start, naming both', () => {
    const env = { OPENAI_KEY_A: 'sk-a', OPENAI_API_KEY_1: 'sk-1', OPENAI_API_KEY_2: 'sk-2' };
    expect(() => createBackendRegistry(pooled, env, upstream)).toThrow(ConfigError);
    expect(() => createBackendRegistry(pooled, env, upstream)).toThrow(
      "backends.openai.api_key_envs and OPENAI_API_KEY_1, OPENAI_API_KEY_2 both give the openai backend's key pool: list them in api_key_envs, or unset them, or drop api_key_envs",
    );
    // Listed, a numbered var is simply one of the pool's keys.
    const listed = configWith({ openai: { api_key_envs: ['OPENAI_API_KEY_1', 'OPENAI_API_KEY_2'] } });
    expect(keysOf(createBackendRegistry(listed, env, upstream), 'openai')).toEqual([
      'OPENAI_API_KEY_1',
      'OPENAI_API_KEY_2',
    ]);
  });

  it('leaves the other built-in backends’ numbered pools as they are', () => {
    const registry = createBackendRegistry(
      pooled,
      { OPENAI_KEY_A: 'sk-a', ANTHROPIC_API_KEY: 'sk-ant-0', ANTHROPIC_API_KEY_1: 'sk-ant-1' },
      upstream,
    );
    expect(keysOf(registry, 'anthropic')).toEqual(['ANTHROPIC_API_KEY', 'ANTHROPIC_API_KEY_1']);
    // One key is no pool: it is sent as the backend's key.
    expect((registry.get('openai') as HttpBackend).missingCredential).toBeNull();
  });
});
