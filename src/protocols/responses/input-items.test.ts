import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../proxy-error.js';
import { listInputItems } from './input-items.js';

const ITEMS = [
  { type: 'message', role: 'user', content: 'first' },
  { id: 'msg_up_1', type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'a' }] },
  { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
  { type: 'function_call_output', call_id: 'c1', output: 'ok' },
  { role: 'user', content: 'second' },
];

const ids = (page: Record<string, unknown>) => (page.data as Array<{ id: string }>).map((i) => i.id);

describe('listInputItems', () => {
  it('lists every item typed and with an id, newest first by default', () => {
    const page = listInputItems(ITEMS, 'resp_abc', {});
    expect(page).toEqual({
      object: 'list',
      data: [
        {
          id: 'msg_abc_4',
          type: 'message',
          role: 'user',
          status: 'completed',
          content: [{ type: 'input_text', text: 'second' }],
        },
        { id: 'fco_abc_3', type: 'function_call_output', call_id: 'c1', output: 'ok' },
        { id: 'fc_abc_2', type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
        {
          id: 'msg_up_1',
          type: 'message',
          role: 'assistant',
          status: 'completed',
          content: [{ type: 'output_text', text: 'a' }],
        },
        {
          id: 'msg_abc_0',
          type: 'message',
          role: 'user',
          status: 'completed',
          content: [{ type: 'input_text', text: 'first' }],
        },
      ],
      first_id: 'msg_abc_4',
      last_id: 'msg_abc_0',
      has_more: false,
    });
  });

  it('pages with after and limit, in either order', () => {
    const first = listInputItems(ITEMS, 'resp_abc', { order: 'asc', limit: '2' });
    expect(ids(first)).toEqual(['msg_abc_0', 'msg_up_1']);
    expect(first.has_more).toBe(true);
    const second = listInputItems(ITEMS, 'resp_abc', { order: 'asc', limit: '2', after: first.last_id });
    expect(ids(second)).toEqual(['fc_abc_2', 'fco_abc_3']);
    const last = listInputItems(ITEMS, 'resp_abc', { order: 'asc', limit: '2', after: second.last_id });
    expect(ids(last)).toEqual(['msg_abc_4']);
    expect(last.has_more).toBe(false);
    const desc = listInputItems(ITEMS, 'resp_abc', { limit: '3', after: 'msg_abc_4' });
    expect(ids(desc)).toEqual(['fco_abc_3', 'fc_abc_2', 'msg_up_1']);
    expect(desc.has_more).toBe(true);
    expect(listInputItems([], 'resp_abc', {})).toEqual({
      object: 'list',
      data: [],
      first_id: null,
      last_id: null,
      has_more: false,
    });
  });

  it.each([
    [{ limit: '0' }, 'limit'],
    [{ limit: '101' }, 'limit'],
    [{ limit: '2.5' }, 'limit'],
    [{ order: 'sideways' }, 'order'],
    [{ after: 'msg_nowhere' }, 'after'],
    [{ after: ['a', 'b'] }, 'after'],
  ])('refuses %j naming %s', (query, param) => {
    let error: unknown;
    try {
      listInputItems(ITEMS, 'resp_abc', query);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProxyError);
    expect((error as ProxyError).status).toBe(400);
    expect((error as ProxyError).param).toBe(param);
  });
});
