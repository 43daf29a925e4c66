/**
 * Hostile requests to the chat routes, the proxy's hot path (the chat lane, with Fastify taking whatever the
 * lane leaves): property-based (fast-check) bodies, content types, paths and credentials against the real
 * server on the embedded mock backend. The properties: never a 5xx, never an answer without the key, and
 * with the key, malformed input is the client's error (4xx), never the proxy's.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import { rawExchange } from './support.js';

const KEY = 'Lane-Fuzz-Key_0123456789abcdef';
const RUNS = { numRuns: 200 };
/** Text only a served chat answer holds (the mock echoes the prompt in each protocol's shape). */
const ANSWER_MARKERS = ['"choices"', '"candidates"', '"type":"message"', '"object":"response"', 'data: '];

function post(path: string, headerLines: string[], body: Buffer): Buffer {
  const head =
    `POST ${path} HTTP/1.1\r\nhost: localhost\r\n${headerLines.map((l) => `${l}\r\n`).join('')}` +
    `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

const paths = fc.oneof(
  fc.constantFrom(
    '/v1/chat/completions',
    '/anthropic/v1/messages',
    '/v1/chat/completions?x=1',
    '/v1/responses',
  ),
  fc
    .tuple(
      fc.stringMatching(/^[A-Za-z0-9:._%-]{0,30}$/),
      fc.constantFrom(':generateContent', ':streamGenerateContent?alt=sse', ':streamGenerateContent', ''),
    )
    .map(([model, action]) => `/v1beta/models/${model}${action}`),
);

const contentTypes = fc.constantFrom(
  ['content-type: application/json'],
  ['content-type: application/json; charset=utf-8'],
  ['content-type: APPLICATION/JSON'],
  ['content-type: text/plain'],
  ['content-type: application/x-www-form-urlencoded'],
  [],
);

const messages = fc.array(
  fc.record({ role: fc.constantFrom('user', 'system', 'assistant', 'tool', 42), content: fc.jsonValue() }),
  { maxLength: 3 },
);

/** Responses API input items with hostile values (the codec reads every one of these types). */
const responsesItems = fc.array(
  fc.record(
    {
      type: fc.constantFrom(
        'message',
        'function_call',
        'function_call_output',
        'reasoning',
        'custom_tool_call',
        'custom_tool_call_output',
        'item_reference',
        42,
      ),
      role: fc.constantFrom('user', 'system', 'developer', 'assistant', 42),
      content: fc.jsonValue(),
      call_id: fc.oneof(fc.string({ maxLength: 10 }), fc.jsonValue()),
      arguments: fc.oneof(fc.string({ maxLength: 20 }), fc.jsonValue()),
      output: fc.jsonValue(),
      name: fc.jsonValue(),
    },
    { requiredKeys: ['type'] },
  ),
  { maxLength: 3 },
);

/** Responses API requests (`/v1/responses`, translated to the mock backend) with hostile values. */
const responsesBodies = fc
  .record(
    {
      model: fc.oneof(fc.constant('mock:echo'), fc.jsonValue()),
      input: fc.oneof(fc.string({ maxLength: 20 }), responsesItems, fc.jsonValue()),
      instructions: fc.jsonValue(),
      previous_response_id: fc.oneof(fc.constant('resp_missing'), fc.jsonValue()),
      store: fc.oneof(fc.boolean(), fc.jsonValue()),
      stream: fc.oneof(fc.boolean(), fc.jsonValue()),
      tools: fc.oneof(
        fc.constant([{ type: 'web_search' }, { type: 'custom', name: 'apply_patch' }]),
        fc.jsonValue(),
      ),
      tool_choice: fc.oneof(fc.constantFrom('auto', 'required', { type: 'web_search' }), fc.jsonValue()),
      text: fc.jsonValue(),
      max_output_tokens: fc.jsonValue(),
    },
    { requiredKeys: ['model'] },
  )
  .map((o) => Buffer.from(JSON.stringify(o)));

/** Bodies: plausible chat requests with hostile values, arbitrary JSON, and bytes that are not JSON. */
const bodies = fc.oneof(
  responsesBodies,
  fc
    .record(
      {
        model: fc.oneof(fc.string({ maxLength: 20 }), fc.constant('mock:echo'), fc.jsonValue()),
        messages: fc.oneof(messages, fc.jsonValue()),
        stream: fc.oneof(fc.boolean(), fc.jsonValue()),
        contents: fc.jsonValue(),
      },
      { requiredKeys: [] },
    )
    .map((o) => Buffer.from(JSON.stringify(o))),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  fc
    .constantFrom(
      '{"__proto__":{"polluted":true},"model":"x","messages":[]}',
      '{"constructor":{"prototype":{"polluted":true}},"model":"x","messages":[{"role":"user","content":"hi"}]}',
      `${'['.repeat(5000)}${']'.repeat(5000)}`,
      `{"model":"x","messages":[{"role":"user","content":${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}}]}`,
      '',
    )
    .map((s) => Buffer.from(s)),
);

const credentials = fc.oneof(
  fc.constant([`authorization: Bearer ${KEY}`]),
  fc.constant([`x-api-key: ${KEY}`]),
  fc.constant([`x-goog-api-key: ${KEY}`]),
  fc.constant([]),
  fc.constantFrom(['authorization: Bearer nope'], [`authorization: Basic ${KEY}`], [`x-api-key: ${KEY}x`]),
);

const holdsKey = (lines: readonly string[]) =>
  lines.some((l) => l === `authorization: Bearer ${KEY}` || l.endsWith(`-key: ${KEY}`));

describe('hostile chat requests against the real server (chat lane and Fastify routes)', () => {
  let proxy: ProxyProcess;

  beforeAll(async () => {
    proxy = await startProxyProcess(
      ['--default-backend', 'mock', '--disable-brute-force-protection', '--max-body-bytes', '100000'],
      { LLM_INTERACTIVE_PROXY_API_KEY: KEY },
    );
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it('never a 5xx; no answer without the key; with the key, bad input is a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        paths,
        contentTypes,
        credentials,
        fc.boolean(),
        bodies,
        async (path, type, creds, cors, body) => {
          const lines = [...type, ...creds, ...(cors ? ['origin: http://fuzz.example'] : [])];
          const { status, raw } = await rawExchange(proxy.url, post(path, lines, body));
          const label = `${path} ${JSON.stringify(lines)} ${body.toString('latin1').slice(0, 120)}`;
          expect(status, label).toBeGreaterThanOrEqual(200);
          expect(status, label).toBeLessThan(500);
          if (!holdsKey(creds)) {
            // 400: a URL Fastify's router cannot decode is refused before anything else runs.
            expect([400, 401], label).toContain(status);
            for (const marker of ANSWER_MARKERS) expect(raw, label).not.toContain(marker);
          }
          expect(raw).not.toContain(KEY);
        },
      ),
      RUNS,
    );
    // The server is still healthy afterwards.
    expect((await fetch(`${proxy.url}/health`)).status).toBe(200);
    expect(proxy.stderr()).not.toMatch(/Unhandled|TypeError|RangeError/);
  });

  it('/v1/responses with the key: never a 5xx, and no response.completed after an error event', async () => {
    await fc.assert(
      fc.asyncProperty(responsesBodies, async (body) => {
        const lines = ['content-type: application/json', `authorization: Bearer ${KEY}`];
        const { status, raw } = await rawExchange(proxy.url, post('/v1/responses', lines, body));
        const label = body.toString('latin1').slice(0, 200);
        expect(status, label).toBeGreaterThanOrEqual(200);
        expect(status, label).toBeLessThan(500);
        const failed = raw.indexOf('event: error\n');
        if (failed >= 0) expect(raw.slice(failed), label).not.toContain('response.completed');
      }),
      RUNS,
    );
    expect((await fetch(`${proxy.url}/health`)).status).toBe(200);
    expect(proxy.stderr()).not.toMatch(/Unhandled|TypeError|RangeError/);
  });
});
