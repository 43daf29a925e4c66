import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Redactor } from '../redaction/redactor.js';
import { CaptureRecorder, eventText, type CaptureSink } from './events.js';
import { CaptureWriter } from './writer.js';

const PROXY_KEY = 'canary-proxy-key-31337';
const PROVIDER_KEY = 'sk-proj-CanaryProvider0123456789abcdefXYZ';

/** A sink as the contract asks: every event redacted with the redactor it comes with, then kept. */
function memorySink(): CaptureSink & { events: Record<string, unknown>[]; members: string[] } {
  const events: Record<string, unknown>[] = [];
  const members: string[] = [];
  return {
    events,
    members,
    writeEvent: (pieces, redactor) => {
      const redacted = redactor.redact(eventText(pieces));
      members.push(redacted);
      events.push(JSON.parse(`{${redacted}}`) as Record<string, unknown>);
    },
  };
}

const redactor = new Redactor([PROXY_KEY, PROVIDER_KEY]);

describe('CaptureRecorder', () => {
  it('redacts headers and payload and names keys without their values', () => {
    const sink = memorySink();
    const recorder = new CaptureRecorder(() => redactor, sink).forRequest({
      request_id: 'req-1',
      client: { address: '127.0.0.1', user_agent: 'openai-node/6' },
      backend: 'openai',
      model: 'gpt-4o',
      key_name: { proxy: 'team-a', provider: 'OPENAI_API_KEY' },
    });
    recorder.record('inbound_request', {
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

  it('redacts secrets in any header, whether or not secrets need escaping in JSON', () => {
    const gemini = 'AIzaSyCanary-0123456789abcdefghijklmnop';
    const escaped = 'canary\\"quoted\\secret-0123';
    for (const secrets of [[PROXY_KEY], [PROXY_KEY, escaped]]) {
      const sink = memorySink();
      const r = new Redactor(secrets);
      expect(r.secretsVerbatimInJson).toBe(secrets.length === 1);
      new CaptureRecorder(() => r, sink).forRequest({ request_id: 'req-h' }).record('inbound_response', {
        headers: { 'x-note': `key ${gemini}`, 'x-echo': [PROXY_KEY, escaped], 'set-cookie': ['a=1', 'b=2'] },
      });
      const line = JSON.stringify(sink.events);
      for (const secret of [gemini, ...secrets])
        expect(line).not.toContain(JSON.stringify(secret).slice(1, -1));
      expect(sink.events[0]?.headers).toMatchObject({ 'set-cookie': ['****', '****'] });
    }
  });

  it('redacts the shared fields of every request, the same way each time', () => {
    const sink = memorySink();
    const recorder = new CaptureRecorder(() => redactor, sink);
    for (const userAgent of [
      'plain-agent/1',
      `agent ${PROVIDER_KEY}`,
      'plain-agent/1',
      `agent ${PROVIDER_KEY}`,
    ]) {
      recorder
        .forRequest({
          request_id: 'req-s',
          client: { address: '127.0.0.1', user_agent: userAgent },
          backend: 'openai',
          model: 'gpt-4o',
          key_name: { proxy: 'team-a' },
        })
        .record('outbound_request', { metadata: { n: 1 } });
    }
    const agents = sink.events.map((e) => (e.client as { user_agent: string }).user_agent);
    expect(agents).toEqual(['plain-agent/1', 'agent sk-proj-****', 'plain-agent/1', 'agent sk-proj-****']);
  });

  it('captures a stream leg with a secret split across chunks redacted', () => {
    const sink = memorySink();
    const recorder = new CaptureRecorder(() => redactor, sink).forRequest({
      request_id: 'req-2',
      backend: 'openai',
      model: 'gpt-4o',
    });
    const leg = recorder.openStream('inbound');
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

  it('captures a stream passed on as it arrives on both legs, redacted once, with what the proxy added', () => {
    const sink = memorySink();
    const recorder = new CaptureRecorder(() => redactor, sink).forRequest({ request_id: 'req-p' });
    const legs = recorder.openPassThrough({ status: 200 });
    const wire = `data: {"delta":"key ${PROVIDER_KEY} end"}\n\n`;
    legs.chunk(wire.slice(0, 30));
    legs.chunk(wire.slice(30));
    const added = `data: {"error":"cut off, ${PROXY_KEY}"}\n\n`;
    legs.end({ error: 'UND_ERR_SOCKET' }, added);

    const leg = (name: string, direction: string) =>
      sink.events.filter(
        (e) => e['direction'] === direction && (e['metadata'] as { leg: string }).leg === name,
      );
    const text = (name: string) =>
      leg(name, 'stream_chunk')
        .map((e) => e['payload'] as string)
        .join('');
    expect(leg('inbound', 'stream_start')).toHaveLength(1);
    expect(leg('outbound', 'stream_start')).toHaveLength(1);
    expect(text('inbound')).toBe(redactor.redact(wire));
    expect(text('outbound')).toBe(redactor.redact(wire) + redactor.redact(added));
    expect(JSON.stringify(sink.events)).not.toContain(PROVIDER_KEY);
    expect(JSON.stringify(sink.events)).not.toContain(PROXY_KEY);
    expect(leg('inbound', 'stream_end')[0]?.['metadata']).toEqual({
      error: 'UND_ERR_SOCKET',
      leg: 'inbound',
      chunks: 2,
      bytes: Buffer.byteLength(wire),
    });
    expect(leg('outbound', 'stream_end')[0]?.['metadata']).toEqual({
      leg: 'outbound',
      chunks: 3,
      bytes: Buffer.byteLength(wire + added),
    });
    expect(sink.events.at(-1)?.['direction']).toBe('stream_end');
  });

  it('splices a payload given as one-line JSON text as it is, still redacted; other text is serialised', () => {
    const { members, ...sink } = memorySink();
    const recorder = new CaptureRecorder(() => redactor, sink).forRequest({ request_id: 'req-3' });
    recorder.record('inbound_request', {
      payload: { a: 1 },
      payloadJson: `{"a":  1, "k": "${PROXY_KEY}"}`,
    });
    recorder.record('inbound_request', { payload: { a: 1 }, payloadJson: '{\n  "a": 1\n}' });
    expect(members[0]).toBe(
      `"request_id":"req-3","direction":"inbound_request","payload":{"a":  1, "k": "****"}`,
    );
    expect(members[1]).toBe('"request_id":"req-3","direction":"inbound_request","payload":{"a":1}');
  });

  it('records bodies given as bytes: JSON text spliced in, answers as strings', () => {
    const sink = memorySink();
    const recorder = new CaptureRecorder(() => redactor, sink).forRequest({ request_id: 'req-b' });
    const body = Buffer.from(`{"k":"${PROXY_KEY}"}`);
    const answer = Buffer.from(`{"choices":[{"text":"${PROVIDER_KEY}"}]}`);
    recorder.record('inbound_request', { payload: JSON.parse(body.toString()), payloadJson: body });
    recorder.record('inbound_response', { payload: answer, metadata: { status: 200 } });
    recorder.record('outbound_response', { payload: answer, metadata: { status: 200 } });
    expect(sink.events.map((e) => e['payload'])).toEqual([
      { k: '****' },
      '{"choices":[{"text":"sk-proj-****"}]}',
      '{"choices":[{"text":"sk-proj-****"}]}',
    ]);
  });

  it('redacts a payload passed on unchanged once, and again under a rotated key set', () => {
    const rotated = 'rotated-proxy-key-424242';
    let current = redactor;
    const sink = memorySink();
    const recorder = new CaptureRecorder(() => current, sink).forRequest({ request_id: 'req-5' });
    const answer = `{"content":"${PROXY_KEY} ${rotated}"}`;
    recorder.record('inbound_response', { payload: answer, metadata: { status: 200 } });
    recorder.record('outbound_response', { payload: answer, metadata: { status: 200 } });
    current = new Redactor([PROXY_KEY, rotated]);
    recorder.record('outbound_response', { payload: answer, metadata: { status: 200 } });
    expect(sink.events.map((e) => e['payload'])).toEqual([
      `{"content":"**** ${rotated}"}`,
      `{"content":"**** ${rotated}"}`,
      '{"content":"**** ****"}',
    ]);
    expect(Object.keys(sink.events[0]!)).toEqual(['request_id', 'direction', 'payload', 'metadata']);
  });

  it('redacts a stream chunk again when JSON-encoding could form a secret', () => {
    // A secret holding a backslash-quote: the raw text `odd"secret…` is no secret, its JSON encoding is.
    const oddSecret = 'odd\\"secret-0123456789abcdef';
    const raw = oddSecret.replace('\\"', '"');
    const sink = memorySink();
    const recorder = new CaptureRecorder(() => new Redactor([oddSecret]), sink).forRequest({
      request_id: 'req-4',
    });
    const leg = recorder.openStream('outbound');
    leg.chunk(`data: ${raw}\n\n`);
    leg.end();
    expect(sink.members.join('\n')).not.toContain(oddSecret);
    expect(sink.events.some((e) => e['direction'] === 'stream_chunk')).toBe(true);
  });

  it('never throws, even when the sink does', () => {
    const recorder = new CaptureRecorder(() => redactor, {
      writeEvent: () => {
        throw new Error('disk on fire');
      },
    }).forRequest({ request_id: 'r' });
    expect(() => recorder.record('outbound_response', { payload: 'x' })).not.toThrow();
    const leg = recorder.openStream('outbound');
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
      const recorder = new CaptureRecorder(() => redactor, writer).forRequest({ request_id: 'r' });
      recorder.record('outbound_request', {
        headers: { authorization: `Bearer ${PROVIDER_KEY}` },
        payload: { input: PROXY_KEY },
      });
      const leg = recorder.openStream('outbound');
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
