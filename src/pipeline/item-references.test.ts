import { describe, expect, it } from 'vitest';
import { scanJson } from '../protocols/json-scan.js';
import { responseOfItem } from '../protocols/responses/codec.js';
import { MemoryStoredResponses, type StoredResponses } from '../state/responses.js';
import type { ChatExchange } from './exchange.js';
import { MAX_REFERENCED_RESPONSES, mayReferenceItems, resolveItemReferences } from './item-references.js';
import { RequestBody } from './request-body.js';

/** An exchange of `owner` whose body is `body`'s bytes, as the chat lane hands them over (nothing parsed). */
function exchange(body: object, owner: string | null = 'alice'): ChatExchange {
  const bytes = Buffer.from(JSON.stringify(body));
  const scan = scanJson(bytes);
  if (scan.verdict !== 'ok') throw new Error('not JSON');
  const json = new RequestBody(bytes, scan.members);
  return {
    authKeyName: owner,
    json,
    rawBytes: bytes,
    get body() {
      return json.value;
    },
  } as unknown as ChatExchange;
}

const HEX = '0123456789abcdef0123456789abcdef';
const RESPONSE = `resp_${HEX}`;
const said = {
  id: `msg_${HEX}_1`,
  type: 'message',
  status: 'completed',
  role: 'assistant',
  content: [{ type: 'output_text', text: 'echo: hello there', annotations: [], logprobs: [] }],
};
const thought = {
  id: `rs_${HEX}_0`,
  type: 'reasoning',
  summary: [{ type: 'summary_text', text: 'Thinking.' }],
  encrypted_content: 'lip1.anthropic.c2ln.mac',
};

/** A store holding one translated response of `alice`'s (reasoning, then text), as the pipeline keeps it. */
function storeWithAnswer(): StoredResponses {
  const store = new MemoryStoredResponses({ maxStored: 10, ttlSeconds: 60 });
  const response = { id: RESPONSE, object: 'response', status: 'completed', output: [thought, said] };
  store.put(
    RESPONSE,
    'alice',
    JSON.stringify({ response, input: [{ role: 'user', content: 'hello there' }] }),
  );
  // A passed-through response: a Responses backend holds its items.
  store.put(`resp_${'f'.repeat(32)}`, 'alice', null, 'openai');
  return store;
}

const hello = { role: 'user', content: [{ type: 'input_text', text: 'hello there' }] };
const again = { role: 'user', content: [{ type: 'input_text', text: 'and again' }] };
const ref = (id: string) => ({ type: 'item_reference', id });

describe('responseOfItem (the response an item the proxy named belongs to)', () => {
  it('reads the response id out of the ids the codec gives output items', () => {
    expect(responseOfItem(`msg_${HEX}_0`)).toBe(RESPONSE);
    expect(responseOfItem(`fc_${HEX}_12`)).toBe(RESPONSE);
    expect(responseOfItem(`rs_${HEX}_3`)).toBe(RESPONSE);
    expect(responseOfItem(`ctc_${HEX}_1`)).toBe(RESPONSE);
  });

  it("knows no other shape: a Responses backend's own ids, or anything else", () => {
    expect(responseOfItem('msg_67ccd3acc8d48190a77525dc6de64b4f0de9c5a9bbf3c5ba')).toBeUndefined();
    expect(responseOfItem('msg_fake_1')).toBeUndefined();
    expect(responseOfItem(`msg_${HEX.toUpperCase()}_0`)).toBeUndefined();
    expect(responseOfItem(`msg_${HEX}_0_`)).toBeUndefined();
    expect(responseOfItem(`../msg_${HEX}_0`)).toBeUndefined();
  });
});

describe('mayReferenceItems', () => {
  it('looks for the marker in the bytes received', () => {
    expect(mayReferenceItems(exchange({ input: [hello, ref(said.id), again] }))).toBe(true);
    expect(mayReferenceItems(exchange({ input: [hello, again] }))).toBe(false);
  });

  it('reads a body an earlier step changed (no bytes) as parsed', () => {
    const changed = (input: unknown[]) =>
      ({ body: { input }, rawBytes: undefined }) as unknown as ChatExchange;
    expect(mayReferenceItems(changed([hello, ref(said.id)]))).toBe(true);
    expect(mayReferenceItems(changed([hello, { type: 'message', content: 'item_reference' }]))).toBe(false);
  });
});

describe('resolveItemReferences', () => {
  it("replaces each reference to an item of a response the owner's key kept by that item, in place", async () => {
    const ex = exchange({ model: 'm', input: [hello, ref(thought.id), ref(said.id), again], store: true });
    const resolved = await resolveItemReferences(ex, storeWithAnswer());
    expect(resolved.body).toEqual({ model: 'm', input: [hello, thought, said, again], store: true });
    // The body changed: the bytes received are not forwarded.
    expect(resolved.rawBytes).toBeUndefined();
    expect(resolved.rawBody).toBeUndefined();
    expect(resolved.json).toBeUndefined();
  });

  it("leaves what it cannot resolve as it came: a backend's own id, an unknown one, another key's", async () => {
    const store = storeWithAnswer();
    const input = [
      hello,
      ref('msg_67ccd3acc8d48190a77525dc6de64b4f0de9c5a9bbf3c5ba'),
      ref(`msg_${'f'.repeat(32)}_0`),
      ref(`msg_${'e'.repeat(32)}_0`),
      ref(`msg_${HEX}_7`),
      again,
    ];
    const ex = exchange({ input });
    expect(await resolveItemReferences(ex, store)).toBe(ex);
    // The same reference that resolves for its owner does not for any other key.
    const bob = exchange({ input: [hello, ref(said.id), again] }, 'bob');
    expect(await resolveItemReferences(bob, store)).toBe(bob);
    const anyone = exchange({ input: [hello, ref(said.id), again] }, null);
    expect(await resolveItemReferences(anyone, store)).toBe(anyone);
  });

  it('replaces the ones it can and keeps the others', async () => {
    const own = 'msg_67ccd3acc8d48190a77525dc6de64b4f0de9c5a9bbf3c5ba';
    const ex = exchange({ input: [hello, ref(own), ref(said.id), again] });
    const resolved = await resolveItemReferences(ex, storeWithAnswer());
    expect(resolved.body).toEqual({ input: [hello, ref(own), said, again] });
  });

  it('reads each response once, however many of its items are referenced', async () => {
    const store = storeWithAnswer();
    const reads: string[] = [];
    const counting: StoredResponses = {
      put: (...args) => store.put(...args),
      delete: (...args) => store.delete(...args),
      get: (id, owner) => {
        reads.push(id);
        return store.get(id, owner);
      },
    };
    await resolveItemReferences(exchange({ input: [ref(thought.id), ref(said.id), ref(said.id)] }), counting);
    expect(reads).toEqual([RESPONSE]);
  });

  it(`refuses references into more than ${MAX_REFERENCED_RESPONSES} responses, reading none`, async () => {
    const store = storeWithAnswer();
    let reads = 0;
    const counting: StoredResponses = { ...store, get: () => (reads++, Promise.resolve(undefined)) };
    const many = Array.from({ length: MAX_REFERENCED_RESPONSES + 1 }, (_, i) =>
      ref(`msg_${i.toString(16).padStart(32, '0')}_0`),
    );
    await expect(resolveItemReferences(exchange({ input: many }), counting)).rejects.toMatchObject({
      status: 400,
      param: 'input',
    });
    expect(reads).toBe(0);
    const enough = many.slice(0, MAX_REFERENCED_RESPONSES);
    await resolveItemReferences(exchange({ input: enough }), counting);
    expect(reads).toBe(MAX_REFERENCED_RESPONSES);
  });

  it('leaves a body without an input list as it is', async () => {
    const ex = exchange({ input: 'item_reference' });
    expect(await resolveItemReferences(ex, storeWithAnswer())).toBe(ex);
  });
});
