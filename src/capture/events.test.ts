import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Redactor } from '../redaction/redactor.js';
import { CaptureRecorder, type CaptureSink } from './events.js';
import { CaptureWriter } from './writer.js';

const PROXY_KEY = 'canary-proxy-key-31337';
const PROVIDER_KEY = 'sk-proj-CanaryProvider0123456789abcdefXYZ';

function memorySink(): CaptureSink & { events: Record<string, unknown>[] } {
  const events: Record<string, unknown>[] = [];
  return {
    events,
    write: (event) => events.push(JSON.parse(JSON.stringify(event)) as Record<string, unknown>),
  };
}

const redactor = new Redactor([PROXY_KEY, PROVIDER_KEY]);

describe('CaptureRecorder', () => {
  it('redacts headers and payload and names keys without their values', () => {
    const sink = memorySink();
    const recorder = new CaptureRecorder(() => redactor, sink);
    recorder.record('inbound_request', {
      request_id: 'req-1',
      client: { address: '127.0.0.1', user_agent: 'openai-node/6' },
      backend: 'openai',
      model: 'gpt-4o',
      key_name: { proxy: 'team-a', provider: 'OPENAI_API_KEY' },
      headers: {
        authorization: `Bearer ${PROXY_KEY}`,
        'content-type': 'application/json',
        'x-echo': PROXY_KEY,
      },
      payload: { messages: [{ role: 'user', content: `my keys: ${PROXY_KEY} ${PROVIDER_KEY}` }] },
      metadata: { url: '/v1/chat/completions?key=abc' },
    });
    expect(sink.events).toEqual([
      {
        request_id: 'req-1',
        direction: 'inbound_request',
        client: { address: '127.0.0.1', user_agent: 'openai-node/6' },
        backend: 'openai',
        model: 'gpt-4o',
        key_name: { proxy: 'team-a', provider: 'OPENAI_API_KEY' },
        headers: { authorization: 'Bearer ****', 'content-type': 'application/json', 'x-echo': '****' },
        payload: { messages: [{ role: 'user', content: 'my keys: **** sk-proj-****' }] },
        metadata: { url: '/v1/chat/completions?key=****' },
      },
    ]);
  });

  it('captures a stream leg with a secret split across chunks redacted', () => {
    const sink = memorySink();
    const recorder = new CaptureRecorder(() => redactor, sink);
    const leg = recorder.openStream('inbound', { request_id: 'req-2', backend: 'openai', model: 'gpt-4o' });
    const wire = `data: {"delta":"the key is ${PROVIDER_KEY} and ${PROXY_KEY}"}\n\n` + 'data: [DONE]\n\n';
    const cuts = [20, 33, 40, 70, 75, wire.length];
    let previous = 0;
    for (const cut of cuts) {
      leg.chunk(wire.slice(previous, cut));
      previous = cut;
    }
    leg.end({ finish_reason: 'stop' });

    const directions = sink.events.map((e) => e['direction']);
    expect(directions[0]).toBe('stream_start');
    expect(directions.at(-1)).toBe('stream_end');
    expect(directions.slice(1, -1).every((d) => d === 'stream_chunk')).toBe(true);
    const text = sink.events
      .filter((e) => e['direction'] === 'stream_chunk')
      .map((e) => e['payload'] as string)
      .join('');
    expect(text).toBe(redactor.redact(wire));
    const all = JSON.stringify(sink.events);
    expect(all).not.toContain(PROVIDER_KEY);
    expect(all).not.toContain(PROXY_KEY);
    expect(sink.events.at(-1)).toMatchObject({
      request_id: 'req-2',
      metadata: {
        leg: 'inbound',
        chunks: cuts.length,
        bytes: Buffer.byteLength(wire),
        finish_reason: 'stop',
      },
    });
    expect(sink.events[1]).toMatchObject({
      request_id: 'req-2',
      backend: 'openai',
      metadata: { leg: 'inbound' },
    });
  });

  it('never throws, even when the sink does', () => {
    const recorder = new CaptureRecorder(() => redactor, {
      write: () => {
        throw new Error('disk on fire');
      },
    });
    expect(() => recorder.record('outbound_response', { request_id: 'r', payload: 'x' })).not.toThrow();
    const leg = recorder.openStream('outbound', { request_id: 'r' });
    expect(() => {
      leg.chunk('a'.repeat(500));
      leg.end();
    }).not.toThrow();
  });

  it('writes through a CaptureWriter to a file without any secret', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'capture-recorder-'));
    try {
      const path = join(dir, 'wire.jsonl');
      const writer = new CaptureWriter({ path });
      const recorder = new CaptureRecorder(() => redactor, writer);
      recorder.record('outbound_request', {
        request_id: 'r',
        headers: { authorization: `Bearer ${PROVIDER_KEY}` },
        payload: { input: PROXY_KEY },
      });
      const leg = recorder.openStream('outbound', { request_id: 'r' });
      leg.chunk(PROXY_KEY.slice(0, 9));
      leg.chunk(PROXY_KEY.slice(9));
      leg.end();
      await writer.close();
      const text = await readFile(path, 'utf8');
      expect(text).not.toContain(PROXY_KEY);
      expect(text).not.toContain(PROVIDER_KEY);
      const lines = text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { sequence: number; direction: string });
      expect(lines.map((l) => l.direction)).toEqual([
        'outbound_request',
        'stream_start',
        'stream_chunk',
        'stream_end',
      ]);
      expect(lines.map((l) => l.sequence)).toEqual([1, 2, 3, 4]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
