import { describe, expect, it } from 'vitest';
import type { StoredResponses } from '../state/responses.js';
import type { ChatExchange } from './exchange.js';
import { idWatcher, responsesTurn } from './responses.js';
import type { RequestState } from './state.js';
import type { ChatRoute } from './route.js';

/** Feeds `pieces` to a fresh watcher; the ids it reported. */
function watch(pieces: Array<Uint8Array | string>): string[] {
  const found: string[] = [];
  const see = idWatcher((id) => found.push(id));
  for (const piece of pieces) see(piece);
  return found;
}

const STREAM =
  'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_abc123","object":"response"}}\n\n' +
  'event: response.output_item.added\ndata: {"type":"response.output_item.added","item":{"id":"msg_1"}}\n\n';

describe('idWatcher (the id of a passed-through Responses answer)', () => {
  it('reports the first id once, however chunks cut the answer, bytes or text', () => {
    for (let cut = 1; cut < STREAM.length; cut++) {
      const parts = [STREAM.slice(0, cut), STREAM.slice(cut)];
      expect(watch(parts.map((p) => Buffer.from(p))), `cut at ${cut}`).toEqual(['resp_abc123']);
      expect(watch(parts), `cut at ${cut} (text)`).toEqual(['resp_abc123']);
    }
    expect(watch([Buffer.from('{ "id" : "resp_whole", "object": "response" }')])).toEqual(['resp_whole']);
  });

  it('reads a chunk that is a view into a larger buffer as that view only', () => {
    const backing = Buffer.from(`xxxx{"id":"resp_view"}yyyy`);
    expect(watch([new Uint8Array(backing.buffer, backing.byteOffset + 4, backing.length - 8)])).toEqual([
      'resp_view',
    ]);
  });

  it('gives up on an answer without a string id in its first 16 KB', () => {
    expect(watch([Buffer.from('{"id": 42, "object":"response"' + ' '.repeat(300) + '}')])).toEqual([]);
    expect(watch([Buffer.alloc(16 * 1024, 0x20), Buffer.from('{"id":"resp_late"}')])).toEqual([]);
  });
});

describe('responsesTurn (how an answer is kept)', () => {
  /** A store whose writes finish when the test says so. */
  function slowStore(): { store: StoredResponses; puts: string[]; finish: () => void } {
    const puts: string[] = [];
    const waiting: Array<() => void> = [];
    const store: StoredResponses = {
      put: (id) => {
        puts.push(id);
        return new Promise<void>((resolve) => waiting.push(resolve));
      },
      get: () => Promise.resolve(undefined),
      delete: () => Promise.resolve(false),
    };
    return { store, puts, finish: () => waiting.splice(0).forEach((resolve) => resolve()) };
  }

  it("holds a passed-through id's write in the request state until the store has it", async () => {
    const { store, puts, finish } = slowStore();
    const state = { start: 0, backendMs: 0, backend: null, model: null } as RequestState;
    const ex = { id: 'req-1', authKeyName: 'alice', state } as unknown as ChatExchange;
    const route = {
      clientBody: { model: 'gpt-4o-mini', input: 'hi' },
      backend: { name: 'openai', protocol: 'responses' },
    } as unknown as ChatRoute;
    const turn = responsesTurn(ex, route, undefined, { store, log: { error: () => undefined } });
    expect(state.storing).toBeUndefined();
    turn.watch?.('{"id":"resp_kept","object":"response"}');
    expect(puts).toEqual(['resp_kept']);
    let settled = false;
    void state.storing?.then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    finish();
    await state.storing;
    expect(settled).toBe(true);
  });

  it('keeps nothing and holds nothing with store: false', () => {
    const { store, puts } = slowStore();
    const state = { start: 0, backendMs: 0, backend: null, model: null } as RequestState;
    const ex = { id: 'req-2', authKeyName: 'alice', state } as unknown as ChatExchange;
    const route = {
      clientBody: { model: 'gpt-4o-mini', input: 'hi', store: false },
      backend: { name: 'openai', protocol: 'responses' },
    } as unknown as ChatRoute;
    const turn = responsesTurn(ex, route, undefined, { store, log: { error: () => undefined } });
    expect(turn.watch).toBeUndefined();
    expect(puts).toEqual([]);
    expect(state.storing).toBeUndefined();
  });
});
