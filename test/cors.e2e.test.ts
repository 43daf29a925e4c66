/**
 * CORS for browser-based chat UIs (README, "Turning it off"): each SDK, as a page would use it, through a
 * fetch that does what a browser does — drops the headers a page may not set, sends the pre-flight with the
 * names of every header that is not CORS-safelisted (Fetch standard, "CORS-unsafe request-header names"),
 * and refuses the request unless the pre-flight grants the origin, the method and every one of those names,
 * then refuses the answer unless it grants the origin. Calls that add headers of their own (the SDKs'
 * stream, parse and tool-runner helpers, betas, session ids) are made to prove their pre-flights pass.
 */
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';

const KEY = 'cors-proxy-key-0123456789abcdef';
const ORIGIN = 'http://chat-ui.example';

/** Headers a page cannot set: the browser leaves them out (and never names them in a pre-flight). */
const FORBIDDEN = new Set([
  'accept-charset',
  'accept-encoding',
  'access-control-request-headers',
  'access-control-request-method',
  'connection',
  'content-length',
  'cookie',
  'cookie2',
  'date',
  'dnt',
  'expect',
  'host',
  'keep-alive',
  'origin',
  'referer',
  'set-cookie',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'via',
]);
const FORBIDDEN_PREFIXES = ['proxy-', 'sec-'];

/** CORS-safelisted request headers (name → is this value safelisted); every other header needs a grant. */
const SAFELISTED: Record<string, (value: string) => boolean> = {
  // No CORS-unsafe request-header byte: a control character but tab, DEL, or one of `"():<>?@[\]{}`.
  accept: (value) =>
    ![...value].some((c) => (c < ' ' && c !== '\t') || c === '\x7f' || '"():<>?@[\\]{}'.includes(c)),
  'accept-language': (value) => /^[0-9A-Za-z *,\-.;=]*$/.test(value),
  'content-language': (value) => /^[0-9A-Za-z *,\-.;=]*$/.test(value),
  'content-type': (value) =>
    ['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain'].includes(
      value.split(';')[0]!.trim().toLowerCase(),
    ),
};

const forbidden = (name: string) =>
  FORBIDDEN.has(name) || FORBIDDEN_PREFIXES.some((prefix) => name.startsWith(prefix));

/** The pre-flight's names, as a browser writes them: lower case, sorted, comma-separated. */
function unsafeNames(headers: Headers): string[] {
  const names: string[] = [];
  headers.forEach((value, name) => {
    const safe = SAFELISTED[name];
    if (!(safe && value.length <= 128 && safe(value))) names.push(name);
  });
  return names.sort();
}

const listOf = (header: string | null) =>
  (header ?? '')
    .split(',')
    .map((item) => item.trim().toLowerCase())
    .filter((item) => item !== '');

interface Preflight {
  method: string;
  path: string;
  asked: string[];
}

/** A browser's fetch from ORIGIN, without credentials; every pre-flight it made is in `preflights`. */
function browserFetch(preflights: Preflight[]): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const method = (init?.method ?? 'GET').toUpperCase();
    const headers = new Headers(init?.headers);
    for (const name of [...headers.keys()]) if (forbidden(name)) headers.delete(name);
    const asked = unsafeNames(headers);
    if (asked.length > 0 || !['GET', 'HEAD', 'POST'].includes(method)) {
      preflights.push({ method, path: url.pathname, asked });
      const pre = await fetch(url, {
        method: 'OPTIONS',
        headers: {
          origin: ORIGIN,
          'access-control-request-method': method,
          ...(asked.length > 0 ? { 'access-control-request-headers': asked.join(',') } : {}),
        },
      });
      await pre.arrayBuffer();
      const fail = (why: string) =>
        new TypeError(`CORS pre-flight of ${method} ${url.pathname} refused: ${why}`);
      if (pre.status < 200 || pre.status > 299) throw fail(`status ${pre.status}`);
      if (!['*', ORIGIN].includes(pre.headers.get('access-control-allow-origin') ?? ''))
        throw fail('origin not allowed');
      const methods = listOf(pre.headers.get('access-control-allow-methods'));
      if (!['get', 'head', 'post'].includes(method.toLowerCase()) && !methods.includes(method.toLowerCase()))
        throw fail(`method ${method} not allowed`);
      // `*` grants every name but `authorization`, and only without credentials: that is the browser's rule.
      const granted = listOf(pre.headers.get('access-control-allow-headers'));
      const missing = asked.filter(
        (name) => !granted.includes(name) && !(granted.includes('*') && name !== 'authorization'),
      );
      if (missing.length > 0) throw fail(`headers not allowed: ${missing.join(', ')}`);
    }
    headers.set('origin', ORIGIN);
    const res = await fetch(url, { ...init, method, headers });
    if (!['*', ORIGIN].includes(res.headers.get('access-control-allow-origin') ?? '')) {
      await res.arrayBuffer();
      throw new TypeError(`CORS: the answer to ${method} ${url.pathname} does not allow ${ORIGIN}`);
    }
    return res;
  };
}

let proxy: ProxyProcess;

beforeAll(async () => {
  proxy = await startProxyProcess(['--default-backend', 'mock'], { LLM_INTERACTIVE_PROXY_API_KEY: KEY });
});

afterAll(async () => {
  await proxy?.stop();
});

function preflight(headers: Record<string, string>, path = '/v1/chat/completions') {
  return fetch(`${proxy.url}${path}`, {
    method: 'OPTIONS',
    headers: { origin: ORIGIN, 'access-control-request-method': 'POST', ...headers },
  });
}

/** Every pre-flight asked for at least these names, and the calls below asked for all of `also`. */
function expectAsked(preflights: Preflight[], everyTime: string[], also: string[]) {
  expect(preflights.length).toBeGreaterThan(0);
  for (const p of preflights) expect(p.asked).toEqual(expect.arrayContaining(everyTime));
  expect(preflights.flatMap((p) => p.asked)).toEqual(expect.arrayContaining(also));
}

describe("a browser page's SDK calls pass their pre-flights", () => {
  it('openai: chat, streamed, parse, runTools, stream helpers, the Responses API, models; session and beta headers', async () => {
    const preflights: Preflight[] = [];
    const client = new OpenAI({
      baseURL: `${proxy.url}/v1`,
      apiKey: KEY,
      maxRetries: 0,
      dangerouslyAllowBrowser: true,
      fetch: browserFetch(preflights),
      // §11.1 session ids (any client's, and Codex's) and an OpenAI-Beta header (passed through, README).
      defaultHeaders: {
        'x-session-id': 'ui-session-1',
        'session-id': 'ui-session-1',
        'OpenAI-Beta': 'responses=v1',
      },
    });
    const messages = [{ role: 'user' as const, content: 'Hello from the browser' }];
    const model = 'mock-model';

    const plain = await client.chat.completions.create({ model, messages });
    expect(plain.choices[0]?.message.content).toContain('Hello from the browser');
    let streamed = '';
    for await (const chunk of await client.chat.completions.create({ model, messages, stream: true }))
      streamed += chunk.choices[0]?.delta.content ?? '';
    expect(streamed).toContain('Hello from the browser');
    const parsed = await client.chat.completions.parse({ model, messages });
    expect(parsed.choices[0]?.message.content).toContain('Hello from the browser');
    const ran = await client.chat.completions
      .runTools({
        model,
        messages,
        tools: [
          {
            type: 'function',
            function: {
              name: 'noop',
              description: 'Does nothing.',
              parameters: { type: 'object', properties: {} },
              parse: JSON.parse,
              function: () => 'ok',
            },
          },
        ],
      })
      .finalContent();
    expect(ran).toContain('Hello from the browser');
    const helper = await client.chat.completions.stream({ model, messages }).finalContent();
    expect(helper).toContain('Hello from the browser');
    const response = await client.responses.create({ model, input: 'Hello from the browser' });
    expect(response.output_text).toContain('Hello from the browser');
    const responseStream = await client.responses
      .stream({ model, input: 'Hello from the browser' })
      .finalResponse();
    expect(responseStream.output_text).toContain('Hello from the browser');
    expect((await client.models.list()).data.length).toBeGreaterThan(0);

    expectAsked(
      preflights,
      [
        'authorization',
        'x-stainless-lang',
        'x-stainless-package-version',
        'x-session-id',
        'session-id',
        'openai-beta',
      ],
      ['content-type', 'user-agent', 'x-stainless-helper-method', 'x-stainless-retry-count'],
    );
  });

  it('anthropic: messages, messages.stream, betas, countTokens, models; browser access and session headers', async () => {
    const preflights: Preflight[] = [];
    const client = new Anthropic({
      baseURL: `${proxy.url}/anthropic`,
      apiKey: KEY,
      maxRetries: 0,
      dangerouslyAllowBrowser: true,
      fetch: browserFetch(preflights),
      defaultHeaders: { 'x-claude-code-session-id': 'ui-session-2' },
    });
    const params = {
      model: 'mock-model',
      max_tokens: 64,
      messages: [{ role: 'user' as const, content: 'Hello from the browser' }],
    };
    const text = (content: Anthropic.ContentBlock[]) =>
      content.map((b) => (b.type === 'text' ? b.text : '')).join('');

    expect(text((await client.messages.create(params)).content)).toContain('Hello from the browser');
    expect(text((await client.messages.stream(params).finalMessage()).content)).toContain(
      'Hello from the browser',
    );
    const beta = await client.beta.messages.create({ ...params, betas: ['interleaved-thinking-2025-05-14'] });
    expect(beta.content.map((b) => (b.type === 'text' ? b.text : '')).join('')).toContain(
      'Hello from the browser',
    );
    expect((await client.messages.countTokens(params)).input_tokens).toBeGreaterThan(0);
    expect((await client.models.list()).data.length).toBeGreaterThan(0);

    expectAsked(
      preflights,
      [
        'anthropic-dangerous-direct-browser-access',
        'anthropic-version',
        'authorization',
        'x-claude-code-session-id',
      ],
      ['anthropic-beta', 'content-type', 'user-agent', 'x-stainless-helper-method', 'x-stainless-timeout'],
    );
  });

  it('@google/genai: generateContent, streamed, countTokens, models', async () => {
    const preflights: Preflight[] = [];
    const client = new GoogleGenAI({
      apiKey: KEY,
      httpOptions: { baseUrl: proxy.url, fetch: browserFetch(preflights), timeout: 60_000 },
    });
    const model = 'mock-model';
    const contents = 'Hello from the browser';

    expect((await client.models.generateContent({ model, contents })).text).toContain(
      'Hello from the browser',
    );
    let streamed = '';
    for await (const chunk of await client.models.generateContentStream({ model, contents }))
      streamed += chunk.text ?? '';
    expect(streamed).toContain('Hello from the browser');
    expect((await client.models.countTokens({ model, contents })).totalTokens).toBeGreaterThan(0);
    expect((await client.models.list()).page.length).toBeGreaterThan(0);

    expectAsked(preflights, ['x-goog-api-client', 'x-goog-api-key'], ['content-type', 'x-server-timeout']);
  });
});

describe('pre-flights', () => {
  it('grant the headers asked for, varying by them, for 10 minutes, never with credentials', async () => {
    const res = await preflight({
      'access-control-request-headers':
        'authorization,content-type,x-custom-header,x-stainless-helper-method',
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-headers')).toBe(
      'authorization,content-type,x-custom-header,x-stainless-helper-method',
    );
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST, DELETE, OPTIONS');
    expect(res.headers.get('access-control-max-age')).toBe('600');
    expect(listOf(res.headers.get('vary'))).toContain('access-control-request-headers');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('without requested headers grant none', async () => {
    const res = await preflight({});
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-headers')).toBeNull();
  });

  it('take header names separated by commas and spaces, and names up to the bounds', async () => {
    const sixtyFour = Array.from({ length: 64 }, (_, i) => `x-h${i}`).join(', ');
    for (const asked of ['x-a , x-b,\tx-c', sixtyFour, `x-${'a'.repeat(2046)}`]) {
      const res = await preflight({ 'access-control-request-headers': asked });
      expect(res.status, asked).toBe(204);
      expect(res.headers.get('access-control-allow-headers')).toBe(asked);
    }
  });

  it('refuse, with no CORS grant, requested headers that are no list of names or are past the bounds', async () => {
    for (const asked of [
      'x-a, bad header', // a space inside a name
      'x-a,,x-b', // an empty name
      'x-a;x-b',
      'x-a,"x-b"',
      'x-é',
      Array.from({ length: 65 }, (_, i) => `x-h${i}`).join(','),
      `x-${'a'.repeat(2047)}`,
    ]) {
      const res = await preflight({ 'access-control-request-headers': asked });
      expect(res.status, asked).toBe(400);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-headers')).toBeNull();
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('invalid_preflight');
      expect(body.error.message).not.toContain(asked);
    }
  });
});

describe('pre-flights with --cors-origin', () => {
  let narrowed: ProxyProcess;
  beforeAll(async () => {
    narrowed = await startProxyProcess(['--default-backend', 'mock', '--cors-origin', ORIGIN], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    });
  });
  afterAll(async () => {
    await narrowed?.stop();
  });

  it('grant the headers asked for to a listed origin, varying by origin and by them', async () => {
    const res = await fetch(`${narrowed.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,x-session-id',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(res.headers.get('access-control-allow-headers')).toBe('authorization,content-type,x-session-id');
    expect(listOf(res.headers.get('vary'))).toEqual(
      expect.arrayContaining(['origin', 'access-control-request-headers']),
    );
  });

  it('do not grant another origin', async () => {
    const res = await fetch(`${narrowed.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://elsewhere.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});
