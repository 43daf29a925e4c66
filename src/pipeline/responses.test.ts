import { describe, expect, it } from 'vitest';
import { idWatcher } from './responses.js';

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
