/**
 * Every request the real coding agents were recorded sending (test/fixtures/clients/, README.md there) is
 * replayed through the built proxy to a backend of each protocol, and the answer is held to the EXPECTED
 * table below: what the proxy does TODAY, pair by pair, refusals included.
 *
 * The goal is every pair 200. The table shrinks as translation lands: when a change makes a refused pair
 * work, this test fails on that row until the row says 200 — which is the point.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from '../fake-provider/index.mjs';
import { CREDENTIAL_HEADERS, PLACEHOLDER } from '../fixtures/clients/sanitize.mjs';
import { rawRequest } from '../helpers/http.js';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/clients/', import.meta.url));
const KEY = 'conformance-proxy-key-0123456789';
const PROVIDER_KEYS = {
  openai: 'sk-conformance-openai-provider-key',
  anthropic: 'sk-ant-conformance-provider-key',
  gemini: 'AIzaConformanceProviderKey0123456789',
};

type Backend = 'openai' | 'anthropic' | 'gemini';
const BACKENDS: Backend[] = ['openai', 'anthropic', 'gemini'];
type FrontEnd = Backend | 'responses';

/** Per front-end: the proxy path for a recorded provider path, how the proxy key is sent, how a stream ends. */
const FRONT_ENDS: Record<
  FrontEnd,
  { matches: RegExp; proxyPath: (path: string) => string; key: Record<string, string>; streamEnd: string }
> = {
  anthropic: {
    matches: /^\/v1\/messages\b/,
    proxyPath: (path) => `/anthropic${path}`,
    key: { 'x-api-key': KEY },
    streamEnd: 'event: message_stop',
  },
  gemini: {
    matches: /^\/v1beta\/models\//,
    proxyPath: (path) => path,
    key: { 'x-goog-api-key': KEY },
    streamEnd: '"finishReason"',
  },
  openai: {
    matches: /^\/v1\/chat\/completions\b/,
    proxyPath: (path) => path,
    key: { authorization: `Bearer ${KEY}` },
    streamEnd: 'data: [DONE]',
  },
  responses: {
    matches: /^\/v1\/responses\b/,
    proxyPath: (path) => path,
    key: { authorization: `Bearer ${KEY}` },
    streamEnd: 'event: response.completed',
  },
};

/** Where each backend protocol's chat calls arrive at the fake provider. */
const BACKEND_PATHS: Record<Backend, RegExp> = {
  openai: /^\/v1\/chat\/completions$/,
  anthropic: /^\/v1\/messages$/,
  gemini: /^\/v1beta\/models\/[^/]+:(streamGenerateContent\?alt=sse|generateContent)$/,
};

type Expected = { status: 200 } | { status: 400; field: string } | { status: 404 };
const OK: Expected = { status: 200 };

/**
 * Fixture (folder/file under test/fixtures/clients) × backend → what the proxy answers today. A new
 * recording needs its rows here (a test checks that every fixture has one and every row a fixture).
 */
const EXPECTED: Record<string, Record<Backend, Expected>> = {
  'claude-2.1.332/01-post-v1-messages.json': { openai: OK, anthropic: OK, gemini: OK },
  'claude-2.1.332/02-post-v1-messages.json': { openai: OK, anthropic: OK, gemini: OK },
  'gemini-0.61.0/01-post-v1beta-models-gemini-2-5-flash-streamgeneratecontent.json': {
    openai: OK,
    anthropic: OK,
    gemini: OK,
  },
  'gemini-0.61.0/02-post-v1beta-models-gemini-2-5-flash-streamgeneratecontent.json': {
    openai: OK,
    anthropic: OK,
    gemini: OK,
  },
  'opencode-1.18.33/01-post-v1-chat-completions.json': { openai: OK, anthropic: OK, gemini: OK },
  'opencode-1.18.33/02-post-v1-chat-completions.json': { openai: OK, anthropic: OK, gemini: OK },
  'opencode-1.18.33/03-post-v1-chat-completions.json': { openai: OK, anthropic: OK, gemini: OK },
  // Codex speaks only the Responses API: passed through to the openai backend, translated to the others
  // (its hosted tools, tool_search included, dropped with notice).
  'codex-0.171.0/01-post-v1-responses.json': { openai: OK, anthropic: OK, gemini: OK },
  'codex-0.171.0/02-post-v1-responses.json': { openai: OK, anthropic: OK, gemini: OK },
  // Codex's default model: no `tools`, its tools in an `additional_tools` input item, grouped in namespaces
  // (flattened for a translated backend: src/protocols/responses/tool-namespaces.ts).
  'codex-0.171.0-default/01-post-v1-responses.json': { openai: OK, anthropic: OK, gemini: OK },
};

interface Fixture {
  id: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

function loadFixtures(): Fixture[] {
  const folders = readdirSync(FIXTURES, { withFileTypes: true }).filter((e) => e.isDirectory());
  return folders.flatMap((folder) =>
    readdirSync(`${FIXTURES}${folder.name}`)
      .filter((file) => file.endsWith('.json'))
      .map((file) => {
        const recorded = JSON.parse(readFileSync(`${FIXTURES}${folder.name}/${file}`, 'utf8')) as Fixture;
        return { ...recorded, id: `${folder.name}/${file}` };
      }),
  );
}

const fixtures = loadFixtures();

function frontEndOf(fixture: Fixture): FrontEnd {
  const found = (Object.keys(FRONT_ENDS) as FrontEnd[]).find((f) => FRONT_ENDS[f].matches.test(fixture.path));
  if (!found) throw new Error(`${fixture.id}: no front-end serves ${fixture.path}`);
  return found;
}

/** The recorded headers with the credential placeholders out and the proxy key in, as the client sends it. */
function headersFor(fixture: Fixture, frontEnd: FrontEnd): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(fixture.headers)) {
    if (!CREDENTIAL_HEADERS.includes(name)) headers[name] = value;
  }
  return { ...headers, ...FRONT_ENDS[frontEnd].key };
}

let provider: FakeProvider;
const proxies = {} as Record<Backend, ProxyProcess>;

beforeAll(async () => {
  provider = await startFakeProvider({ keys: PROVIDER_KEYS });
  // One proxy per backend, each sending every request to its backend (the models the agents name are kept).
  await Promise.all(
    BACKENDS.map(async (backend) => {
      proxies[backend] = await startProxyProcess(['--default-backend', backend], {
        LLM_INTERACTIVE_PROXY_API_KEY: KEY,
        OPENAI_API_KEY: PROVIDER_KEYS.openai,
        OPENAI_API_BASE_URL: provider.baseUrls.openai,
        ANTHROPIC_API_KEY: PROVIDER_KEYS.anthropic,
        ANTHROPIC_API_BASE_URL: provider.baseUrls.anthropic,
        GEMINI_API_KEY: PROVIDER_KEYS.gemini,
        GEMINI_API_BASE_URL: provider.baseUrls.gemini,
      });
    }),
  );
});

afterAll(async () => {
  await Promise.all(Object.values(proxies).map((proxy) => proxy.stop()));
  await provider?.close();
});

describe('the recorded corpus', () => {
  it('has a row in EXPECTED for every fixture, and a fixture for every row', () => {
    expect(fixtures.map((f) => f.id).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it('carries no credential: every key header holds the placeholder', () => {
    for (const fixture of fixtures) {
      for (const name of CREDENTIAL_HEADERS) {
        if (name in fixture.headers) expect(fixture.headers[name], `${fixture.id} ${name}`).toBe(PLACEHOLDER);
      }
    }
  });
});

const cases = fixtures.flatMap((fixture) => BACKENDS.map((backend) => ({ fixture, backend })));

describe.each(cases)('$fixture.id to the $backend backend', ({ fixture, backend }) => {
  const expected = EXPECTED[fixture.id]?.[backend];
  const frontEnd = frontEndOf(fixture);

  it(`answers ${JSON.stringify(expected)}`, async () => {
    if (!expected) throw new Error(`no row in EXPECTED for ${fixture.id}`);
    const before = provider.requests.length;
    const res = await rawRequest(proxies[backend].url, FRONT_ENDS[frontEnd].proxyPath(fixture.path), {
      method: fixture.method,
      headers: headersFor(fixture, frontEnd),
      body: JSON.stringify(fixture.body),
    });
    const reached = provider.requests.slice(before);
    expect(res.status, res.body.slice(0, 500)).toBe(expected.status);

    if (expected.status === 200) {
      // One call, to the backend's protocol — or, the openai backend speaking the Responses API too, the
      // Responses request passed through — with the provider's key (never the proxy's).
      const passedThrough = backend === frontEnd || (frontEnd === 'responses' && backend === 'openai');
      const path = passedThrough && frontEnd === 'responses' ? /^\/v1\/responses$/ : BACKEND_PATHS[backend];
      expect(reached.map((r) => r.url)).toEqual([expect.stringMatching(path)]);
      const [call] = reached;
      if (passedThrough) expect(call?.body).toEqual(fixture.body);
      const isStream = fixture.body.stream === true || fixture.path.includes('streamGenerateContent');
      if (isStream) expect(res.body).toContain(FRONT_ENDS[frontEnd].streamEnd);
    } else {
      expect(reached).toEqual([]);
      const message = (JSON.parse(res.body) as { error: { message: string } }).error.message;
      if (expected.status === 400) expect(message).toContain(`'${expected.field}'`);
      else expect(message).toBe(`No route for POST ${fixture.path}`);
    }
  });
});
