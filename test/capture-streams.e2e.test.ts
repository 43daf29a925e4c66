import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from './fake-provider/index.mjs';
import { startProxyProcess } from './helpers/proxy-process.js';
import { backendsAt, chatRequest, exchange, type Front } from './reliability/support.js';

/**
 * The wire capture of streams passed on as they arrive (same protocol on both sides): both legs are
 * recorded, the inbound leg as the backend sent it and the outbound leg as the client got it — including
 * what the proxy added to a failed or unfinished stream.
 */
const KEY = 'capture-streams-proxy-key-0123456789';
const FRONT_BACK: readonly Front[] = ['openai', 'anthropic', 'gemini'];
const CASES = ['answer', 'fault-reset-mid-stream', 'fault-truncated-stream'] as const;

interface Event {
  request_id: string;
  direction: string;
  payload?: unknown;
  metadata?: { leg?: string; error?: string; status?: number; chunks?: number };
}

let upstream: FakeProvider;
let dir: string;
/** Per protocol and case: what the client got, and the capture's events of that request. */
const seen = new Map<string, { client: string; events: Event[] }>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lip-capture-streams-'));
  upstream = await startFakeProvider({ chunks: 5 });
  const proxy = await startProxyProcess(
    ['--default-backend', 'openai', '--capture-file', join(dir, 'cap.jsonl')],
    backendsAt(upstream.url, KEY),
  );
  const clients = new Map<string, { client: string; id: string }>();
  try {
    for (const protocol of FRONT_BACK) {
      for (const kind of CASES) {
        const model = `${protocol}:${kind === 'answer' ? 'model-ok' : kind}`;
        const got = await exchange(proxy.url, protocol, chatRequest(protocol, model, true, 'hello'), {
          authorization: `Bearer ${KEY}`,
        });
        expect(got.status).toBe(200);
        clients.set(model, { client: got.text, id: String(got.headers['x-request-id']) });
      }
    }
  } finally {
    expect(await proxy.stop()).toBe(0);
  }
  const events = readFileSync(join(dir, 'cap.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Event);
  for (const [model, { client, id }] of clients) {
    seen.set(model, { client, events: events.filter((e) => e.request_id === id) });
  }
});

afterAll(async () => {
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

function legText(events: Event[], leg: string): string {
  return events
    .filter((e) => e.direction === 'stream_chunk' && e.metadata?.leg === leg)
    .map((e) => e.payload as string)
    .join('');
}

function legEnd(events: Event[], leg: string): Event | undefined {
  return events.find((e) => e.direction === 'stream_end' && e.metadata?.leg === leg);
}

describe.each(FRONT_BACK)('capture of a %s stream passed on as it arrives', (protocol) => {
  const of = (kind: (typeof CASES)[number]) =>
    seen.get(`${protocol}:${kind === 'answer' ? 'model-ok' : kind}`);

  it('records both legs whole: what the backend sent is what the client got', () => {
    const { client, events } = of('answer')!;
    expect(events.filter((e) => e.direction === 'stream_start').map((e) => e.metadata?.leg)).toEqual([
      'inbound',
      'outbound',
    ]);
    expect(legText(events, 'outbound')).toBe(client);
    expect(legText(events, 'inbound')).toBe(client);
    expect(legEnd(events, 'inbound')?.metadata?.error).toBeUndefined();
    expect(legEnd(events, 'outbound')?.metadata?.chunks).toBeGreaterThanOrEqual(1);
  });

  it('records a failed stream: the backend leg ends in the error, the client leg with the error event', () => {
    const { client, events } = of('fault-reset-mid-stream')!;
    const inbound = legText(events, 'inbound');
    const outbound = legText(events, 'outbound');
    expect(outbound).toBe(client);
    expect(inbound.length).toBeGreaterThan(0);
    expect(outbound.startsWith(inbound)).toBe(true);
    expect(outbound.length).toBeGreaterThan(inbound.length); // the error event the proxy added
    expect(legEnd(events, 'inbound')?.metadata?.error).toBeDefined();
    expect(legEnd(events, 'outbound')?.metadata?.error).toBeUndefined();
  });

  it('records an unfinished stream: the client leg also holds the end the proxy added', () => {
    const { client, events } = of('fault-truncated-stream')!;
    const inbound = legText(events, 'inbound');
    const outbound = legText(events, 'outbound');
    expect(outbound).toBe(client);
    expect(outbound.startsWith(inbound)).toBe(true);
    expect(outbound.length).toBeGreaterThan(inbound.length);
  });
});
