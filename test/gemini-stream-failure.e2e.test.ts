import { request } from 'node:http';
import { ApiError, GoogleGenAI } from '@google/genai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess, type ProxyProcess } from './helpers/proxy-process.js';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';

// A Gemini client's stream that fails after its first bytes ends in the error event and then a cut
// connection (no chunked terminator), so that a Gemini SDK that reads past the event still fails rather
// than taking the cut answer for the whole one. Clients of the other protocols keep a clean end.
const KEY = 'gemini-stream-failure-key-0123456789';

let proxy: ProxyProcess;
let provider: FakeProvider;

beforeAll(async () => {
  provider = await startFakeProvider();
  proxy = await startProxyProcess(['--default-backend', 'gemini'], {
    LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    ANTHROPIC_API_KEY: 'sk-ant-provider-key-abcdefghijkl',
    ANTHROPIC_API_BASE_URL: provider.baseUrls.anthropic,
    GEMINI_API_KEY: 'AIzaProviderKeyForGeminiTests0123456789',
    GEMINI_API_BASE_URL: provider.baseUrls.gemini,
  });
});

afterAll(async () => {
  await proxy?.stop();
  await provider?.close();
});

/** One streamed answer over node:http: its text, and whether its body ended as HTTP says it should. */
function streamed(path: string, body: object, headers: Record<string, string>) {
  return new Promise<{ status: number; text: string; complete: boolean }>((resolve, reject) => {
    const req = request(`${proxy.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      // 'aborted' / 'error' come with a cut body; 'close' always.
      res.on('error', () => undefined);
      res.on('close', () => resolve({ status: res.statusCode ?? 0, text, complete: res.complete }));
    });
    req.end(JSON.stringify(body));
  });
}

const geminiStream = (model: string) =>
  streamed(
    `/v1beta/models/${model}:streamGenerateContent?alt=sse`,
    { contents: [{ role: 'user', parts: [{ text: 'hello there friend' }] }] },
    { 'x-goog-api-key': KEY },
  );

describe('a Gemini client whose stream fails mid-way', () => {
  it.each([
    ['translated, the backend ends in its error event', 'anthropic:claude-fault-error-mid-stream', 529],
    ['translated, the backend connection breaks', 'anthropic:claude-fault-reset-mid-stream', 502],
    ['translated, the backend stops before its end', 'anthropic:claude-fault-truncated-stream', 502],
    ['passed through, the backend ends in its error event', 'gemini:gemini-fault-error-mid-stream', 503],
    ['passed through, the backend connection breaks', 'gemini:gemini-fault-reset-mid-stream', 502],
    ['passed through, the backend stops before its end', 'gemini:gemini-fault-truncated-stream', 502],
  ])('%s: the text so far, the error event, then a cut connection', async (_, model, code) => {
    const answer = await geminiStream(model);
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('"text":"echo: ');
    const events = answer.text.split(/\r?\n\r?\n/).filter(Boolean);
    expect(JSON.parse(events.at(-1)!.slice('data: '.length))).toMatchObject({
      error: { code, status: expect.any(String) as string },
    });
    expect(answer.complete).toBe(false);
  });

  it('@google/genai raises it', async () => {
    const gemini = new GoogleGenAI({ apiKey: KEY, httpOptions: { baseUrl: proxy.url } });
    let text = '';
    const read = async () => {
      const stream = await gemini.models.generateContentStream({
        model: 'anthropic:claude-fault-reset-mid-stream',
        contents: 'hello there friend',
      });
      for await (const chunk of stream) text += chunk.text ?? '';
    };
    const failure = await read().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).status).toBe(502);
    expect(text).toBe('echo: ');
  });

  it('a stream that does not fail still ends cleanly', async () => {
    for (const model of ['anthropic:claude-x', 'gemini:gemini-x']) {
      const answer = await geminiStream(model);
      expect(answer.text).toContain('"finishReason":"STOP"');
      expect(answer.complete).toBe(true);
    }
  });
});

describe('clients of the other protocols keep a clean end after the error event', () => {
  it('Anthropic and OpenAI chat', async () => {
    const anthropic = await streamed(
      '/anthropic/v1/messages',
      {
        model: 'anthropic:claude-fault-error-mid-stream',
        max_tokens: 64,
        stream: true,
        messages: [{ role: 'user', content: 'hello there friend' }],
      },
      { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
    );
    expect(anthropic.text).toContain('event: error');
    expect(anthropic.complete).toBe(true);
    const openai = await streamed(
      '/v1/chat/completions',
      {
        model: 'anthropic:claude-fault-error-mid-stream',
        stream: true,
        messages: [{ role: 'user', content: 'hello there friend' }],
      },
      { authorization: `Bearer ${KEY}` },
    );
    expect(openai.text).toContain('data: {"error":');
    expect(openai.complete).toBe(true);
  });
});
