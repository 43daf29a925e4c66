import { describe, expect, it } from 'vitest';
import type { Protocol } from './types.js';
import { usageInBytes, usageInStreamTail } from './usage-bytes.js';
import { usageInText } from './usage.js';

const PROTOCOLS: readonly Protocol[] = ['openai', 'responses', 'anthropic', 'gemini'];

/** What the text reader gives for the same bytes: the answer `usageInBytes` must give. */
const byText = (protocol: Protocol, bytes: Buffer) => usageInText(protocol, bytes.toString('latin1'));

describe('usageInBytes', () => {
  it("reads each protocol's usage block at an answer's end", () => {
    const openai = Buffer.from(
      '{"id":"x","choices":[{"message":{"content":"hi \\"usage\\": no"}}],' +
        '"usage":{"prompt_tokens":42,"completion_tokens":180,"total_tokens":222,' +
        '"prompt_tokens_details":{"cached_tokens":2,"audio_tokens":0}}}',
    );
    expect(usageInBytes('openai', openai)).toEqual({ input: 40, output: 180, cacheRead: 2, cacheWrite: 0 });
    const anthropic = Buffer.from(
      '{"type":"message","usage":{"input_tokens":5,"cache_creation_input_tokens":7,' +
        '"cache_read_input_tokens":3,"output_tokens":9,"service_tier":"standard"}}',
    );
    expect(usageInBytes('anthropic', anthropic)).toEqual({
      input: 5,
      output: 9,
      cacheRead: 3,
      cacheWrite: 7,
    });
    const gemini = Buffer.from(
      '{"candidates":[],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":6,' +
        '"thoughtsTokenCount":2,"promptTokensDetails":[{"modality":"TEXT","tokenCount":4}]},"modelVersion":"g"}',
    );
    expect(usageInBytes('gemini', gemini)).toEqual({ input: 4, output: 8, cacheRead: 0, cacheWrite: 0 });
  });

  it('passes over null blocks and cut ones, and gives null without a block', () => {
    const text =
      '{"usage":{"prompt_tokens":1,"completion_tokens":2},"x":{"usage":null},"y":{"usage":{"prompt_';
    expect(usageInBytes('openai', Buffer.from(text))).toEqual({
      input: 1,
      output: 2,
      cacheRead: 0,
      cacheWrite: 0,
    });
    expect(usageInBytes('openai', Buffer.from('{"choices":[]}'))).toBeNull();
    expect(usageInBytes('openai', Buffer.from(''))).toBeNull();
    expect(usageInBytes('openai', Buffer.from('"usage"'))).toBeNull();
  });

  it("reads a stream's tail as the text reader does: a block at its end, far from it, or none", () => {
    const completed = (usage: string) =>
      `event: response.completed\ndata: {"type":"response.completed","response":{"usage":${usage}}}\n\n`;
    const created = 'event: response.created\ndata: {"response":{"error":null,"usage":null}}\n\n';
    const pad = `event: x\ndata: {"delta":"${'b'.repeat(3000)}"}\n\n`;
    for (const text of [
      created + pad + completed('{"input_tokens":42,"output_tokens":180,"total_tokens":222}'),
      created + completed('{"input_tokens":3,"output_tokens":4}') + pad,
      created + pad + completed('null'),
      created + pad,
      pad.slice(0, 100),
      '',
    ]) {
      const bytes = Buffer.from(text);
      expect(usageInStreamTail('responses', bytes), text).toEqual(byText('responses', bytes));
    }
    expect(
      usageInStreamTail('responses', Buffer.from(created + pad + completed('{"input_tokens":1}'))),
    ).toEqual({ input: 1, output: 0, cacheRead: 0, cacheWrite: 0 });
  });

  it('finds a block far from the end (the native search past the last bytes)', () => {
    const filler = `"pad":"${'a'.repeat(20_000)}"`;
    const bytes = Buffer.from(`{"usage":{"prompt_tokens":7,"completion_tokens":1},${filler}}`);
    expect(usageInBytes('openai', bytes)).toEqual({ input: 7, output: 1, cacheRead: 0, cacheWrite: 0 });
    // Given as a view into a larger buffer.
    const wide = Buffer.concat([Buffer.from('xxxx'), bytes, Buffer.from('yyyy')]);
    const view = new Uint8Array(wide.buffer, wide.byteOffset + 4, bytes.length);
    expect(usageInBytes('openai', view)).toEqual({ input: 7, output: 1, cacheRead: 0, cacheWrite: 0 });
  });

  it('reads as the text reader does: blocks of every shape, fuzzed', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const names = [
      'prompt_tokens',
      'completion_tokens',
      'input_tokens',
      'output_tokens',
      'cached_tokens',
      'cache_read_input_tokens',
      'cache_creation_input_tokens',
      'promptTokenCount',
      'candidatesTokenCount',
      'thoughtsTokenCount',
      'cachedContentTokenCount',
      'toolUsePromptTokenCount',
      'total_tokens',
      '__proto__',
      'prompt_tokens_details',
      'input_tokens_details',
      'we\\"ird',
      'caf\u00e9',
    ];
    const values = [
      () => String(Math.floor(random() * 1000)),
      () => '0',
      () => '007',
      () => '12.5',
      () => '-3',
      () => '1e3',
      () => '123456789012345678',
      () => 'null',
      () => 'true',
      () => 'false',
      () => 'nul',
      () => '"text"',
      () => '[1,2]',
      () => '{}',
    ];
    const space = () => pick(['', '', ' ', '\n', '\t', '\u000b']);
    const block = (depth: number): string => {
      const members: string[] = [];
      const count = Math.floor(random() * 5);
      for (let i = 0; i < count; i++) {
        const value = depth < 2 && random() < 0.2 ? block(depth + 1) : pick(values)();
        members.push(`${space()}"${pick(names)}"${space()}:${space()}${value}${space()}`);
      }
      return `{${members.join(random() < 0.05 ? ',,' : ',')}${space()}}`;
    };
    for (let round = 0; round < 3000; round++) {
      const protocol = pick(PROTOCOLS);
      const key = protocol === 'gemini' ? 'usageMetadata' : 'usage';
      const parts = ['{"id":"a"'];
      const blocks = 1 + Math.floor(random() * 3);
      for (let b = 0; b < blocks; b++) {
        const value = random() < 0.2 ? 'null' : block(0);
        parts.push(`,"${key}"${space()}:${space()}${value}`);
        if (random() < 0.3) parts.push(`,"text":"${'é'.repeat(Math.floor(random() * 300))} \\"${key}\\":{"`);
      }
      // Blocks pushed back past the last bytes a backward loop looks at.
      if (random() < 0.3) parts.push(`,"pad":"${'a'.repeat(Math.floor(random() * 1500))}"`);
      let text = `${parts.join('')}}`;
      if (random() < 0.1) text = text.slice(0, Math.floor(random() * text.length));
      const bytes = Buffer.from(text);
      const want = byText(protocol, bytes);
      expect(usageInBytes(protocol, bytes), text).toEqual(want);
      expect(usageInStreamTail(protocol, bytes), text).toEqual(want);
    }
  });
});
