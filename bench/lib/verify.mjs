// Correctness checks before any measurement, so the benchmark never times error responses or a proxy
// that answers fast because it answers wrong.
import { request } from 'undici';
import { MOCK_ANSWER_MARKER } from './constants.mjs';
import { CHAT_PATH, chatRequestBody } from './load.mjs';

async function post(origin, headers, body) {
  const res = await request(`${origin}${CHAT_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

function expect(condition, target, what) {
  if (!condition) throw new Error(`verification failed for ${target}: ${what}`);
}

/** A non-streaming answer: 200 and the mock's content, intact. `target.headers` are sent as well. */
export async function verifyCompletion(target) {
  const res = await post(
    target.origin,
    { authorization: `Bearer ${target.key}`, ...target.headers },
    chatRequestBody({ stream: false }),
  );
  expect(
    res.status === 200,
    target.name,
    `non-streaming answer has status ${res.status}: ${res.text.slice(0, 300)}`,
  );
  const content = JSON.parse(res.text).choices?.[0]?.message?.content;
  expect(
    typeof content === 'string' && content.includes(MOCK_ANSWER_MARKER),
    target.name,
    'unexpected content',
  );
}

/** A streaming answer: 200, SSE, every chunk the mock sent and the final [DONE]. */
export async function verifyStream(target, streamChunks) {
  const res = await post(
    target.origin,
    { authorization: `Bearer ${target.key}`, ...target.headers },
    chatRequestBody({ stream: true }),
  );
  expect(
    res.status === 200,
    target.name,
    `streaming answer has status ${res.status}: ${res.text.slice(0, 300)}`,
  );
  expect(String(res.headers['content-type']).includes('text/event-stream'), target.name, 'stream is not SSE');
  const events = res.text
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => line.slice(6));
  expect(
    events.length === streamChunks + 1,
    target.name,
    `got ${events.length} SSE events, want ${streamChunks + 1}`,
  );
  expect(events.at(-1) === '[DONE]', target.name, 'stream does not end with [DONE]');
  expect(
    JSON.parse(events[0]).choices[0].delta.content.includes(MOCK_ANSWER_MARKER),
    target.name,
    'bad first chunk',
  );
}

/**
 * A wrong key and a missing key are refused with 401. Two failures only: the project's brute-force
 * protection blocks an address after five, and the valid requests that follow clear the count.
 */
export async function verifyRejectsBadKeys(target) {
  const wrong = await post(
    target.origin,
    { authorization: 'Bearer wrong-key' },
    chatRequestBody({ stream: false }),
  );
  expect(wrong.status === 401, target.name, `wrong key answered ${wrong.status}, want 401`);
  const missing = await post(target.origin, {}, chatRequestBody({ stream: false }));
  expect(missing.status === 401, target.name, `missing key answered ${missing.status}, want 401`);
}

/**
 * Brute-force protection is on and tells clients apart by X-Forwarded-For (the target trusts 127.0.0.1 as
 * a reverse proxy): wrong keys from `address` get 401 until it is blocked, then 429; a valid key from
 * `otherAddress` still gets 200. `address` stays blocked: use it for nothing else.
 */
export async function verifyBruteForceBlocks(target, address, otherAddress) {
  const statuses = [];
  for (let attempt = 0; attempt < 20 && statuses.at(-1) !== 429; attempt++) {
    const res = await post(
      target.origin,
      { authorization: 'Bearer wrong-key', 'x-forwarded-for': address },
      chatRequestBody({ stream: false }),
    );
    statuses.push(res.status);
  }
  expect(
    statuses.at(-1) === 429 && statuses.slice(0, -1).every((status) => status === 401),
    target.name,
    `wrong keys from ${address} answered ${statuses.join(',')}, want 401s then 429 (brute-force protection on?)`,
  );
  const valid = await post(
    target.origin,
    { authorization: `Bearer ${target.key}`, 'x-forwarded-for': otherAddress },
    chatRequestBody({ stream: false }),
  );
  expect(
    valid.status === 200,
    target.name,
    `a valid key from ${otherAddress} answered ${valid.status} while ${address} is blocked ` +
      '(is X-Forwarded-For believed from 127.0.0.1?)',
  );
}

/** A Responses-API target (`target.request`): 200 and the mock's text, whole and streamed to response.completed. */
export async function verifyResponses(target) {
  for (const stream of [false, true]) {
    const res = await request(`${target.origin}${target.request.path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${target.key}` },
      body: target.request.body(stream),
    });
    const text = await res.body.text();
    expect(res.statusCode === 200, target.name, `status ${res.statusCode}: ${text.slice(0, 300)}`);
    expect(text.includes(MOCK_ANSWER_MARKER), target.name, 'unexpected content');
    if (target.request.completed) {
      expect(target.request.completed(stream, text), target.name, 'answer is not complete');
    } else if (stream) {
      expect(text.includes('"type":"response.completed"'), target.name, 'stream did not complete');
    } else expect(JSON.parse(text).status === 'completed', target.name, 'response is not completed');
  }
}
