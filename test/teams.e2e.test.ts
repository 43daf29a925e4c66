import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { ApiError, GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { runCli, startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

/**
 * Teams against the real CLI (README, "Admin keys" and "Teams: policies"): the operator endpoints need an admin
 * key; keys carry roles, labels and expiry from YAML and the keys file, reloaded without a restart; a model
 * outside a key's allow-list is 404 in each protocol's envelope; an expired key is 401 and no guess.
 */
const CLIENT_KEY = 'teams-client-key-0123456789abcdef';
const ADMIN_KEY = 'teams-admin-key-0123456789abcdef';
const ALICE_KEY = 'teams-alice-key-0123456789abcdef';
const BOB_KEY = 'teams-bob-key-0123456789abcdefgh';
const EXPIRED_KEY = 'teams-expired-key-0123456789abcd';
const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lip-teams-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Every operator endpoint, with what the admin key gets from it. */
const OPERATOR_ENDPOINTS: ReadonlyArray<{ method: string; path: string; adminStatus: number }> = [
  { method: 'GET', path: '/metrics', adminStatus: 200 },
  { method: 'GET', path: '/internal/health', adminStatus: 200 },
  { method: 'GET', path: '/admin/auth/blocks', adminStatus: 200 },
  // Nothing is blocked: the admin is told so, with 404.
  { method: 'DELETE', path: '/admin/auth/blocks/192.0.2.9', adminStatus: 404 },
  { method: 'POST', path: '/admin/reload', adminStatus: 200 },
];

const NOT_ADMIN_BODY = {
  error: {
    message:
      'This operator endpoint needs an admin key, and this request was not made with one: the key is valid for ' +
      'proxy traffic only. Send an admin key (LLM_INTERACTIVE_PROXY_ADMIN_KEY, or role: admin on a key in ' +
      'auth.api_keys or role=admin in the keys file).',
    type: 'permission_error',
    code: 'admin_key_required',
    param: null,
  },
};

const NO_ADMIN_BODY = {
  error: {
    message:
      'The operator endpoints need an admin key and none is configured: set LLM_INTERACTIVE_PROXY_ADMIN_KEY ' +
      '(or give a key role: admin in auth.api_keys or role=admin in the keys file), reload or restart, and send it.',
    type: 'permission_error',
    code: 'admin_key_not_configured',
    param: null,
  },
};

async function call(proxy: ProxyProcess, method: string, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${proxy.url}${path}`, { method, headers });
  const text = await res.text();
  return { status: res.status, text, type: res.headers.get('content-type') ?? '' };
}

function jsonLines(proxy: ProxyProcess): Array<Record<string, unknown>> {
  return proxy
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The startup banner's line (there is exactly one). */
function banner(proxy: ProxyProcess): Record<string, unknown> | undefined {
  const lines = jsonLines(proxy).filter((line) =>
    String(line.msg).startsWith('LLM Interactive Proxy listening on '),
  );
  expect(lines).toHaveLength(1);
  return lines[0];
}

describe('admin keys on the operator endpoints', () => {
  let proxy: ProxyProcess | undefined;
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });

  it('serves the admin key, answers another valid key 403 and no key 401, on every endpoint', async () => {
    proxy = await startProxyProcess(['--default-backend', 'mock', '--auth-max-failed-attempts', '2'], {
      LLM_INTERACTIVE_PROXY_API_KEY: CLIENT_KEY,
      LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
    });
    for (const { method, path, adminStatus } of OPERATOR_ENDPOINTS) {
      const asClient = await call(proxy, method, path, bearer(CLIENT_KEY));
      expect(asClient.status, `${method} ${path} as a client`).toBe(403);
      expect(JSON.parse(asClient.text)).toEqual(NOT_ADMIN_BODY);
      expect((await call(proxy, method, path, bearer(ADMIN_KEY))).status, `${method} ${path}`).toBe(
        adminStatus,
      );
    }
    expect((await call(proxy, 'GET', '/metrics', bearer(ADMIN_KEY))).text).toMatch(/^llm_proxy_/m);
    const health = JSON.parse((await call(proxy, 'GET', '/internal/health', bearer(ADMIN_KEY))).text) as {
      auth: { keys: number };
    };
    expect(health.auth.keys).toBe(2);
    expect(JSON.parse((await call(proxy, 'POST', '/admin/reload', bearer(ADMIN_KEY))).text)).toEqual({
      reloaded: true,
      keys: 2,
    });
    // Ten 403s with a valid key are no failed guesses (two would block): the address is not even tracked.
    const blocks = JSON.parse((await call(proxy, 'GET', '/admin/auth/blocks', bearer(ADMIN_KEY))).text) as {
      tracked: number;
    };
    expect(blocks.tracked).toBe(0);
    // The missing key is a failure as ever.
    const missing = await call(proxy, 'GET', '/metrics');
    expect(missing.status).toBe(401);
    // The 403s are logged by key name, never the key.
    const running = proxy;
    const refused = () =>
      jsonLines(running).filter((line) => line.msg === 'Operator endpoint refused: not an admin key');
    await vi.waitFor(() => expect(refused()).toHaveLength(OPERATOR_ENDPOINTS.length));
    const refusals = refused();
    expect(refusals[0]).toMatchObject({ keyName: 'env', reason: 'admin_key_required', path: '/metrics' });
    expect(proxy.stdout()).not.toContain(ADMIN_KEY);
    expect(proxy.stdout()).not.toContain(CLIENT_KEY);
  });

  it('lets the admin key chat too', async () => {
    proxy = await startProxyProcess(['--default-backend', 'mock'], {
      LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
    });
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: ADMIN_KEY, maxRetries: 0 });
    const answer = await client.chat.completions.create({
      model: 'mock:echo',
      messages: [{ role: 'user', content: 'admin says hi' }],
    });
    expect(answer.choices[0]?.message.content).toBe('admin says hi');
  });

  it('without an admin key: 403 naming LLM_INTERACTIVE_PROXY_ADMIN_KEY everywhere, and the banner says so', async () => {
    proxy = await startProxyProcess([], { LLM_INTERACTIVE_PROXY_API_KEY: CLIENT_KEY });
    for (const { method, path } of OPERATOR_ENDPOINTS) {
      const answer = await call(proxy, method, path, bearer(CLIENT_KEY));
      expect(answer.status, `${method} ${path}`).toBe(403);
      expect(JSON.parse(answer.text)).toEqual(NO_ADMIN_BODY);
    }
    // One statement, in the banner (a warning then); no line of its own besides.
    expect(banner(proxy)).toMatchObject({
      level: 40,
      admin:
        'none: /admin/*, /metrics and /internal/health answer 403 until one is: set ' +
        'LLM_INTERACTIVE_PROXY_ADMIN_KEY, or give a key role: admin (a reload picks that up)',
    });
    expect(jsonLines(proxy).filter((line) => String(line.msg).startsWith('No admin key'))).toEqual([]);
  });

  it('with an admin key the banner says it is configured, at info', async () => {
    proxy = await startProxyProcess([], {
      LLM_INTERACTIVE_PROXY_API_KEY: CLIENT_KEY,
      LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
    });
    expect(banner(proxy)).toMatchObject({ level: 30, admin: 'configured' });
  });

  it('with auth disabled the operator endpoints stay reachable without a key, as documented', async () => {
    proxy = await startProxyProcess(['--disable-auth']);
    for (const { method, path } of OPERATOR_ENDPOINTS.filter((e) => e.method === 'GET')) {
      expect((await call(proxy, method, path)).status, `${method} ${path}`).toBe(200);
    }
    expect(banner(proxy)).toMatchObject({
      level: 30,
      admin: 'not needed: auth is off, the operator endpoints are open',
    });
  });

  it('a trusted address is a client there: it needs the admin key too', async () => {
    proxy = await startProxyProcess(['--trusted-ip', '127.0.0.1'], {
      LLM_INTERACTIVE_PROXY_API_KEY: CLIENT_KEY,
      LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
    });
    const keyless = await call(proxy, 'GET', '/metrics');
    expect(keyless.status).toBe(403);
    // Told that it sent no key (not that its key is a client's).
    expect(JSON.parse(keyless.text)).toEqual({
      error: {
        ...NOT_ADMIN_BODY.error,
        message:
          'This operator endpoint needs an admin key, and this request sent none: a trusted address ' +
          '(--trusted-ip) skips authentication, not the admin check. Send an admin key ' +
          '(LLM_INTERACTIVE_PROXY_ADMIN_KEY, or role: admin on a key in auth.api_keys or role=admin in the keys file).',
      },
    });
    expect((await call(proxy, 'GET', '/metrics', bearer(ADMIN_KEY))).status).toBe(200);
  });
});

describe('roles and labels from the keys file, reloaded without a restart', () => {
  let upstream: FakeProvider;
  let proxy: ProxyProcess;
  let keysFile: string;
  let configFile: string;

  beforeAll(async () => {
    upstream = await startFakeProvider();
    keysFile = join(dir, 'keys.txt');
    configFile = join(dir, 'labels.yaml');
    writeFileSync(keysFile, `alice:sha256:${sha256(ALICE_KEY)}\nbob:${BOB_KEY} labels=team-a\n`, {
      mode: 0o600,
    });
    writeFileSync(configFile, 'auth:\n  policies:\n    team-a: {models: ["mock:*"], rpm: 600}\n');
    proxy = await startProxyProcess(
      ['--api-keys-file', keysFile, '--config', configFile, '--default-backend', 'mock'],
      {
        LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
        OPENAI_API_KEY: 'sk-teams-upstream-0123456789',
        OPENAI_API_BASE_URL: upstream.baseUrls.openai,
      },
    );
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const reload = async (key: string) => {
    const answer = await call(proxy, 'POST', '/admin/reload', bearer(key));
    expect(answer.status).toBe(200);
  };
  const chat = (key: string, model: string) =>
    fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...bearer(key), 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });

  it('makes a key admin, and a client again, at the reload', async () => {
    expect((await call(proxy, 'GET', '/metrics', bearer(ALICE_KEY))).status).toBe(403);
    writeFileSync(
      keysFile,
      `alice:sha256:${sha256(ALICE_KEY)} role=admin labels=team-b\nbob:${BOB_KEY} labels=team-a\n`,
    );
    await reload(ADMIN_KEY);
    expect((await call(proxy, 'GET', '/metrics', bearer(ALICE_KEY))).status).toBe(200);
    writeFileSync(keysFile, `alice:sha256:${sha256(ALICE_KEY)} role=client\nbob:${BOB_KEY} labels=team-a\n`);
    // The proxy also watches the keys file, and may reload it first: either way the next request sees it.
    await reload(ADMIN_KEY);
    expect((await call(proxy, 'GET', '/metrics', bearer(ALICE_KEY))).status).toBe(403);
    expect(proxy.child.exitCode).toBeNull();
  });

  it("applies a label's policy to its keys, and follows a label change at the reload", async () => {
    expect((await chat(BOB_KEY, 'mock:echo')).status).toBe(200);
    const refused = await chat(BOB_KEY, 'openai:gpt-4o');
    expect(refused.status).toBe(404);
    expect(await refused.json()).toEqual({
      error: {
        message: "The model 'openai:gpt-4o' does not exist or you do not have access to it.",
        type: 'invalid_request_error',
        code: 'model_not_found',
        param: 'model',
      },
    });
    // Alice has no label with a policy: every model.
    expect((await chat(ALICE_KEY, 'openai:gpt-4o')).status).toBe(200);

    writeFileSync(keysFile, `alice:sha256:${sha256(ALICE_KEY)} labels=team-a\nbob:${BOB_KEY}\n`);
    await reload(ADMIN_KEY);
    expect((await chat(BOB_KEY, 'openai:gpt-4o')).status).toBe(200);
    expect((await chat(ALICE_KEY, 'openai:gpt-4o')).status).toBe(404);
  });

  it('reloads the YAML auth.policies with the keys', async () => {
    writeFileSync(configFile, 'auth:\n  policies:\n    team-a: {models: ["*:gpt-4o"]}\n');
    await reload(ADMIN_KEY);
    expect((await chat(ALICE_KEY, 'mock:echo')).status).toBe(404);
    expect((await chat(ALICE_KEY, 'mock:gpt-4o')).status).toBe(200);
  });

  it('keeps the keys and policies in use when the keys file has a bad attribute, naming the line', async () => {
    writeFileSync(keysFile, `alice:sha256:${sha256(ALICE_KEY)} labels=team-a\nbob:${BOB_KEY} role=root\n`);
    const answer = await call(proxy, 'POST', '/admin/reload', bearer(ADMIN_KEY));
    expect(answer.status).toBe(500);
    expect(JSON.parse(answer.text)).toEqual({
      error: {
        message: `Proxy keys not reloaded; the previous keys stay in use. api keys file ${keysFile}: keys file line 2: role= must be client or admin`,
        type: 'server_error',
        code: 'reload_failed',
        param: null,
      },
    });
    expect((await chat(ALICE_KEY, 'mock:gpt-4o')).status).toBe(200);
    expect((await chat(ALICE_KEY, 'mock:echo')).status).toBe(404);
  });
});

describe('model allow-list: 404 model_not_found in each protocol', () => {
  let upstream: FakeProvider;
  let proxy: ProxyProcess;
  const LIMITED_KEY = 'teams-limited-key-0123456789abcd';

  beforeAll(async () => {
    upstream = await startFakeProvider();
    const configFile = join(dir, 'allow-list.yaml');
    writeFileSync(
      configFile,
      [
        'auth:',
        '  api_keys:',
        `    - {name: limited, sha256: ${sha256(LIMITED_KEY)}, models: ["mock:*", "gpt-4o-mini"]}`,
        '',
      ].join('\n'),
    );
    proxy = await startProxyProcess(['--config', configFile, '--default-backend', 'mock'], {
      OPENAI_API_KEY: 'sk-teams-upstream-0123456789',
      OPENAI_API_BASE_URL: upstream.baseUrls.openai,
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('OpenAI SDK: NotFoundError, model_not_found naming the model; an allowed model passes', async () => {
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: LIMITED_KEY, maxRetries: 0 });
    const error = await client.chat.completions
      .create({ model: 'openai:gpt-4o', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).error).toEqual({
      message: "The model 'openai:gpt-4o' does not exist or you do not have access to it.",
      type: 'invalid_request_error',
      code: 'model_not_found',
      param: 'model',
    });
    const allowed = await client.chat.completions.create({
      model: 'openai:gpt-4o-mini',
      messages: [{ role: 'user', content: 'allowed' }],
    });
    expect(allowed.choices[0]?.message.content).toBe('echo: allowed');
  });

  it('token counts: a model outside the list is 404 in both protocols, one inside it is counted', async () => {
    const before = upstream.requests.length;
    const count = (path: string, body: unknown) =>
      fetch(`${proxy.url}${path}`, {
        method: 'POST',
        headers: { 'x-api-key': LIMITED_KEY, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const messages = [{ role: 'user', content: 'count me' }];
    const refused = await count('/anthropic/v1/messages/count_tokens', { model: 'openai:gpt-4o', messages });
    expect(refused.status).toBe(404);
    expect(((await refused.json()) as { error: { type: string } }).error.type).toBe('not_found_error');
    const gemini = await count('/v1beta/models/openai:gpt-4o:countTokens', {
      contents: [{ role: 'user', parts: [{ text: 'count me' }] }],
    });
    expect(gemini.status).toBe(404);
    expect(((await gemini.json()) as { error: { status: string } }).error.status).toBe('NOT_FOUND');
    const allowed = await count('/anthropic/v1/messages/count_tokens', {
      model: 'openai:gpt-4o-mini',
      messages,
    });
    expect(allowed.status).toBe(200);
    expect(((await allowed.json()) as { input_tokens: number }).input_tokens).toBeGreaterThan(0);
    expect(upstream.requests.length).toBe(before);
  });

  it('Anthropic SDK: NotFoundError with not_found_error', async () => {
    const client = new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: LIMITED_KEY, maxRetries: 0 });
    const error = await client.messages
      .create({ model: 'openai:gpt-4o', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.NotFoundError);
    expect((error as InstanceType<typeof Anthropic.NotFoundError>).error).toEqual({
      type: 'error',
      error: {
        type: 'not_found_error',
        message: "The model 'openai:gpt-4o' does not exist or you do not have access to it.",
      },
    });
  });

  it('Gemini: the SDK raises a 404, the body is NOT_FOUND', async () => {
    const client = new GoogleGenAI({ apiKey: LIMITED_KEY, httpOptions: { baseUrl: proxy.url } });
    const error = await client.models
      .generateContent({ model: 'openai:gpt-4o', contents: 'x' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(404);
    const res = await fetch(`${proxy.url}/v1beta/models/openai:gpt-4o:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': LIMITED_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'x' }] }] }),
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: {
        code: 404,
        message: "The model 'openai:gpt-4o' does not exist or you do not have access to it.",
        status: 'NOT_FOUND',
      },
    });
  });

  it('refuses a session command naming a model the key may not use, or no model, and stores nothing', async () => {
    const client = new OpenAI({
      baseURL: `${proxy.url}/v1`,
      apiKey: LIMITED_KEY,
      maxRetries: 0,
      defaultHeaders: { 'x-session-id': 'allow-list-commands' },
    });
    const say = async (content: string) => {
      const res = await client.chat.completions.create({
        model: 'mock:m',
        messages: [{ role: 'user', content }],
      });
      return res.choices[0]?.message.content ?? '';
    };
    const refusals: Array<[string, string]> = [
      [
        '!/set(model=openai:gpt-4o)',
        "!/set: 'openai:gpt-4o' is not among the models this key may use (its `models:` allow-list)",
      ],
      [
        '!/oneoff(openai:gpt-4o)',
        "!/oneoff: 'openai:gpt-4o' is not among the models this key may use (its `models:` allow-list)",
      ],
      // A chain is judged element by element, as a request naming it is: the one refused is named.
      [
        '!/set(model=mock:a|openai:gpt-4o)',
        "!/set: 'openai:gpt-4o' is not among the models this key may use (its `models:` allow-list)",
      ],
      ['!/set(model=mock:)', "!/set: 'mock:' names backend 'mock' but no model, e.g. mock:<model>"],
    ];
    for (const [command, why] of refusals) {
      const reply = await say(command);
      expect(reply).toContain(why);
      // The reply is the command error, with the valid forms.
      expect(reply).toContain('!/set(model=backend:model)');
    }
    expect(await say('!/session')).toBe("This session has no settings: the client's own choices apply.");
    expect(await say('!/set(model=openai:gpt-4o-mini)')).toBe(
      'Set for this session: model=openai:gpt-4o-mini.',
    );
    expect(await say('!/oneoff(mock:any)')).toBe('The next request goes to mock:any.');
    // Each element of this chain is one the key may use.
    expect(await say('!/set(model=mock:a|openai:gpt-4o-mini)')).toBe(
      'Set for this session: model=mock:a|openai:gpt-4o-mini.',
    );
  });

  it('never sent a refused request upstream', () => {
    expect(
      upstream.requests.map((request) => (request.body as { model?: string } | undefined)?.model),
    ).toEqual(['gpt-4o-mini']);
  });
});

describe('expired keys', () => {
  let proxy: ProxyProcess | undefined;
  afterEach(async () => {
    await proxy?.stop();
  });

  it('answers 401 "key expired" and never counts it: ten of them do not block the address', async () => {
    const keysFile = join(dir, 'expiring.txt');
    writeFileSync(
      keysFile,
      `old:${EXPIRED_KEY} expires_at=2020-01-01T00:00:00Z\nnow:${BOB_KEY} expires_at=2999-01-01\n`,
      {
        mode: 0o600,
      },
    );
    proxy = await startProxyProcess(
      ['--api-keys-file', keysFile, '--default-backend', 'mock', '--auth-blocked-delay', '0'],
      {
        LLM_INTERACTIVE_PROXY_ADMIN_KEY: ADMIN_KEY,
      },
    );
    const client = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: EXPIRED_KEY, maxRetries: 0 });
    for (let i = 0; i < 10; i++) {
      const error = await client.chat.completions
        .create({ model: 'mock:echo', messages: [{ role: 'user', content: 'x' }] })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
      expect((error as InstanceType<typeof OpenAI.AuthenticationError>).error).toEqual({
        message: 'API key expired: ask the operator of this proxy for a new key.',
        type: 'invalid_request_error',
        code: 'key_expired',
        param: null,
      });
    }
    // Not blocked (five failures would have been), not even tracked.
    const fresh = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: BOB_KEY, maxRetries: 0 });
    const answer = await fresh.chat.completions.create({
      model: 'mock:echo',
      messages: [{ role: 'user', content: 'ok' }],
    });
    expect(answer.choices[0]?.message.content).toBe('ok');
    const blocks = JSON.parse((await call(proxy, 'GET', '/admin/auth/blocks', bearer(ADMIN_KEY))).text) as {
      tracked: number;
    };
    expect(blocks.tracked).toBe(0);
    const metrics = (await call(proxy, 'GET', '/metrics', bearer(ADMIN_KEY))).text;
    expect(metrics).toMatch(/^llm_proxy_auth_failures_total\{reason="expired"\} 10$/m);
    expect(metrics).not.toMatch(/reason="invalid"/);
    // The proxy writes its log asynchronously: wait for the tenth line rather than read a half-flushed pipe.
    const running = proxy;
    await vi.waitFor(() => {
      const logged = jsonLines(running).filter(
        (line) => line.msg === 'Authentication refused: API key "old" has expired',
      );
      expect(logged).toHaveLength(10);
    });
    expect(proxy.stdout()).not.toContain(EXPIRED_KEY);
  });
});

describe('strict validation at startup', () => {
  it.each<[string, string, string]>([
    [
      'a YAML limit out of range',
      'auth:\n  api_keys:\n    - {name: a, sha256: ' + 'a'.repeat(64) + ', rpm: 0}\n',
      'auth.api_keys.0.rpm: expected integer >= 1',
    ],
    [
      'an unknown role',
      'auth:\n  api_keys:\n    - {name: a, sha256: ' + 'a'.repeat(64) + ', role: root}\n',
      'auth.api_keys.0.role: expected one of "client", "admin"',
    ],
    [
      'a bad expiry',
      'auth:\n  api_keys:\n    - {name: a, key: teams-secret-0123456789, expires_at: soon}\n',
      'auth.api_keys.0.expires_at: expected an RFC 3339 date-time with its offset (2027-01-01T00:00:00Z) or a date (2027-01-01)',
    ],
    [
      'a budget period',
      'auth:\n  policies:\n    team-a: {budget: {usd: 5, per: year}}\n',
      'auth.policies.team-a.budget.per: expected one of "day", "week", "month", "total"',
    ],
    [
      'a reserved name',
      'auth:\n  api_keys:\n    - {name: none, key: teams-secret-0123456789}\n',
      'auth.api_keys.0.name: key name "none" is reserved (the proxy\'s name for requests without a key on ' +
        '/metrics): give the key another name',
    ],
    [
      'both key and sha256',
      'auth:\n  api_keys:\n    - {name: a, key: teams-secret-0123456789, sha256: ' + 'a'.repeat(64) + '}\n',
      'auth.api_keys.0: expected exactly one of key or sha256',
    ],
  ])('refuses %s, naming the YAML path and never the key', async (_what, yaml, message) => {
    const configFile = join(dir, 'bad.yaml');
    writeFileSync(configFile, yaml);
    const result = await runCli(['--config', configFile, '--port', '0'], {
      LLM_INTERACTIVE_PROXY_API_KEY: CLIENT_KEY,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`llm-interactive-proxy: ${message} (in ${configFile})\n`);
    expect(result.stderr).not.toContain('teams-secret');
  });

  it('refuses a key named as the proxy names a trusted address without a key, naming the line', async () => {
    const keysFile = join(dir, 'reserved-keys.txt');
    writeFileSync(keysFile, `a:${CLIENT_KEY}\ntrusted-ip:teams-secret-0123456789\n`, { mode: 0o600 });
    const result = await runCli(['--api-keys-file', keysFile, '--trusted-ip', '127.0.0.1', '--port', '0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `llm-interactive-proxy: api keys file ${keysFile}: keys file line 2: key name "trusted-ip" is reserved ` +
        "(the proxy's name for requests from a --trusted-ip address that send no key): give the key another name\n",
    );
    expect(result.stderr).not.toContain('teams-secret');
  });

  it('refuses a keys file line with a bad attribute, naming the line', async () => {
    const keysFile = join(dir, 'bad-keys.txt');
    writeFileSync(keysFile, `a:${CLIENT_KEY} role=root\n`, { mode: 0o600 });
    const result = await runCli(['--api-keys-file', keysFile, '--port', '0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `llm-interactive-proxy: api keys file ${keysFile}: keys file line 1: role= must be client or admin\n`,
    );
  });
});
