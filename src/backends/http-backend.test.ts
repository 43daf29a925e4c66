import { describe, expect, it } from 'vitest';
import { HttpBackend } from './http-backend.js';
import { UpstreamHttp } from './http.js';
import { HTTP_PROFILES } from './profiles.js';

describe('HttpBackend.headersFor', () => {
  const upstream = new UpstreamHttp({ timeoutMs: 1000 });
  const anthropic = new HttpBackend(
    HTTP_PROFILES.anthropic,
    {
      name: 'anthropic',
      baseUrl: 'http://127.0.0.1:9/v1',
      apiKey: 'sk-ant-own',
      apiKeyEnv: 'ANTHROPIC_API_KEY',
    },
    upstream,
  );

  it('sends its own headers, the same object every call, when the client adds none', () => {
    expect(anthropic.headersFor(undefined)).toBe(anthropic.headersFor(undefined));
    expect(anthropic.headersFor(undefined)).toEqual({
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'anthropic-version': '2023-06-01',
      'x-api-key': 'sk-ant-own',
    });
  });

  it("lets the client's headers replace a default, never the credential", () => {
    expect(
      anthropic.headersFor({
        'anthropic-version': '2099-01-01',
        'anthropic-beta': 'b1',
        'x-api-key': 'client',
      }),
    ).toEqual({
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'anthropic-version': '2099-01-01',
      'anthropic-beta': 'b1',
      'x-api-key': 'sk-ant-own',
    });
  });
});
