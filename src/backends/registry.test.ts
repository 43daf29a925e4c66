import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/config-error.js';
import { ConfigSchema } from '../config/schema.js';
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
