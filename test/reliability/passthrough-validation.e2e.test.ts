/**
 * When client and backend speak the same protocol, the backend's bytes pass through — but never unchecked:
 * a backend that answers 200 with a body that is not a JSON object (cut off, a text or HTML page), or a
 * stream that stops before its finish marker or holds no JSON, must give the client a 502 in its envelope
 * (whole answers) or a final error event (streams), as it does when the protocols differ
 * (upstream-faults.e2e.test.ts). Whole answers are checked for the braces of an object, not parsed
 * (isJsonObject in src/pipeline/relay.ts says why).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProvider, type FakeProvider } from '../fake-provider/index.mjs';
import { startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import { FRONTS, backendsAt, chatRequest, envelopeMessage, exchange, parseSseText } from './support.js';

const KEY = 'pending-proxy-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };

describe('same-protocol pass-through of a broken backend answer', () => {
  let upstream: FakeProvider;
  let proxy: ProxyProcess;

  beforeAll(async () => {
    upstream = await startFakeProvider();
    proxy = await startProxyProcess(
      ['--default-backend', 'openai', '--timeout', '0.5'],
      backendsAt(upstream.url, KEY),
    );
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  for (const front of FRONTS) {
    it(`${front} ← ${front}: a 200 whose body is not JSON becomes a 502 in the ${front} envelope`, async () => {
      const result = await exchange(
        proxy.url,
        front,
        chatRequest(front, `${front}:fault-invalid-json`, false),
        AUTH,
      );
      expect(result.outcome).toEqual({
        kind: 'error',
        status: 502,
        message: `Backend '${front}' answered with invalid JSON`,
        streamed: false,
      });
    });

    for (const fault of ['truncated-stream', 'invalid-sse'] as const) {
      it(`${front} ← ${front}: a ${fault} ends with a ${front} error event, not a silent cut`, async () => {
        const result = await exchange(
          proxy.url,
          front,
          chatRequest(front, `${front}:fault-${fault}`, true),
          AUTH,
        );
        const last = parseSseText(result.text).at(-1);
        let data: unknown;
        try {
          data = JSON.parse(last?.data ?? '');
        } catch {
          data = undefined;
        }
        expect(envelopeMessage(front, data), `last event: ${JSON.stringify(last)}`).not.toBeNull();
      });
    }
  }

  // The Responses API passed through to the openai backend's /v1/responses (issue #17).
  it('responses ← openai: a 200 whose body is not JSON becomes a 502 in the Responses envelope', async () => {
    const result = await exchange(
      proxy.url,
      'responses',
      chatRequest('responses', 'openai:fault-invalid-json', false),
      AUTH,
    );
    expect(result.outcome).toEqual({
      kind: 'error',
      status: 502,
      message: "Backend 'openai' answered with invalid JSON",
      streamed: false,
    });
  });

  for (const fault of ['truncated-stream', 'invalid-sse'] as const) {
    it(`responses ← openai: a ${fault} ends in a numbered error event, never response.completed`, async () => {
      const result = await exchange(
        proxy.url,
        'responses',
        chatRequest('responses', `openai:fault-${fault}`, true),
        AUTH,
      );
      expect(result.outcome).toEqual({
        kind: 'error',
        status: 200,
        message: "Backend 'openai' ended the stream before the answer was finished",
        streamed: true,
      });
      const types = parseSseText(result.text).map((e) => (JSON.parse(e.data) as { type: string }).type);
      expect(types).not.toContain('response.completed');
      // The proxy's own error event (classify checked its sequence_number), then, once the client was told
      // of a response, `response.failed`, as a translated stream ends (none of invalid-sse's events is JSON).
      expect(types.slice(-2)).toEqual(
        fault === 'truncated-stream' ? ['error', 'response.failed'] : ['error'],
      );
    });
  }
});
