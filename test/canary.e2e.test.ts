import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli, startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startRedisServer } from './helpers/redis-server.js';
import { rawExchange } from './reliability/support.js';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';

/**
 * The canary test (README, Key hygiene): real traffic with canary secrets, then every byte the proxy wrote —
 * stdout, stderr, its log file, every capture file, every response body — is searched for them. Zero hits.
 * Run at debug and at trace level (where the HTTP server logs what it could not parse), with well-formed
 * traffic and with requests the proxy must refuse: broken HTTP, oversized headers, bad JSON, a body over
 * the limit.
 */
const CANARY = {
  proxy: 'canary-proxy-key-Zq7xW2vB9nL4',
  teamKey: 'canary-team-key-Hy3kP8sD1mR6',
  openai: 'sk-proj-CANARYopenaiKey1234567890abcdef',
  anthropic: 'sk-ant-CANARYanthropicKey1234567890abc',
  gemini: 'AIzaCANARYgeminiKey1234567890abcdefghij',
  authToken: 'canary-auth-token-Qm5tV0cX2',
  poolKey1: 'sk-or-v1-CANARYpoolKeyOne1234567890abcdef',
  poolKey2: 'sk-or-v1-CANARYpoolKeyTwo1234567890abcdef',
  wrongKey: 'canary-wrong-key-Jd8fL3nZ7',
  stateSecret: 'canary-state-secret-Wn4rT8yK2pL6vB0xQ3mZ7cJ1',
  adminKey: 'canary-admin-key-Wf4rT9yU2pE5',
  limitedKey: 'canary-limited-key-Bn6gH1jK8',
  expiredKey: 'canary-expired-key-Lp0oI9uY7',
};

const sha256 = (key: string) => createHash('sha256').update(key).digest('hex');

/** Keys with a policy: one limited to the openai backend's models and 1 request a minute, one past its expiry. */
const POLICY_YAML = [
  'auth:',
  '  api_keys:',
  `    - {name: limited, sha256: ${sha256(CANARY.limitedKey)}, models: ["openai:*"], rpm: 1}`,
  `    - {name: expired, sha256: ${sha256(CANARY.expiredKey)}, expires_at: "2020-01-01"}`,
  '',
].join('\n');

/** Small enough that a body over it is quick to send; every well-formed request below fits. */
const MAX_BODY_BYTES = 65_536;

/** Requests the proxy refuses, each carrying canaries where a careless log would copy them. */
function malformedRequests(): Array<[string, string]> {
  const creds = `Authorization: Bearer ${CANARY.proxy}\r\nx-api-key: ${CANARY.wrongKey}\r\n`;
  const json = (body: string) =>
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const badJson = `{"model":"gpt-4o","messages":[{"role":"user","content":"${CANARY.openai} ${CANARY.teamKey}"}`;
  const overLimit = JSON.stringify({
    model: 'gpt-4o',
    messages: [{ role: 'user', content: `${CANARY.anthropic} ${'x'.repeat(MAX_BODY_BYTES)}` }],
  });
  return [
    [
      'invalid header',
      `GET /v1/models HTTP/1.1\r\nHost: a\r\n${creds}Bad Header ${CANARY.authToken}\r\n\r\n`,
    ],
    ['invalid method', `G@T /v1/models?key=${CANARY.teamKey} HTTP/1.1\r\nHost: a\r\n${creds}\r\n`],
    ['header overflow', `GET /v1/models HTTP/1.1\r\nHost: a\r\n${creds}X-Big: ${'y'.repeat(20_000)}\r\n\r\n`],
    [
      'length and chunked',
      `POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n${creds}Transfer-Encoding: chunked\r\n` +
        json(`${CANARY.gemini}`),
    ],
    ['bad JSON (chat)', `POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n${creds}${json(badJson)}`],
    [
      'bad JSON (anthropic)',
      `POST /anthropic/v1/messages HTTP/1.1\r\nHost: a\r\nx-api-key: ${CANARY.teamKey}\r\n${json(badJson)}`,
    ],
    ['body over the limit', `POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n${creds}${json(overLimit)}`],
  ];
}

/**
 * Every JSON array of byte values in `text` (how JSON writes a Buffer), decoded: a secret written as bytes
 * is still written.
 */
function withBytesDecoded(text: string): string {
  const arrays = text.match(/\[\d{1,3}(?:,\d{1,3}){3,}\]/g) ?? [];
  return arrays.map((a) => Buffer.from(JSON.parse(a) as number[]).toString('latin1')).join('\n');
}

describe.each(['debug', 'trace'])('canary at log level %s: no secret ever leaves the proxy', (level) => {
  let openai: FakeProvider;
  /** Behind a provider key pool (OPENROUTER_API_KEY_1, _2). */
  let openrouter: FakeProvider;
  const closers: Array<() => Promise<void>> = [];
  let proxy: ProxyProcess;
  let dir: string;
  const bodies: string[] = [];
  const refused: Array<[string, number]> = [];
  /** /metrics and /admin/usage by model once secrets were sent as model names. */
  let metricsText = '';
  let usageByModel = '';
  /** The proxy's own answers that quote a secret the client sent. */
  const ownAnswers: string[] = [];

  const record = async (res: Response): Promise<Response> => {
    bodies.push(await res.clone().text());
    bodies.push(JSON.stringify([...res.headers]));
    return res;
  };
  /** fetch that keeps every response body and header for the final search. */
  const recordingFetch: typeof fetch = async (input, init) => record(await fetch(input, init));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lip-canary-'));
    writeFileSync(join(dir, 'config.yaml'), POLICY_YAML);
    openai = await startFakeProvider();
    const anthropic = await startFakeProvider({ keys: { anthropic: CANARY.anthropic } });
    const gemini = await startFakeProvider({ keys: { gemini: CANARY.gemini } });
    openrouter = await startFakeProvider();
    closers.push(
      () => openrouter.close(),
      () => openai.close(),
      () => anthropic.close(),
      () => gemini.close(),
    );
    proxy = await startProxyProcess(
      [
        '--default-backend',
        'openai',
        '--log-file',
        join(dir, 'proxy.log'),
        '--capture-file',
        join(dir, 'capture.jsonl'),
        '--capture-max-bytes',
        '20000',
        '--capture-max-files',
        '50',
        '--log-level',
        level,
        '--max-body-bytes',
        String(MAX_BODY_BYTES),
        '--config',
        join(dir, 'config.yaml'),
        '--usage-file',
        join(dir, 'usage.jsonl'),
      ],
      {
        LLM_INTERACTIVE_PROXY_API_KEY: CANARY.proxy,
        LLM_INTERACTIVE_PROXY_ADMIN_KEY: CANARY.adminKey,
        API_KEYS: CANARY.teamKey,
        OPENAI_API_KEY: CANARY.openai,
        OPENAI_API_BASE_URL: openai.baseUrls.openai,
        ANTHROPIC_API_KEY: CANARY.anthropic,
        ANTHROPIC_API_BASE_URL: anthropic.baseUrls.anthropic,
        GEMINI_API_KEY: CANARY.gemini,
        GEMINI_API_BASE_URL: gemini.baseUrls.gemini,
        AUTH_TOKEN: CANARY.authToken,
        // Set with the memory state store too: still a secret, redacted like the others.
        PROXY_STATE_SECRET: CANARY.stateSecret,
        OPENROUTER_API_KEY_1: CANARY.poolKey1,
        OPENROUTER_API_KEY_2: CANARY.poolKey2,
        OPENROUTER_API_BASE_URL: openrouter.baseUrls.openai,
      },
    );

    // --- the traffic ---
    const oa = new OpenAI({
      baseURL: `${proxy.url}/v1`,
      apiKey: CANARY.proxy,
      maxRetries: 0,
      fetch: recordingFetch,
    });
    const secretPrompt = `my keys are ${CANARY.openai} and ${CANARY.proxy} and ${CANARY.anthropic}`;
    const echoed = await oa.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: secretPrompt }],
    });
    expect(echoed.choices[0]?.message.content).toContain('(API_KEY_HAS_BEEN_REDACTED)');
    const stream = await oa.chat.completions.create({
      model: 'gpt-4o',
      stream: true,
      messages: [
        { role: 'user', content: `stream ${CANARY.gemini} ${CANARY.teamKey} ${CANARY.stateSecret}` },
      ],
    });
    for await (const _ of stream) void _;
    // A backend error body that echoes the provider key it was sent.
    await oa.chat.completions
      .create({ model: 'fault-key-in-error', messages: [{ role: 'user', content: 'x' }] })
      .catch(() => undefined);
    // A key pool: both keys echoed back in errors (each then out of rotation), then a failover chain.
    for (let i = 0; i < 2; i++) {
      await oa.chat.completions
        .create({ model: 'openrouter:fault-key-in-error', messages: [{ role: 'user', content: 'x' }] })
        .catch(() => undefined);
    }
    await oa.chat.completions.create({
      model: 'openrouter:fault-key-in-error-text|openai:gpt-4o',
      messages: [{ role: 'user', content: `pool ${CANARY.poolKey1}` }],
    });
    // Failed authentication, the wrong key in a header and in the query string.
    await recordingFetch(`${proxy.url}/v1/models`, {
      headers: { authorization: `Bearer ${CANARY.wrongKey}` },
    });
    await recordingFetch(`${proxy.url}/v1/models?key=${CANARY.wrongKey}`);
    // A path its warning quotes cut short (256 characters), 20 characters into a secret.
    await recordingFetch(`${proxy.url}/v1/models/${'a'.repeat(225)}${CANARY.authToken}`, {
      headers: { authorization: `Bearer ${CANARY.wrongKey}` },
    });
    // Refused on the chat lane, the wrong key in the query string: the refusal has its capture line.
    await recordingFetch(`${proxy.url}/v1beta/models/gpt-4o:generateContent?key=${CANARY.wrongKey}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: CANARY.teamKey }] }] }),
    });
    // A valid key in the query string (Gemini REST style).
    await recordingFetch(`${proxy.url}/v1beta/models/openai:gpt-4o:generateContent?key=${CANARY.proxy}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        contents: [{ role: 'user', parts: [{ text: `gemini rest ${CANARY.openai}` }] }],
      }),
    });
    const an = new Anthropic({
      baseURL: `${proxy.url}/anthropic`,
      apiKey: CANARY.teamKey,
      maxRetries: 0,
      fetch: recordingFetch,
    });
    await an.messages.create({
      model: 'anthropic:claude',
      max_tokens: 200,
      messages: [{ role: 'user', content: `hi ${CANARY.anthropic}` }],
    });
    await an.messages
      .stream({
        model: 'gemini:gemini-2.0-flash',
        max_tokens: 200,
        messages: [{ role: 'user', content: `s ${CANARY.proxy}` }],
      })
      .finalMessage();
    // Reasoning signed by Gemini, wrapped for the Anthropic client, given back changed: dropped and logged
    // (README, "Reasoning between families"); the log line names its place, never a value or the secret.
    const lookup = [{ name: 'lookup', input_schema: { type: 'object' as const } }];
    const thought = await an.messages.create({
      model: 'gemini:gemini-3-thinking',
      max_tokens: 200,
      tools: lookup,
      messages: [{ role: 'user', content: `think ${CANARY.gemini}` }],
    });
    const call = thought.content.find((b) => b.type === 'tool_use');
    await an.messages.create({
      model: 'gemini:gemini-3-thinking',
      max_tokens: 200,
      tools: lookup,
      messages: [
        { role: 'user', content: `think ${CANARY.gemini}` },
        {
          role: 'assistant',
          content: thought.content.map((b) =>
            b.type === 'thinking' ? { ...b, signature: `${b.signature.slice(0, -1)}~` } : b,
          ),
        },
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: call?.id ?? '', content: `r ${CANARY.stateSecret}` }],
        },
      ],
    });
    await vi.waitFor(() => expect(proxy.stdout()).toContain('Reasoning signature dropped'));
    // The Responses API: passed through (openai), translated (anthropic), stored and read back.
    const made = await oa.responses.create({ model: 'gpt-4o', input: secretPrompt });
    expect(made.output_text).toContain('(API_KEY_HAS_BEEN_REDACTED)');
    await oa.responses.retrieve(made.id);
    const translated = await oa.responses
      .stream({ model: 'anthropic:claude', input: `responses ${CANARY.anthropic} ${CANARY.teamKey}` })
      .finalResponse();
    await oa.responses.retrieve(translated.id);
    await oa.responses.create({ model: 'fault-key-in-error', input: 'x' }).catch(() => undefined);
    await oa.responses.create({ model: 'anthropic:fault-key-in-error', input: 'x' }).catch(() => undefined);
    // The proxy's own answers quote what the client sent (an id, a model, a command): a secret sent there
    // comes back masked, never whole, nor cut short (a cut secret is no longer recognised: its start shows).
    const ask = async (path: string, init: RequestInit = {}) => {
      const res = await recordingFetch(`${proxy.url}${path}`, {
        ...init,
        headers: {
          authorization: `Bearer ${CANARY.proxy}`,
          ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
      });
      ownAnswers.push(await res.text());
    };
    const quoted = CANARY.authToken;
    /** Longer than what a reply quotes of a bad command (40 characters). */
    const long = CANARY.stateSecret;
    await ask(`/v1/responses/${quoted}`);
    await ask(`/v1/responses/${quoted}`, { method: 'DELETE' });
    await ask(`/v1/responses/${quoted}/input_items`);
    await ask(`/v1/responses/${translated.id}/input_items?after=${quoted}`);
    await ask('/v1/responses', {
      method: 'POST',
      body: JSON.stringify({ model: 'gpt-4o', input: 'x', previous_response_id: quoted }),
    });
    const command = (content: string) =>
      ask('/v1/chat/completions', {
        method: 'POST',
        body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }] }),
      });
    for (const content of [
      `!/set(model=openai:${quoted})`,
      `!/route(${quoted})`,
      `!/${long}`,
      `!/set(${quoted}=1)`,
      '!/unset(model)',
    ])
      await command(content);
    // Quoted cut short, 20 characters into the secret.
    await ask(`/${'a'.repeat(179)}${long}`);
    const ge = new GoogleGenAI({ apiKey: CANARY.proxy, httpOptions: { baseUrl: proxy.url } });
    await ge.models.generateContent({ model: 'anthropic:claude', contents: `gemini sdk ${CANARY.gemini}` });
    // Token counts carry prompts too: passed through (scrubbed) and estimated locally.
    await an.messages.countTokens({
      model: 'anthropic:claude',
      messages: [{ role: 'user', content: `count ${CANARY.anthropic} ${CANARY.proxy}` }],
    });
    await ge.models.countTokens({ model: 'gemini:gemini-2.0-flash', contents: `count ${CANARY.gemini}` });
    await ge.models.countTokens({ model: 'openai:gpt-4o', contents: `estimate ${CANARY.openai}` });
    // The operator endpoints: refused (403) with a client key, served with the admin key.
    for (const key of [CANARY.proxy, CANARY.adminKey]) {
      await recordingFetch(`${proxy.url}/internal/health`, { headers: { 'x-api-key': key } });
      await recordingFetch(`${proxy.url}/metrics`, { headers: { 'x-api-key': key } });
      await recordingFetch(`${proxy.url}/admin/auth/blocks`, { headers: { 'x-api-key': key } });
    }
    await recordingFetch(`${proxy.url}/admin/reload?key=${CANARY.adminKey}`, { method: 'POST' });
    // The admin key for chat, in a prompt too; a model outside an allow-list that quotes a key; an expired key.
    const asAdmin = new OpenAI({
      baseURL: `${proxy.url}/v1`,
      apiKey: CANARY.adminKey,
      fetch: recordingFetch,
    });
    await asAdmin.chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: `admin ${CANARY.adminKey}` }],
    });
    const limited = new OpenAI({
      baseURL: `${proxy.url}/v1`,
      apiKey: CANARY.limitedKey,
      maxRetries: 0,
      fetch: recordingFetch,
    });
    const notFound = await limited.chat.completions
      .create({ model: `anthropic:${CANARY.adminKey}`, messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
    // A model name quoted cut short (200 characters), 20 characters into the secret.
    const cutModel = await limited.chat.completions
      .create({
        model: `anthropic:${'x'.repeat(170)}${CANARY.stateSecret}`,
        messages: [{ role: 'user', content: 'x' }],
      })
      .catch((e: unknown) => e);
    expect(cutModel).toBeInstanceOf(OpenAI.NotFoundError);
    ownAnswers.push((cutModel as Error).message);
    // Its one request a minute, then a 429 (limits), and its filtered model list. Configured by its hash
    // only, the key is known to the proxy once presented (above): redacted from the prompt — on its way
    // upstream, in the capture and the debug log — like every other key.
    const prompt = [{ role: 'user' as const, content: `limited ${CANARY.limitedKey}` }];
    await limited.chat.completions.create({ model: 'openai:gpt-4o', messages: prompt });
    const refusedByLimit = await limited.chat.completions
      .create({ model: 'openai:gpt-4o', messages: prompt })
      .catch((e: unknown) => e);
    expect(refusedByLimit).toBeInstanceOf(OpenAI.RateLimitError);
    await limited.models.list();
    const expired = await recordingFetch(`${proxy.url}/v1/models`, {
      headers: { authorization: `Bearer ${CANARY.expiredKey}` },
    });
    expect(expired.status).toBe(401);
    for (const [what, bytes] of malformedRequests()) {
      const answer = await rawExchange(proxy.url, bytes);
      refused.push([what, answer.status]);
      bodies.push(answer.raw);
    }
    // Secrets sent as model names (the mock answers any): counted, written and reported masked. The answers
    // name the model the client asked for, as providers' do, to the client that sent it: not searched.
    for (const [secret, stream] of [
      [CANARY.teamKey, false],
      [CANARY.openai, true],
      [CANARY.adminKey, false],
    ] as const) {
      const res = await fetch(`${proxy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${CANARY.proxy}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: `mock:${secret}`, stream, messages: [{ role: 'user', content: 'x' }] }),
      });
      expect(res.status).toBe(200);
      await res.text();
    }
    await vi.waitFor(async () => {
      const res = await recordingFetch(`${proxy.url}/metrics`, { headers: { 'x-api-key': CANARY.adminKey } });
      metricsText = await res.text();
      expect(metricsText).toContain('model="sk-proj-****"');
    });
    // Usage names keys, never their values, even asked for by a secret.
    for (const query of [
      'group_by=key',
      'group_by=model',
      `group_by=model&key=${CANARY.teamKey}`,
      `label=${CANARY.proxy}`,
    ]) {
      const usage = await recordingFetch(`${proxy.url}/admin/usage?${query}`, {
        headers: { authorization: `Bearer ${CANARY.adminKey}` },
      });
      expect(usage.status).toBe(200);
      if (query === 'group_by=model') usageByModel = await usage.text();
    }
    expect(await proxy.stop()).toBe(0);
  });

  afterAll(async () => {
    await proxy?.stop();
    for (const close of closers) await close();
  });

  it('finds no canary in stdout, stderr, the log file, any capture file or any response', () => {
    const captureFiles = readdirSync(dir).filter((f) => f.startsWith('capture.jsonl'));
    expect(captureFiles.length).toBeGreaterThan(1); // rotation happened: every rotated file is searched too
    const written: Record<string, string> = {
      stdout: proxy.stdout(),
      stderr: proxy.stderr(),
      'proxy.log': readFileSync(join(dir, 'proxy.log'), 'utf8'),
      'usage.jsonl': readFileSync(join(dir, 'usage.jsonl'), 'utf8'),
      responses: bodies.join('\n'),
    };
    for (const f of captureFiles) written[f] = readFileSync(join(dir, f), 'utf8');
    for (const [where, text] of Object.entries(written)) {
      if (where !== 'stderr') expect(text.length, `${where} is empty`).toBeGreaterThan(0);
      const searched = text + withBytesDecoded(text);
      for (const [name, canary] of Object.entries(CANARY)) {
        expect(searched.includes(canary), `${name} canary found in ${where}`).toBe(false);
        // Nor its start, as a cut would leave it.
        expect(searched.includes(canary.slice(0, 16)), `${name} canary's start found in ${where}`).toBe(
          false,
        );
      }
    }
  });

  it('quotes client text in its answers and logs with the secrets in it masked, before any cut', () => {
    const said = ownAnswers.join('\n');
    expect(said.match(/Response with id '\*\*\*\*' not found\./g)).toHaveLength(4);
    expect(said).toContain("no input item '****' in this response");
    expect(said).toContain('Set for this session: model=openai:****.');
    expect(said).toContain("!/route: '****' is not a configured route");
    expect(said).toContain("'!/****' is not a command");
    expect(said).toContain("cannot set '****'");
    expect(said).toContain(`No route for GET /${'a'.repeat(179)}****`);
    expect(said).toContain(`The model 'anthropic:${'x'.repeat(170)}****' does not exist`);
    // And so do its logs: the path of a failed authentication.
    expect(readFileSync(join(dir, 'proxy.log'), 'utf8')).toContain(
      `"path":"/v1/models/${'a'.repeat(225)}****"`,
    );
  });

  it('logs each pool key leaving the rotation by its env var name and place, never its value', () => {
    const lines = [proxy.stdout(), readFileSync(join(dir, 'proxy.log'), 'utf8')]
      .join('\n')
      .split('\n')
      .filter((l) => l.includes('"Provider key out of rotation"'));
    const named = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(
      named.map(
        ({ backend, key_name, position }) => `${String(backend)} ${String(key_name)} ${String(position)}`,
      ),
    ).toContain('openrouter OPENROUTER_API_KEY_1 1');
    expect(named.map(({ key_name }) => key_name)).toContain('OPENROUTER_API_KEY_2');
    for (const line of lines) {
      expect(line).not.toContain(CANARY.poolKey1);
      expect(line).not.toContain(CANARY.poolKey2);
    }
  });

  it('counts a secret sent as a model name under its mask: /metrics, /admin/usage, the usage file', () => {
    expect(metricsText).toMatch(
      /llm_proxy_tokens_total\{key="env",backend="mock",model="\*\*\*\*",direction="input"\}/,
    );
    expect(metricsText).toContain('backend="mock",model="sk-proj-****"');
    const models = (JSON.parse(usageByModel) as { groups: Array<{ model: string }> }).groups.map(
      (g) => g.model,
    );
    expect(models).toEqual(expect.arrayContaining(['mock:****', 'mock:sk-proj-****']));
    const written = readFileSync(join(dir, 'usage.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { backend: string; model: string })
      .filter((entry) => entry.backend === 'mock')
      .map((entry) => entry.model);
    expect(written.sort()).toEqual(['****', '****', 'sk-proj-****']);
  });

  it('refused every malformed request with the right status', () => {
    expect(refused).toEqual([
      ['invalid header', 400],
      ['invalid method', 400],
      ['header overflow', 431],
      ['length and chunked', 400],
      ['bad JSON (chat)', 400],
      ['bad JSON (anthropic)', 400],
      ['body over the limit', 413],
    ]);
    // At trace level the HTTP server's parse errors are logged, without the packet's bytes.
    const log = readFileSync(join(dir, 'proxy.log'), 'utf8');
    if (level === 'trace') expect(log).toMatch(/"rawPacket":"\[\d+ bytes withheld\]"/);
    expect(log).not.toMatch(/"data":\[\d/);
  });

  it('shows the expected redaction marks where secrets were', () => {
    const capture = readdirSync(dir)
      .filter((f) => f.startsWith('capture.jsonl'))
      .map((f) => readFileSync(join(dir, f), 'utf8'))
      .join('\n');
    expect(capture).toContain('Bearer ****');
    expect(capture).toContain('sk-proj-****');
    expect(capture).toContain('(API_KEY_HAS_BEEN_REDACTED)');
    // Calls to backends record the headers sent, each provider's key masked.
    const sent = capture
      .split('\n')
      .filter((line) => line.includes('"direction":"outbound_request"'))
      .map((line) => (JSON.parse(line) as { headers?: Record<string, string> }).headers ?? {});
    expect(sent.some((h) => h.authorization === 'Bearer ****')).toBe(true);
    expect(sent.some((h) => h['x-api-key'] === '****')).toBe(true);
    expect(sent.some((h) => h['x-goog-api-key'] === '****')).toBe(true);
    // Refusals have their answer's line too, with the key in the URL masked.
    expect(capture).toMatch(/"direction":"outbound_response".*"status":401/);
    // The upstream's error body echoed the provider key: the client saw it scrubbed.
    expect(bodies.join('\n')).toMatch(/Incorrect API key provided: Bearer \*\*\*\*|sk-proj-\*\*\*\*/);
  });

  it('never sent the proxy key upstream, and sent secrets in prompts only as the redaction mark', () => {
    const upstreamSaw = JSON.stringify(openai.requests);
    expect(upstreamSaw).not.toContain(CANARY.proxy);
    expect(upstreamSaw).not.toContain(CANARY.teamKey);
    expect(upstreamSaw).not.toContain(CANARY.adminKey);
    expect(upstreamSaw).not.toContain(CANARY.limitedKey);
    expect(upstreamSaw).toContain('(API_KEY_HAS_BEEN_REDACTED)');
    for (const req of openai.requests) expect(req.headers.authorization).toBe(`Bearer ${CANARY.openai}`);
    // The pool rotated over both of its keys.
    expect(openrouter.requests.map((r) => r.headers.authorization)).toEqual(
      expect.arrayContaining([`Bearer ${CANARY.poolKey1}`, `Bearer ${CANARY.poolKey2}`]),
    );
  });
});

/** Every key of a Redis server and its raw contents, whatever their type. */
async function redisDump(url: string): Promise<string> {
  const client = new Redis(url);
  try {
    const parts: string[] = [];
    for (const key of await client.keys('*')) {
      const type = await client.type(key);
      parts.push(key);
      if (type === 'string') parts.push(String(await client.get(key)));
      else if (type === 'hash') parts.push(JSON.stringify(await client.hgetall(key)));
      else if (type === 'zset') parts.push(JSON.stringify(await client.zrange(key, 0, -1, 'WITHSCORES')));
      else parts.push(`(${type})`);
    }
    return parts.join('\n');
  } finally {
    client.disconnect();
  }
}

describe('canary with the Redis state store: PROXY_STATE_SECRET never leaves the proxy', () => {
  it('is in no output, response or Redis value, and not in a refusal to start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lip-canary-state-'));
    const redis = await startRedisServer();
    const upstream = await startFakeProvider();
    const bodies: string[] = [];
    let proxy: ProxyProcess | undefined;
    try {
      proxy = await startProxyProcess(
        [
          '--default-backend',
          'openai',
          '--state-store',
          redis.url,
          '--trusted-proxy',
          '127.0.0.1/8',
          '--log-level',
          'trace',
          '--log-file',
          join(dir, 'proxy.log'),
          '--capture-file',
          join(dir, 'capture.jsonl'),
        ],
        {
          LLM_INTERACTIVE_PROXY_API_KEY: CANARY.proxy,
          LLM_INTERACTIVE_PROXY_ADMIN_KEY: CANARY.adminKey,
          OPENAI_API_KEY: CANARY.openai,
          OPENAI_API_BASE_URL: upstream.baseUrls.openai,
          PROXY_STATE_SECRET: CANARY.stateSecret,
        },
      );
      const url = proxy.url;
      const call = async (path: string, init: RequestInit = {}) => {
        const res = await fetch(`${url}${path}`, init);
        bodies.push(await res.text(), JSON.stringify([...res.headers]));
        return res.status;
      };
      const chat = (key: string, content: string) =>
        call('/v1/chat/completions', {
          method: 'POST',
          headers: {
            authorization: `Bearer ${key}`,
            'content-type': 'application/json',
            'x-forwarded-for': '203.0.113.90',
          },
          body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }] }),
        });
      expect(await chat(CANARY.proxy, `the state secret is ${CANARY.stateSecret}`)).toBe(200);
      // Failures from another address stay in Redis as brute-force records.
      for (let i = 0; i < 3; i++) expect(await chat(CANARY.wrongKey, CANARY.stateSecret)).toBe(401);
      // A forwarded-for value that is no address, from the trusted proxy: its warning quotes it cut short
      // (64 characters), 24 characters into the secret.
      const garbled = await fetch(`${url}/v1/models`, {
        headers: {
          authorization: `Bearer ${CANARY.proxy}`,
          'x-forwarded-for': `${'g'.repeat(40)}${CANARY.stateSecret}`,
        },
      });
      bodies.push(await garbled.text());
      await vi.waitFor(() =>
        expect(readFileSync(join(dir, 'proxy.log'), 'utf8')).toContain(`"value":"${'g'.repeat(40)}****"`),
      );
      for (const path of ['/internal/health', '/metrics']) {
        expect(await call(path, { headers: { 'x-api-key': CANARY.adminKey } })).toBe(200);
      }
      expect(await proxy.stop()).toBe(0);
      const refused = await runCli(['--state-store', redis.url], {
        LLM_INTERACTIVE_PROXY_API_KEY: CANARY.proxy,
        PROXY_STATE_SECRET: CANARY.stateSecret.slice(0, 20),
      });
      expect(refused.code).toBe(1);

      const written: Record<string, string> = {
        stdout: proxy.stdout(),
        stderr: proxy.stderr(),
        'proxy.log': readFileSync(join(dir, 'proxy.log'), 'utf8'),
        'capture.jsonl': readFileSync(join(dir, 'capture.jsonl'), 'utf8'),
        responses: bodies.join('\n'),
        'upstream requests': JSON.stringify(upstream.requests),
        redis: await redisDump(redis.url),
        'refusal to start': refused.stderr,
      };
      expect(written.redis).toContain('llm-interactive-proxy:{brute-force}:c:203.0.113.90');
      for (const [where, text] of Object.entries(written)) {
        if (where !== 'stderr') expect(text.length, `${where} is empty`).toBeGreaterThan(0);
        const searched = text + withBytesDecoded(text);
        for (const secret of [
          CANARY.stateSecret,
          CANARY.stateSecret.slice(0, 20),
          CANARY.proxy,
          CANARY.wrongKey,
        ]) {
          expect(searched.includes(secret), `a secret found in ${where}`).toBe(false);
        }
      }
    } finally {
      await proxy?.stop();
      await upstream.close();
      await redis.stop();
    }
  });
});

describe('wire capture', () => {
  it('records both legs and both directions, with key names and never key values', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lip-capture-'));
    const upstream = await startFakeProvider();
    const proxy = await startProxyProcess(
      ['--default-backend', 'openai', '--capture-file', join(dir, 'cap.jsonl')],
      {
        LLM_INTERACTIVE_PROXY_API_KEY: CANARY.proxy,
        OPENAI_API_KEY: CANARY.openai,
        OPENAI_API_BASE_URL: upstream.baseUrls.openai,
      },
    );
    try {
      const oa = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: CANARY.proxy, maxRetries: 0 });
      await oa.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'whole' }] });
      const s = await oa.chat.completions.create({
        model: 'gpt-4o',
        stream: true,
        messages: [{ role: 'user', content: 'streamed' }],
      });
      for await (const _ of s) void _;
    } finally {
      expect(await proxy.stop()).toBe(0);
      await upstream.close();
    }
    const events = readFileSync(join(dir, 'cap.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const directions = events.map((e) => e.direction);
    for (const d of [
      'inbound_request',
      'outbound_request',
      'inbound_response',
      'outbound_response',
      'stream_start',
      'stream_chunk',
      'stream_end',
    ]) {
      expect(directions).toContain(d);
    }
    const legs = events
      .filter((e) => e.direction === 'stream_end')
      .map((e) => (e.metadata as { leg: string }).leg);
    expect(legs.sort()).toEqual(['inbound', 'outbound']);
    const first = events[0]!;
    expect(first).toMatchObject({
      direction: 'inbound_request',
      backend: 'openai',
      model: 'gpt-4o',
      key_name: { proxy: 'env', provider: 'OPENAI_API_KEY' },
    });
    expect(typeof first.timestamp).toBe('string');
    expect((first.headers as Record<string, string>).authorization).toBe('Bearer ****');
    expect(events.map((e) => e.sequence)).toEqual(
      [...events.keys()].map((i) => (events[0]!.sequence as number) + i),
    );
    const streamedText = events
      .filter((e) => e.direction === 'stream_chunk' && (e.metadata as { leg: string }).leg === 'outbound')
      .map((e) => e.payload)
      .join('');
    expect(streamedText).toContain('"content":"ech');
  });
});

describe('wire capture of translated streams', () => {
  it('redacts the secrets a model streams back, cut across chunks, on both legs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lip-capture-translated-'));
    // The answer (`echo: ` and the prompt) in two pieces cut between the prompt's halves, far enough apart
    // that each leg is recorded in several events.
    const upstream = await startFakeProvider({ chunks: 2, pieceGapMs: 12 });
    const bearer = 'Bearer canaryBearerToken0123456789';
    const keys = `keys ${CANARY.openai} ${CANARY.proxy} ${CANARY.anthropic} ${bearer}`;
    const said = `${keys} ---------- ${keys}`;
    const proxy = await startProxyProcess(
      [
        '--default-backend',
        'openai',
        // The prompt reaches the backend as it is, so that the answer streams the secrets back.
        '--disable-redact-api-keys-in-prompts',
        '--capture-file',
        join(dir, 'cap.jsonl'),
      ],
      {
        LLM_INTERACTIVE_PROXY_API_KEY: CANARY.proxy,
        OPENAI_API_KEY: CANARY.openai,
        OPENAI_API_BASE_URL: upstream.baseUrls.openai,
        ANTHROPIC_API_KEY: CANARY.anthropic,
        ANTHROPIC_API_BASE_URL: upstream.baseUrls.anthropic,
      },
    );
    const got: string[] = [];
    try {
      const an = new Anthropic({ baseURL: `${proxy.url}/anthropic`, apiKey: CANARY.proxy, maxRetries: 0 });
      const message = await an.messages
        .stream({ model: 'openai:gpt-4o', max_tokens: 200, messages: [{ role: 'user', content: said }] })
        .finalMessage();
      got.push(message.content.map((b) => (b.type === 'text' ? b.text : '')).join(''));
      const oa = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: CANARY.proxy, maxRetries: 0 });
      const stream = await oa.chat.completions.create({
        model: 'anthropic:claude',
        stream: true,
        messages: [{ role: 'user', content: said }],
      });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      got.push(text);
    } finally {
      expect(await proxy.stop()).toBe(0);
      await upstream.close();
    }
    // The clients got the secrets back: the streams carried them.
    for (const text of got) expect(text).toContain(said);
    const capture = readFileSync(join(dir, 'cap.jsonl'), 'utf8');
    const events = capture
      .trim()
      .split('\n')
      .map(
        (line) => JSON.parse(line) as { direction: string; payload?: unknown; metadata?: { leg?: string } },
      );
    const legText = (leg: string) =>
      events
        .filter((e) => e.direction === 'stream_chunk' && e.metadata?.leg === leg)
        .map((e) => e.payload as string)
        .join('');
    for (const leg of ['inbound', 'outbound']) {
      const chunks = events.filter((e) => e.direction === 'stream_chunk' && e.metadata?.leg === leg);
      expect(chunks.length, `${leg} chunk events`).toBeGreaterThan(1);
      expect(legText(leg)).toContain('sk-proj-****');
      expect(legText(leg)).toContain('sk-ant-****');
      expect(legText(leg)).toContain('Bearer ****');
    }
    const searched = capture + withBytesDecoded(capture);
    for (const secret of [CANARY.openai, CANARY.proxy, CANARY.anthropic, bearer.slice(7)]) {
      expect(searched.includes(secret), 'a secret found in the capture').toBe(false);
    }
  });
});
