// The benchmark's translation part, without timing: the fake provider's canned answers are what the official
// SDKs accept, the part reads them as the SDKs do, and its SUMMARY3 line has the documented format.
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLIENTS,
  readStream,
  scenarioRows,
  streamedText,
  translationSummary,
  translationTargets,
  type TranslationRow,
} from '../bench/lib/translation.mjs';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';

const MARKER = 'bench-mock-answer';
const CHUNKS = 20;
const ANSWER_START = `${MARKER}: Here is a short answer`;

let provider: FakeProvider;
beforeAll(async () => {
  provider = await startFakeProvider({ canned: { marker: MARKER, streamChunks: CHUNKS } });
});
afterAll(() => provider.close());

describe('canned answers through the official SDKs', () => {
  it('OpenAI chat: whole and streamed', async () => {
    const client = new OpenAI({ baseURL: provider.baseUrls.openai, apiKey: 'k', maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: 'hi' }];
    const whole = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(whole.choices[0]?.message.content?.startsWith(ANSWER_START)).toBe(true);
    expect(whole.choices[0]?.finish_reason).toBe('stop');
    let text = '';
    let finish: string | null | undefined = null;
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(streamedText(CHUNKS));
    expect(finish).toBe('stop');
  });

  it('Anthropic messages: whole and streamed, the real event sequence', async () => {
    const client = new Anthropic({ baseURL: provider.url, apiKey: 'k', maxRetries: 0 });
    const request = { model: 'claude-3-5-haiku-20241022', max_tokens: 100, messages: [] };
    const whole = await client.messages.create(request);
    const block = whole.content[0];
    expect(block?.type === 'text' && block.text.startsWith(ANSWER_START)).toBe(true);
    expect(whole.stop_reason).toBe('end_turn');
    expect(whole.usage).toEqual({ input_tokens: 42, output_tokens: 180 });
    const final = await client.messages.stream(request).finalMessage();
    expect(final.content).toEqual([{ type: 'text', text: streamedText(CHUNKS) }]);
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage.output_tokens).toBe(180);
  });

  it('Anthropic stream: the real event sequence, ping included (the SDK hides pings)', async () => {
    const res = await fetch(`${provider.url}/v1/messages`, {
      method: 'POST',
      body: JSON.stringify(CLIENTS.anthropic('claude-3-5-haiku-20241022', true).body),
    });
    const events = readStream('anthropic', await res.text()).events as Array<{ type: string }>;
    expect(events.map((event) => event.type)).toEqual([
      'message_start',
      'content_block_start',
      'ping',
      ...Array.from({ length: CHUNKS }, () => 'content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
  });

  it('Gemini: generateContent and streamGenerateContent', async () => {
    const client = new GoogleGenAI({ apiKey: 'k', httpOptions: { baseUrl: provider.url } });
    const request = { model: 'gemini-2.0-flash', contents: 'hi' };
    const whole = await client.models.generateContent(request);
    expect(whole.text?.startsWith(ANSWER_START)).toBe(true);
    expect(whole.candidates?.[0]?.finishReason).toBe('STOP');
    expect(whole.usageMetadata?.totalTokenCount).toBe(222);
    let text = '';
    const finishes: unknown[] = [];
    for await (const chunk of await client.models.generateContentStream(request)) {
      text += chunk.text ?? '';
      finishes.push(chunk.candidates?.[0]?.finishReason);
    }
    expect(text).toBe(streamedText(CHUNKS));
    expect(finishes).toEqual([...Array.from({ length: CHUNKS - 1 }, () => undefined), 'STOP']);
  });
});

describe('the translation part reads streams as each protocol ends them', () => {
  for (const client of ['openai', 'anthropic', 'gemini'] as const) {
    it(`${client}: every piece and the proper end; a stream cut short is not ended`, async () => {
      // The canned mock answers at the backends' paths; the client's own request shape and body go along.
      const paths = {
        openai: '/v1/chat/completions',
        anthropic: '/v1/messages',
        gemini: '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse',
      };
      const res = await fetch(`${provider.url}${paths[client]}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(CLIENTS[client]('m', true).body),
      });
      const body = await res.text();
      expect(readStream(client, body)).toMatchObject({ text: streamedText(CHUNKS), ended: true });
      const cut = body.slice(0, body.lastIndexOf('data: '));
      expect(readStream(client, cut).ended).toBe(false);
    });
  }

  it('asks each protocol the way its SDK does', () => {
    expect(CLIENTS.gemini('openai:gpt-4o-mini', true).path).toBe(
      '/v1beta/models/openai:gpt-4o-mini:streamGenerateContent?alt=sse',
    );
    expect(CLIENTS.gemini('openai:gpt-4o-mini', false).path).toBe(
      '/v1beta/models/openai:gpt-4o-mini:generateContent',
    );
    expect(CLIENTS.anthropic('m', true)).toMatchObject({
      path: '/anthropic/v1/messages',
      body: { model: 'm', stream: true, max_tokens: 1024 },
    });
    expect(Object.keys(CLIENTS.anthropic('m', true).headers).sort()).toEqual([
      'anthropic-version',
      'x-api-key',
    ]);
    expect(Object.keys(CLIENTS.gemini('m', true).headers)).toEqual(['x-goog-api-key']);
    expect(CLIENTS.openai('m', false)).toMatchObject({
      path: '/v1/chat/completions',
      body: { stream: false },
    });
  });
});

describe('targets and their references', () => {
  const instances = {
    project: { origin: 'http://project', pid: 1 },
    captured: { origin: 'http://captured', pid: 2 },
    uncaptured: { origin: 'http://uncaptured', pid: 3 },
    capturePair: 'anthropic>openai',
  };

  it("judges each pair by its client's same-protocol path on the project", () => {
    const targets = translationTargets(instances);
    const pairs = targets.filter((t) => t.origin === 'http://project');
    expect(pairs).toHaveLength(9);
    expect(pairs.find((t) => t.name === 'gemini>anthropic')).toMatchObject({
      reference: 'gemini>gemini',
      pid: 1,
    });
  });

  it('judges the capture pair by the same pair on an instance of its own with capture off', () => {
    const targets = translationTargets(instances);
    expect(targets.slice(9)).toMatchObject([
      {
        name: 'capture-off:anthropic>openai',
        origin: 'http://uncaptured',
        pid: 3,
        reference: 'capture-off:anthropic>openai',
        captureOff: true,
        streamOnly: true,
      },
      {
        name: 'capture:anthropic>openai',
        origin: 'http://captured',
        pid: 2,
        reference: 'capture-off:anthropic>openai',
        capture: true,
        streamOnly: true,
      },
    ]);
    const run = (reqPerSec: number, cpuUs: number) => ({ reqPerSec, mean: 1, p99: 2, cpuUs });
    const runs = new Map([
      ['capture-off:anthropic>openai', [run(1000, 200), run(2000, 210), run(1000, 190)]],
      ['capture:anthropic>openai', [run(700, 300), run(1200, 320), run(900, 280)]],
    ]);
    const rows = scenarioRows(targets.slice(9), runs);
    // The median of the rounds' own ratios (0.7, 0.6, 0.9), not the ratio of the medians.
    expect(rows[1]).toMatchObject({ capture: true, ratio: 0.7, cpuUs: 300, refCpuUs: 200 });
    expect(rows[0]).toMatchObject({ captureOff: true, ratio: 1 });
    const summary = translationSummary([{ stream: true, rows }]);
    expect(summary.line).toMatch(
      /^SUMMARY3 xlate_capture_on\/off_anthropic>openai_stream=0\.70x\(ok\)\[cpu=300\/200us\] \(/,
    );
  });
});

describe('SUMMARY3', () => {
  const row = (
    name: string,
    reference: string,
    ratio: number,
    cpuUs: number,
    capture = false,
  ): TranslationRow => {
    const [client, backend] = name.replace('capture:', '').split('>') as ['openai', 'anthropic'];
    return {
      name,
      client,
      backend,
      reference,
      capture,
      reqPerSec: 1,
      mean: 1,
      p99: 1,
      cpuUs,
      refCpuUs: 300,
      ratio,
    };
  };

  it('gives each translated pair and the capture pair, judged against its target; same-protocol rows are references', () => {
    const summary = translationSummary([
      {
        stream: false,
        rows: [
          row('openai>openai', 'openai>openai', 1, 300),
          row('openai>anthropic', 'openai>openai', 0.8, 390.4),
        ],
      },
      {
        stream: true,
        rows: [
          row('openai>openai', 'openai>openai', 1, 300),
          row('openai>anthropic', 'openai>openai', 0.62, 612),
          row('capture:openai>anthropic', 'openai>anthropic', 0.7, 700, true),
        ],
      },
    ]);
    expect(summary.line).toBe(
      'SUMMARY3 xlate_openai>anthropic_nonstream=0.80x(ok)[cpu=390/300us] ' +
        'xlate_openai>anthropic_stream=0.62x(MISS)[cpu=612/300us] ' +
        'xlate_capture_on/off_openai>anthropic_stream=0.70x(ok)[cpu=700/300us] ' +
        '(targets vs the same-protocol path of the client: stream >=0.7x, non-stream >=0.8x; ' +
        'capture on/off >=0.7x)',
    );
    expect(summary.allOk).toBe(false);
  });

  it('is all ok when every ratio meets its target', () => {
    const summary = translationSummary([
      { stream: true, rows: [row('gemini>openai', 'gemini>gemini', 0.7, 400)] },
      { stream: false, rows: [row('gemini>openai', 'gemini>gemini', 0.81, 400)] },
    ]);
    expect(summary.allOk).toBe(true);
  });

  it("judges the project's RSS after the load against 120 MB, with its start, peak and idle readings", () => {
    const rows = [{ stream: true, rows: [row('gemini>openai', 'gemini>gemini', 0.7, 400)] }];
    const memory = { startMb: 88.4, peakMb: 131.2, endMb: 118.6, idleMb: 101.1, idleS: 60 };
    const ok = translationSummary(rows, memory);
    expect(ok.line).toContain(' xlate_rss=119MB(ok)[start=88,peak=131,idle_60s=101MB] ');
    expect(ok.allOk).toBe(true);
    const over = translationSummary(rows, { ...memory, endMb: 121 });
    expect(over.line).toContain(' xlate_rss=121MB(MISS)[start=88,peak=131,idle_60s=101MB] ');
    expect(over.allOk).toBe(false);
  });
});
