import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { rawRequest } from './helpers/http.js';
import { startProxyProcess } from './helpers/proxy-process.js';
import { backendsAt } from './reliability/support.js';

/**
 * Capture is complete (README, Wire capture): every answer the proxy gives has its `outbound_response` line —
 * its own 4xx, 404s and authentication refusals included — and every call to a backend its
 * `outbound_request` line with the headers sent, redacted.
 */
const KEY = 'capture-complete-proxy-key-0123456789';
const WRONG = 'capture-complete-wrong-key-9876543210';
const PROVIDER_KEYS = ['sk-provider-openai-000', 'sk-ant-provider-000', 'AIza-provider-000'];

interface Event {
  request_id: string;
  direction: string;
  headers?: Record<string, string>;
  payload?: unknown;
  key_name?: { proxy?: string; provider?: string };
  backend?: string;
  metadata?: Record<string, unknown>;
}

let upstream: FakeProvider;
let dir: string;
let text = '';
let events: Event[] = [];
const statuses = new Map<string, number>();
const bodies = new Map<string, string>();

const auth = { authorization: `Bearer ${KEY}` };
const json = { 'content-type': 'application/json' };

/** Each request, named by the request id it sends: [id, path, options]. */
const REQUESTS: Array<[string, string, Parameters<typeof rawRequest>[2]]> = [
  ['bad-json', '/v1/chat/completions', { method: 'POST', headers: { ...auth, ...json }, body: '{"model":' }],
  [
    'too-large',
    '/anthropic/v1/messages',
    { method: 'POST', headers: { ...auth, ...json }, body: JSON.stringify({ pad: 'x'.repeat(5000) }) },
  ],
  [
    'wrong-type',
    '/v1/chat/completions',
    { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'hi' },
  ],
  [
    'no-model',
    '/v1/chat/completions',
    { method: 'POST', headers: { ...auth, ...json }, body: '{"messages":[]}' },
  ],
  [
    'gemini-action',
    '/v1beta/models/gemini-mock-flash:nonsense',
    { method: 'POST', headers: { ...auth, ...json }, body: '{"contents":[]}' },
  ],
  ['unknown-route', '/v1/nowhere', { headers: auth }],
  ['missing-key', '/v1/chat/completions', { method: 'POST', headers: json, body: '{}' }],
  ['wrong-key', '/v1/models', { headers: { authorization: `Bearer ${WRONG}` } }],
  ['models', '/v1/models', { headers: auth }],
  [
    'pass-through',
    '/anthropic/v1/messages',
    {
      method: 'POST',
      headers: { 'x-api-key': KEY, ...json, 'anthropic-beta': 'beta-flag-1' },
      body: JSON.stringify({
        model: 'anthropic:claude-mock-1',
        max_tokens: 20,
        messages: [{ role: 'user', content: 'hello' }],
      }),
    },
  ],
];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lip-capture-complete-'));
  upstream = await startFakeProvider();
  const proxy = await startProxyProcess(
    ['--default-backend', 'openai', '--capture-file', join(dir, 'cap.jsonl'), '--max-body-bytes', '4096'],
    backendsAt(upstream.url, KEY),
  );
  try {
    for (const [id, path, options] of REQUESTS) {
      const res = await rawRequest(proxy.url, path, {
        ...options,
        headers: { ...options?.headers, 'x-request-id': id },
      });
      statuses.set(id, res.status);
      bodies.set(id, res.body);
    }
  } finally {
    expect(await proxy.stop()).toBe(0);
  }
  text = readFileSync(join(dir, 'cap.jsonl'), 'utf8');
  events = text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Event);
});

afterAll(async () => {
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

const answersOf = (id: string) =>
  events.filter((e) => e.request_id === id && e.direction === 'outbound_response');

describe('capture is complete', () => {
  it.each([
    ['bad-json', 400, 'invalid_json'],
    ['too-large', 413, 'request_too_large'],
    ['wrong-type', 415, 'unsupported_media_type'],
    ['no-model', 400, 'missing_required_parameter'],
    ['gemini-action', 404, 'not_found'],
  ])("records the proxy's own %s answer (%i) on the chat lane", (id, status, code) => {
    expect(statuses.get(id)).toBe(status);
    const [answer, ...more] = answersOf(id);
    expect(more).toEqual([]);
    expect(answer?.metadata).toMatchObject({ status, method: 'POST', code });
    // What the client got, exactly.
    expect(answer?.payload).toEqual(JSON.parse(bodies.get(id)!));
    expect(answer?.key_name).toEqual({ proxy: 'env' });
  });

  it("records Fastify's answers: a 404 for an unknown route, and a model list", () => {
    expect(statuses.get('unknown-route')).toBe(404);
    expect(answersOf('unknown-route')).toMatchObject([
      { metadata: { status: 404, method: 'GET', url: '/v1/nowhere' }, key_name: { proxy: 'env' } },
    ]);
    expect(answersOf('models')).toMatchObject([
      { metadata: { status: 200 }, payload: { object: 'list' }, key_name: { proxy: 'env' } },
    ]);
  });

  it('records a refusal with no key name, no request headers and no body of the client', () => {
    for (const id of ['missing-key', 'wrong-key']) {
      expect(statuses.get(id)).toBe(401);
      const all = events.filter((e) => e.request_id === id);
      expect(all.map((e) => e.direction)).toEqual(['outbound_response']);
      expect(all[0]?.key_name).toBeUndefined();
      expect(all[0]?.headers).toBeUndefined();
      expect(all[0]?.metadata?.status).toBe(401);
      expect(all[0]?.payload).toEqual(JSON.parse(bodies.get(id)!));
      expect(JSON.stringify(all[0]?.payload)).toContain('invalid_api_key');
    }
    expect(events.find((e) => e.request_id === 'missing-key')?.metadata?.refused).toBe('missing');
    expect(text).not.toContain(WRONG);
  });

  it('records the headers of a call to a backend, the provider key redacted', () => {
    const sent = events.find((e) => e.request_id === 'pass-through' && e.direction === 'outbound_request');
    expect(sent?.headers).toEqual({
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'anthropic-version': '2023-06-01',
      'anthropic-beta': 'beta-flag-1',
      'x-api-key': '****',
    });
    expect(answersOf('pass-through')).toHaveLength(1);
    for (const key of [KEY, ...PROVIDER_KEYS]) expect(text).not.toContain(key);
  });
});
