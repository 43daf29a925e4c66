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

  it('is the only field a built-in backend takes, and a custom backend needs its base_url', () => {
    expect(() =>
      createBackendRegistry(configWith({ openai: { base_url: 'http://x' } }), {}, upstream),
    ).toThrow(ConfigError);
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
